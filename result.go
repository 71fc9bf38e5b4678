package starttls

import "crypto/tls"

// Result records what happened while a client secured a connection: what the
// server offered before and after TLS, what was negotiated and the dialog
// itself. Check builds its report from it.
type Result struct {
	Protocol string // "smtp", "lmtp", "imap", "pop3", …
	Mode     Mode   // the mode in force (never ModeAuto)

	// Greeting is the server's first line(s), as received.
	Greeting string
	// CapsBefore and CapsAfter are the capabilities announced before and
	// after TLS (EHLO keywords, IMAP capabilities, POP3 CAPA lines), upper
	// case for keywords. With ModeImplicit CapsBefore is empty.
	CapsBefore []string
	CapsAfter  []string
	// AuthBefore and AuthAfter are the login mechanisms offered before and
	// after TLS ("PLAIN", "LOGIN", "USER" for POP3 USER/PASS, "LOGIN" for the
	// IMAP LOGIN command).
	AuthBefore []string
	AuthAfter  []string

	// Offered reports whether the server advertised the upgrade in plaintext.
	Offered bool
	// UpgradeRequired reports that the server marked the upgrade mandatory
	// before anything else (XMPP <starttls><required/></starttls>).
	UpgradeRequired bool
	// UpgradeReply is the server's answer to the upgrade command, if sent.
	UpgradeReply string
	// Upgraded reports whether the connection ended up protected by TLS.
	Upgraded bool
	// OfferedAfterTLS reports that the server still advertised the upgrade
	// over TLS (RFC 3207 §4.2 forbids it for SMTP; likewise for the others).
	OfferedAfterTLS bool
	// CapsReread reports that the client asked for capabilities again over
	// TLS and got an answer.
	CapsReread bool

	// TLS is the negotiated connection state, nil without TLS.
	TLS *tls.ConnectionState

	// PlaintextAfterUpgrade holds the bytes the server sent after its
	// go-ahead and before the TLS handshake (response injection). The
	// upgrade fails with ErrPlaintextAfterUpgrade when it is not empty.
	PlaintextAfterUpgrade []byte

	// Injection is the result of the STARTTLS command-injection probe,
	// nil unless ClientOptions.ProbeInjection was set and the protocol has
	// a command stream to inject into (LDAP and MySQL leave it nil).
	Injection *InjectionProbe

	// Transcript is the dialog, if ClientOptions.Transcript was set.
	Transcript *Transcript
}

// InjectionProbe is the outcome of the CVE-2011-0411 probe: the client sent
// a harmless command in the same packet as the upgrade command and watched
// whether the server answered it inside TLS.
type InjectionProbe struct {
	// Sent is the command pipelined after the upgrade command.
	Sent string
	// Reply is what the server sent over TLS before the client spoke; empty
	// when the server answered nothing (not vulnerable).
	Reply string
	// Vulnerable reports that the server executed the injected command.
	Vulnerable bool
	// Closed reports that the server closed the connection instead of
	// completing the dialog (a safe reaction, too).
	Closed bool
	// Err is set when the probe could not be completed (for example the
	// upgrade was refused).
	Err string
}
