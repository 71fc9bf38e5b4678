package check

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"math"
	"net"
	"strings"
	"time"
)

func tlsInfo(st *tls.ConnectionState, serverName string) *TLSInfo {
	return &TLSInfo{
		Version:        tls.VersionName(st.Version),
		Cipher:         tls.CipherSuiteName(st.CipherSuite),
		ForwardSecrecy: forwardSecret(st),
		ALPN:           st.NegotiatedProtocol,
		ServerName:     serverName,
	}
}

// forwardSecret: every TLS 1.3 suite uses (EC)DHE; before 1.3 only the
// ECDHE and DHE key exchanges do.
func forwardSecret(st *tls.ConnectionState) bool {
	if st.Version >= tls.VersionTLS13 {
		return true
	}
	name := tls.CipherSuiteName(st.CipherSuite)
	return strings.HasPrefix(name, "TLS_ECDHE_") || strings.HasPrefix(name, "TLS_DHE_")
}

// verify judges the presented chain the way a verifying client would, but
// with each property on its own: trust (at a moment when the certificates
// are valid, so that an expired certificate from a trusted CA is reported as
// expired rather than untrusted), name and expiry.
func verify(st *tls.ConnectionState, serverName string, roots *x509.CertPool, now time.Time) *CertInfo {
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	leaf := st.PeerCertificates[0]
	c := &CertInfo{
		Subject:   leaf.Subject.String(),
		Issuer:    leaf.Issuer.String(),
		NotBefore: leaf.NotBefore.UTC(),
		NotAfter:  leaf.NotAfter.UTC(),
		DaysLeft:  int(math.Floor(leaf.NotAfter.Sub(now).Hours() / 24)),
		Signature: leaf.SignatureAlgorithm.String(),
		Expired:   now.After(leaf.NotAfter),
	}
	c.Names = append(c.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		c.Names = append(c.Names, ip.String())
	}
	if len(c.Names) == 0 && leaf.Subject.CommonName != "" {
		c.Names = []string{leaf.Subject.CommonName + " (CN only)"}
	}
	c.KeyType, c.KeyBits = keyInfo(leaf)
	for _, cert := range st.PeerCertificates {
		sum := sha256.Sum256(cert.Raw)
		c.Chain = append(c.Chain, ChainCert{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), NotAfter: cert.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:])})
	}
	// CheckSignatureFrom would insist that the parent be a CA; a
	// self-signed leaf usually is not one.
	c.SelfSigned = bytes.Equal(leaf.RawSubject, leaf.RawIssuer) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil

	inter := x509.NewCertPool()
	for _, cert := range st.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	// Trust is judged at now and, if the certificate is outside its
	// validity, at moments inside it, so that expiry is a finding of its
	// own and does not hide an untrusted chain (or the reverse).
	times := []time.Time{now}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		times = append(times, leaf.NotAfter.Add(-time.Minute), leaf.NotBefore.Add(time.Minute), leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore)/2))
	}
	var err error
	for _, at := range times {
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err == nil {
			break
		}
	}
	c.Trusted = err == nil
	if err != nil {
		c.TrustError = err.Error()
	}
	name := strings.TrimSuffix(serverName, ".")
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		name = ip.String()
	}
	c.NameMatch = name != "" && leaf.VerifyHostname(name) == nil
	return c
}

func keyInfo(cert *x509.Certificate) (string, int) {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return cert.PublicKeyAlgorithm.String(), 0
}
