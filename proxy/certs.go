package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// KeyPair names a certificate chain and its key, PEM files.
type KeyPair struct {
	CertFile, KeyFile string
}

// Certificates serves one or more certificates chosen by SNI and reloads
// them from their files without dropping connections: handshakes in
// progress keep the set they started with, later ones get the new set. A
// failed reload keeps the old set.
type Certificates struct {
	pairs []KeyPair
	set   atomic.Pointer[certSet]
	stamp atomic.Pointer[string] // file sizes and times at the last load
}

type certSet struct {
	certs []*tls.Certificate
	names [][]string // per certificate: lower-case DNS names and IPs
}

// LoadCertificates loads the pairs; the first is the default for clients
// that send no SNI or a name no certificate has.
func LoadCertificates(pairs ...KeyPair) (*Certificates, error) {
	if len(pairs) == 0 {
		return nil, errors.New("proxy: no certificate")
	}
	c := &Certificates{pairs: append([]KeyPair(nil), pairs...)}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads every pair again; on any error the old set stays.
func (c *Certificates) Reload() error {
	stamp := c.fileStamp()
	set := &certSet{}
	for _, p := range c.pairs {
		crt, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return fmt.Errorf("proxy: certificate %s / key %s: %w", p.CertFile, p.KeyFile, err)
		}
		leaf := crt.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(crt.Certificate[0]); err != nil {
				return fmt.Errorf("proxy: certificate %s: %w", p.CertFile, err)
			}
		}
		var names []string
		for _, n := range leaf.DNSNames {
			names = append(names, strings.ToLower(n))
		}
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = append(names, strings.ToLower(leaf.Subject.CommonName))
		}
		set.certs = append(set.certs, &crt)
		set.names = append(set.names, names)
	}
	c.set.Store(set)
	c.stamp.Store(&stamp)
	return nil
}

// GetCertificate is a tls.Config.GetCertificate: the first certificate
// whose names match the SNI (exactly, or by a "*." wildcard for one
// label), else the first one.
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := c.set.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		for i, names := range set.names {
			for _, n := range names {
				if n == name || (strings.HasPrefix(n, "*.") && wildcardMatch(n[1:], name)) {
					return set.certs[i], nil
				}
			}
		}
	}
	return set.certs[0], nil
}

func wildcardMatch(suffix, name string) bool {
	i := strings.IndexByte(name, '.')
	return i > 0 && name[i:] == suffix
}

// Config returns a server tls.Config that takes its certificates from c.
func (c *Certificates) Config() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}

// fileStamp summarises the files' sizes and modification times.
func (c *Certificates) fileStamp() string {
	var b strings.Builder
	for _, p := range c.pairs {
		for _, f := range []string{p.CertFile, p.KeyFile} {
			if fi, err := os.Stat(f); err == nil {
				fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
			} else {
				fmt.Fprintf(&b, "%s:missing;", f)
			}
		}
	}
	return b.String()
}

// Changed reports whether a file changed since the last load.
func (c *Certificates) Changed() bool {
	old := c.stamp.Load()
	return old == nil || *old != c.fileStamp()
}

// Watch reloads the certificates when their files change, polling every
// interval until ctx ends, and reports each reload (err nil) or failed
// reload to report, which may be nil. Polling the files' times needs no
// inotify dependency and also sees a directory swapped by rename, as
// certificate tools do.
func (c *Certificates) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.Changed() {
			continue
		}
		err := c.Reload()
		if err != nil {
			// Do not retry the same broken files every tick.
			s := c.fileStamp()
			c.stamp.Store(&s)
		}
		if report != nil {
			report(err)
		}
	}
}
