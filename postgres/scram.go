package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAMSHA256 is the SASL mechanism name (RFC 7677).
const SCRAMSHA256 = "SCRAM-SHA-256"

// gs2NoBinding is the GS2 header of a client without channel binding
// (RFC 5802 §7: "n,,"); PostgreSQL ignores the authzid and the user name
// in the SCRAM messages (the StartupMessage names the user).
const gs2NoBinding = "n,,"

// SCRAMSecret is what a server stores for SCRAM-SHA-256 (RFC 5802 §3):
// never the password itself.
type SCRAMSecret struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewSCRAMSecret derives the secret for password with salt and the
// iteration count (PostgreSQL's default is 4096). A nil salt means 16
// random bytes. The password is used as given: PostgreSQL applies SASLprep
// first, which changes nothing for ASCII passwords.
func NewSCRAMSecret(password string, salt []byte, iterations int) (*SCRAMSecret, error) {
	if iterations < 1 || iterations > maxSCRAMIterations {
		return nil, errorf("SCRAM iteration count %d out of range", iterations)
	}
	if salt == nil {
		salt = make([]byte, 16)
		rand.Read(salt)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, errorf("SCRAM: %w", err)
	}
	ck := hmacSHA256(salted, "Client Key")
	sk := sha256.Sum256(ck)
	return &SCRAMSecret{Iterations: iterations, Salt: append([]byte(nil), salt...), StoredKey: sk[:], ServerKey: hmacSHA256(salted, "Server Key")}, nil
}

// ParseSCRAMSecret parses PostgreSQL's stored form (pg_authid.rolpassword):
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", base64.
func ParseSCRAMSecret(s string) (*SCRAMSecret, error) {
	bad := errorf("malformed SCRAM secret")
	rest, ok := strings.CutPrefix(s, SCRAMSHA256+"$")
	if !ok {
		return nil, bad
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, bad
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return nil, bad
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > maxSCRAMIterations {
		return nil, bad
	}
	sec := &SCRAMSecret{Iterations: n}
	for _, f := range []struct {
		dst *[]byte
		s   string
	}{{&sec.Salt, salt}, {&sec.StoredKey, stored}, {&sec.ServerKey, server}} {
		if *f.dst, err = base64.StdEncoding.DecodeString(f.s); err != nil {
			return nil, bad
		}
	}
	if len(sec.StoredKey) != sha256.Size || len(sec.ServerKey) != sha256.Size || len(sec.Salt) == 0 {
		return nil, bad
	}
	return sec, nil
}

// String returns the secret in PostgreSQL's stored form.
func (s *SCRAMSecret) String() string {
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s$%d:%s$%s:%s", SCRAMSHA256, s.Iterations, b(s.Salt), b(s.StoredKey), b(s.ServerKey))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func nonce() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// scramAttrs parses "a=v,b=w" (RFC 5802 §5.1): single-letter names, each
// at most once.
func scramAttrs(msg string) (map[byte]string, error) {
	attrs := map[byte]string{}
	for part := range strings.SplitSeq(msg, ",") {
		if len(part) < 2 || part[1] != '=' || part[0] < 'a' || part[0] > 'z' {
			return nil, errorf("SCRAM: malformed attribute %q", clipText(part, 40))
		}
		if _, dup := attrs[part[0]]; dup {
			return nil, errorf("SCRAM: attribute %q repeated", part[0])
		}
		attrs[part[0]] = part[2:]
	}
	return attrs, nil
}

// scramClient is the client side of one SCRAM-SHA-256 exchange.
type scramClient struct {
	password        string
	nonce           string
	clientFirstBare string
	serverSignature []byte
}

func newSCRAMClient(password string) *scramClient {
	c := &scramClient{password: password, nonce: nonce()}
	c.clientFirstBare = "n=,r=" + c.nonce
	return c
}

// first is the client-first-message.
func (c *scramClient) first() string { return gs2NoBinding + c.clientFirstBare }

// final answers the server-first-message with the client-final-message.
func (c *scramClient) final(serverFirst string) (string, error) {
	a, err := scramAttrs(serverFirst)
	if err != nil {
		return "", err
	}
	if _, ok := a['m']; ok {
		return "", errorf("SCRAM: unsupported mandatory extension")
	}
	r, s, i := a['r'], a['s'], a['i']
	if !strings.HasPrefix(r, c.nonce) || len(r) == len(c.nonce) {
		return "", errorf("SCRAM: the server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(salt) == 0 {
		return "", errorf("SCRAM: malformed salt")
	}
	iter, err := strconv.Atoi(i)
	if err != nil || iter < 1 {
		return "", errorf("SCRAM: malformed iteration count %q", clipText(i, 20))
	}
	if iter > maxSCRAMIterations {
		return "", errorf("SCRAM: iteration count %d above the limit of %d", iter, maxSCRAMIterations)
	}
	salted, err := pbkdf2.Key(sha256.New, c.password, salt, iter, sha256.Size)
	if err != nil {
		return "", errorf("SCRAM: %w", err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2NoBinding)) + ",r=" + r
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := hmacSHA256(stored[:], authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, sig)
	c.serverSignature = hmacSHA256(hmacSHA256(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks the server-final-message: the server proves it knows the
// secret too (RFC 5802 §3 ServerSignature).
func (c *scramClient) verify(serverFinal string) error {
	a, err := scramAttrs(serverFinal)
	if err != nil {
		return err
	}
	if e, ok := a['e']; ok {
		return errorf("SCRAM: server error %q", clipText(e, 100))
	}
	v, err := base64.StdEncoding.DecodeString(a['v'])
	if err != nil || c.serverSignature == nil || !hmac.Equal(v, c.serverSignature) {
		return errorf("SCRAM: the server signature does not verify: the server does not know the password (impostor?)")
	}
	return nil
}

// scramServer is the server side of one SCRAM-SHA-256 exchange.
type scramServer struct {
	secret          *SCRAMSecret
	clientFirstBare string
	serverFirst     string
	nonce           string
	gs2             string
}

var errSCRAMProof = errors.New("postgres: SCRAM proof does not verify")

// first handles the client-first-message.
func (s *scramServer) first(msg string) (string, error) {
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return "", errorf("SCRAM: malformed client-first-message")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return "", errorf("SCRAM: channel binding requested but not offered")
	default:
		return "", errorf("SCRAM: malformed GS2 header")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok || (authz != "" && !strings.HasPrefix(authz, "a=")) {
		return "", errorf("SCRAM: malformed client-first-message")
	}
	a, err := scramAttrs(bare)
	if err != nil {
		return "", err
	}
	if _, ok := a['m']; ok {
		return "", errorf("SCRAM: unsupported mandatory extension")
	}
	cn, ok := a['r']
	if !ok || cn == "" || strings.ContainsAny(cn, ",") {
		return "", errorf("SCRAM: missing client nonce")
	}
	s.gs2 = flag + "," + authz + ","
	s.clientFirstBare = bare
	s.nonce = cn + nonce()
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(s.secret.Salt), s.secret.Iterations)
	return s.serverFirst, nil
}

// final checks the client-final-message and returns the
// server-final-message; errSCRAMProof means a wrong password.
func (s *scramServer) final(msg string) (string, error) {
	withoutProof, p, ok := strings.Cut(msg, ",p=")
	if !ok {
		return "", errorf("SCRAM: client-final-message without proof")
	}
	a, err := scramAttrs(withoutProof)
	if err != nil {
		return "", err
	}
	if a['c'] != base64.StdEncoding.EncodeToString([]byte(s.gs2)) {
		return "", errorf("SCRAM: channel binding data does not match")
	}
	if a['r'] != s.nonce {
		return "", errorf("SCRAM: nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(p)
	if err != nil || len(proof) != sha256.Size {
		return "", errorf("SCRAM: malformed proof")
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	sig := hmacSHA256(s.secret.StoredKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, proof, sig)
	got := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(got[:], s.secret.StoredKey) != 1 {
		return "", errSCRAMProof
	}
	return "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(s.secret.ServerKey, authMessage)), nil
}
