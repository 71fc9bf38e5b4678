package starttls

import (
	"strconv"
	"unicode/utf8"
)

// Credentials is one login a client sent, as a server saw it. The stripping
// simulator reports it masked (MaskSecret); the secret itself must never
// reach a log or a report.
type Credentials struct {
	// Mechanism names the login: "AUTH PLAIN", "LOGIN", "USER/PASS", …
	Mechanism string
	// User is the login name as sent.
	User string
	// Secret is the password as sent.
	Secret string
	// TLS is true when the login came inside TLS.
	TLS bool
}

// MaskSecret shows a secret without revealing it: its first and last
// character and its length, "s…t (6 chars)". Secrets of fewer than four
// characters show only the length.
func MaskSecret(s string) string {
	n := utf8.RuneCountInString(s)
	if n < 4 {
		return "… (" + strconv.Itoa(n) + " chars)"
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return Escape(string(first)) + "…" + Escape(string(last)) + " (" + strconv.Itoa(n) + " chars)"
}

// SawCredentials passes a login to OnCredentials when it is set. Servers
// call it from their login code before checking the credentials.
func (o *ServerOptions) SawCredentials(mechanism, user, secret string, tlsOn bool) {
	if o.OnCredentials != nil {
		o.OnCredentials(Credentials{Mechanism: mechanism, User: user, Secret: secret, TLS: tlsOn})
	}
}

// Forged returns the bytes to write after the go-ahead to command: nil
// unless InjectAfterGoAhead is set.
func (o *ServerOptions) Forged(command string) []byte {
	if o.InjectAfterGoAhead == nil {
		return nil
	}
	return o.InjectAfterGoAhead(command)
}
