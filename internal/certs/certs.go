// Package certs makes the certificates of the lab and of the tests: a CA and
// leaves issued by it, with the flaws the lab needs (expired, wrong name,
// self-signed). Keys are ECDSA P-256 unless asked otherwise, which keeps
// generation fast enough for every test run.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority held in memory.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	DER  []byte
}

// NewCA creates a CA named name, valid from five years ago for ten years
// ahead, so that it covers the lab's expired and not-yet-valid leaves.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"starttls lab"}},
		NotBefore:             now.AddDate(-5, 0, 0),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, DER: der}, nil
}

// PEM returns the CA certificate in PEM form, for a --ca file.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.DER})
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf describes a server certificate to issue.
type Leaf struct {
	// Names are DNS names and IP addresses (parsed as such) for the SAN.
	// The first one is also the subject common name.
	Names     []string
	NotBefore time.Time // zero: an hour ago
	NotAfter  time.Time // zero: 90 days from now
	// RSABits, if set, makes an RSA key of that size instead of P-256.
	RSABits int
}

// Issue makes a leaf certificate signed by ca.
func (ca *CA) Issue(l Leaf) (tls.Certificate, error) {
	return issue(l, ca.Cert, ca.Key, ca.DER)
}

// SelfSigned makes a self-signed leaf certificate.
func SelfSigned(l Leaf) (tls.Certificate, error) {
	return issue(l, nil, nil, nil)
}

func issue(l Leaf, parent *x509.Certificate, parentKey crypto.Signer, parentDER []byte) (tls.Certificate, error) {
	var key crypto.Signer
	var err error
	if l.RSABits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, l.RSABits)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if rsaKey, ok := key.(*rsa.PrivateKey); ok && rsaKey != nil {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.AddDate(0, 0, 90)
	}
	if len(l.Names) > 0 {
		tmpl.Subject.CommonName = l.Names[0]
	}
	for _, n := range l.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer := key
	if parent == nil {
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	chain := [][]byte{der}
	if parentDER != nil {
		chain = append(chain, parentDER)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

// TestPair returns a CA and a leaf for 127.0.0.1, ::1 and localhost, plus a
// server and a client tls.Config that trust each other, for tests.
func TestPair() (server, client *tls.Config, err error) {
	ca, err := NewCA("starttls test CA")
	if err != nil {
		return nil, nil, err
	}
	leaf, err := ca.Issue(Leaf{Names: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{Certificates: []tls.Certificate{leaf}}
	client = &tls.Config{RootCAs: ca.Pool()}
	return server, client, nil
}
