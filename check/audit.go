package check

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/tlsscan"
)

// ScanInfo says how the enumeration went.
type ScanInfo struct {
	Connections int      `json:"connections"`
	Seconds     float64  `json:"seconds"`
	Errors      []string `json:"errors,omitempty"`
}

// scan enumerates what the server accepts, through the protocol's own
// upgrade on every probe connection: dial.Dial with ClientOptions.Intercept
// hands each connection to the scanner where TLS starts.
func scan(ctx context.Context, t *starttls.Target, base *dial.Options, serverName string, timeout time.Duration, maxConns int) (*tlsscan.Result, error) {
	dialer := func(ctx context.Context, probe func(context.Context, net.Conn) error) error {
		o := *base
		o.Client.Transcript = nil
		o.Client.ProbeInjection = false
		var probeErr error
		ran := false
		o.Client.Intercept = func(ctx context.Context, conn net.Conn) error {
			ran = true
			probeErr = probe(ctx, conn)
			return probeErr
		}
		s, _, err := dial.Dial(ctx, t, &o)
		if s != nil {
			s.Close()
		}
		if ran {
			return probeErr
		}
		if err == nil {
			return errors.New("the dialog ended without starting TLS")
		}
		return err
	}
	return tlsscan.Scan(ctx, dialer, &tlsscan.Options{ServerName: serverName, MaxConns: maxConns, Timeout: timeout})
}

// fillScan copies the enumeration into the report.
func (r *Report) fillScan(res *tlsscan.Result, d time.Duration) {
	if r.TLS == nil {
		return
	}
	t := r.TLS
	t.Versions = res.Versions
	t.Ciphers = res.Ciphers
	if t.Ciphers == nil {
		t.Ciphers = []tlsscan.Cipher{}
	}
	t.ServerCipherOrder = res.ServerCipherOrder
	t.Groups = res.Groups
	if t.Groups == nil {
		t.Groups = []string{}
	}
	t.DHBits = res.DHBits
	t.FallbackSCSV = res.FallbackSCSV
	t.SecureRenegotiation = res.SecureRenegotiation
	t.Compression = res.Compression
	t.SessionIDs = res.SessionIDs
	t.SessionTickets = res.SessionTickets
	t.Scan = &ScanInfo{Connections: res.Connections, Seconds: d.Seconds(), Errors: res.Errors}
}

// quickVersions is the versions object of a --quick check: only the
// negotiated version is known.
func quickVersions(negotiated string) map[string]*bool {
	m := map[string]*bool{}
	for _, v := range tlsscan.Versions {
		m[v] = nil
	}
	yes := true
	switch negotiated {
	case "TLS 1.0":
		m[tlsscan.TLS10] = &yes
	case "TLS 1.1":
		m[tlsscan.TLS11] = &yes
	case "TLS 1.2":
		m[tlsscan.TLS12] = &yes
	case "TLS 1.3":
		m[tlsscan.TLS13] = &yes
	case "SSLv3":
		m[tlsscan.SSLv3] = &yes
	}
	return m
}

func accepted(m map[string]*bool, v string) bool { return m[v] != nil && *m[v] }

// judgeScan turns the enumeration into findings. Severities are chosen so
// that a server with today's defaults (TLS 1.2 and 1.3, OpenSSL security
// level 2) passes, and what an attacker can use fails: obsolete protocol
// versions, broken or anonymous suites, compression, renegotiation without
// RFC 5746. What is merely dated is reported as info.
func (r *Report) judgeScan() {
	t := r.TLS
	if t == nil || t.Scan == nil {
		return
	}
	var old []string
	for _, v := range []string{tlsscan.SSLv2, tlsscan.SSLv3, tlsscan.TLS10, tlsscan.TLS11} {
		if accepted(t.Versions, v) {
			old = append(old, v)
		}
	}
	if len(old) > 0 {
		r.add(Fail, "tls-version-obsolete", "the server accepts "+strings.Join(old, ", ")+" (RFC 8996 deprecates everything before TLS 1.2; SSL is broken)", adviceFor(r.Protocol).versions)
	}
	if t.Versions[tlsscan.TLS13] != nil && !*t.Versions[tlsscan.TLS13] {
		r.add(Info, "no-tls13", "the server does not accept TLS 1.3", "enable TLS 1.3 (OpenSSL 1.1.1 or later)")
	}
	var anon, broken, dated, noFS []string
	for _, c := range t.Ciphers {
		name := c.Version + " " + c.Name
		switch {
		case c.Anonymous:
			anon = append(anon, name)
		case brokenCipher(c.Name):
			broken = append(broken, name)
		case c.Obsolete:
			dated = append(dated, name)
		}
		if !c.ForwardSecrecy && !c.Anonymous {
			noFS = append(noFS, name)
		}
	}
	if len(anon) > 0 {
		// Between MX hosts on port 25 TLS is opportunistic and mostly
		// unauthenticated (RFC 7435), and Postfix offers anonymous suites
		// there by default: a client that verifies never picks them. On
		// every other port they let an attacker in without a certificate.
		sev, why := Fail, "no server authentication: an active attacker needs no certificate"
		if strings.HasPrefix(r.Target, "smtp://") {
			sev, why = Warn, "no server authentication; tolerable for opportunistic MX-to-MX TLS, where clients that verify never pick them"
		}
		r.add(sev, "cipher-anonymous", fmt.Sprintf("the server accepts %d anonymous suites (%s): %s", len(anon), why, short(anon)), adviceFor(r.Protocol).ciphers)
	}
	if len(broken) > 0 {
		r.add(Fail, "cipher-obsolete", fmt.Sprintf("the server accepts %d broken suites (NULL, EXPORT, RC4, DES, 3DES or MD5): %s", len(broken), short(broken)), adviceFor(r.Protocol).ciphers)
	}
	if len(dated) > 0 {
		r.add(Info, "cipher-dated", fmt.Sprintf("the server accepts %d dated suites (CBC with SHA-1 and the like; not broken, but TLS 1.2 AEAD suites are better): %s", len(dated), short(dated)), "")
	}
	if len(noFS) > 0 {
		r.add(Info, "cipher-no-forward-secrecy", fmt.Sprintf("%d accepted suites have no forward secrecy (RSA key exchange): %s", len(noFS), short(noFS)), "prefer ECDHE suites")
	}
	if t.ServerCipherOrder != nil && !*t.ServerCipherOrder {
		sev := Info
		if len(anon)+len(broken) > 0 {
			sev = Warn // the client's order may pick a broken suite
		}
		r.add(sev, "no-server-cipher-order", "the server follows the client's order of cipher suites", adviceFor(r.Protocol).order)
	}
	switch {
	case t.DHBits > 0 && t.DHBits < 1024:
		r.add(Fail, "dh-weak", fmt.Sprintf("finite-field DH with a %d-bit prime (Logjam)", t.DHBits), "use a 2048-bit or larger DH group, or ECDHE only")
	case t.DHBits > 0 && t.DHBits < 2048:
		r.add(Warn, "dh-weak", fmt.Sprintf("finite-field DH with a %d-bit prime", t.DHBits), "use a 2048-bit or larger DH group, or ECDHE only")
	}
	if t.FallbackSCSV != nil && !*t.FallbackSCSV {
		sev := Info // TLS 1.3's own downgrade sentinel covers 1.2 and up
		if len(old) > 0 {
			sev = Warn
		}
		r.add(sev, "fallback-scsv-missing", "the server ignores TLS_FALLBACK_SCSV (RFC 7507): a client that retries with a lower version can be downgraded", "")
	}
	if t.SecureRenegotiation != nil && !*t.SecureRenegotiation {
		r.add(Fail, "renegotiation-insecure", "the server does not support secure renegotiation (RFC 5746)", "upgrade the TLS library")
	}
	if t.Compression != nil && *t.Compression {
		r.add(Fail, "tls-compression", "the server accepts TLS compression (CRIME)", "disable TLS compression")
	}
}

// brokenCipher: suites whose cryptography is broken or too weak for any use.
func brokenCipher(name string) bool {
	for _, s := range []string{"_NULL_", "EXPORT", "_RC4_", "_DES_", "_DES40_", "3DES", "_MD5", "_RC2_"} {
		if strings.Contains(name, s) || strings.HasSuffix(name, strings.TrimSuffix(s, "_")) {
			return true
		}
	}
	return false
}

// short lists at most five items.
func short(s []string) string {
	if len(s) <= 5 {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
}

// oidTLSFeature is the TLS Feature extension (RFC 7633); status_request
// (5) in it is "must staple".
var oidTLSFeature = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

func mustStaple(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidTLSFeature) {
			var features []int
			if _, err := asn1.Unmarshal(e.Value, &features); err == nil && slices.Contains(features, 5) {
				return true
			}
		}
	}
	return false
}

// judgeChain reports what is wrong with the presented chain beyond trust:
// its order, a missing intermediate, revocation and stapling.
func (r *Report) judgeChain(chain []*x509.Certificate, ocsp []byte) {
	c := r.Cert
	if c == nil || len(chain) == 0 {
		return
	}
	leaf := chain[0]
	c.OCSPStapled = len(ocsp) > 0
	c.MustStaple = mustStaple(leaf)
	c.OCSPServers = leaf.OCSPServer
	c.CRLs = leaf.CRLDistributionPoints
	for i := 0; i+1 < len(chain); i++ {
		if chain[i].CheckSignatureFrom(chain[i+1]) != nil {
			r.add(Warn, "cert-chain-order", fmt.Sprintf("certificate %d of the chain (%s) is not signed by the next one (%s)", i, chain[i].Subject, chain[i+1].Subject), "serve the chain in order: leaf, then each issuer")
			break
		}
	}
	last := chain[len(chain)-1]
	selfSigned := string(last.RawSubject) == string(last.RawIssuer)
	if !c.Trusted && !selfSigned && strings.Contains(c.TrustError, "unknown authority") {
		r.add(Warn, "cert-chain-incomplete", fmt.Sprintf("the server does not send the certificate of %q, which signed %q: clients that do not have it cannot build the chain (a missing intermediate, or a CA they do not trust)", last.Issuer, last.Subject), "serve the intermediate certificates after the leaf (Postfix: smtpd_tls_chain_files; Dovecot: ssl_cert with the chain)")
	}
	if c.MustStaple && !c.OCSPStapled {
		r.add(Fail, "cert-must-staple-not-stapled", "the certificate demands OCSP stapling (must-staple) but the server staples nothing: clients that enforce it refuse the connection", "enable OCSP stapling")
	}
	if len(leaf.OCSPServer) == 0 && len(leaf.CRLDistributionPoints) == 0 && !c.SelfSigned {
		r.add(Info, "cert-no-revocation", "the certificate names no OCSP responder and no CRL: it cannot be revoked in a way clients check", "")
	}
}
