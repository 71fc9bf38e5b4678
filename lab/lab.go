// Package lab runs local servers for every protocol, correct ones and
// deliberately broken ones, like badssl.com for STARTTLS. Each endpoint says
// which findings `starttls check` must report for it, which makes the lab
// both the demo and a test of the checker.
//
// The lab uses the protocol packages' own servers; a broken endpoint is a
// correct server with one setting turned (no certificate, a refused
// upgrade, an expired certificate, …), never a second dialog.
package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/smtp"
)

// Options configure a lab.
type Options struct {
	// Listen is the loopback address to listen on; empty means 127.0.0.1.
	Listen string
	// PortBase, if not zero, gives the endpoints consecutive ports from it,
	// in the order of Endpoints; zero picks free ports.
	PortBase int
	// Dir is where the CA certificate is written; empty means a new
	// temporary directory, removed by Close.
	Dir string
	// User and Password are the lab's credentials; empty means "alice" and
	// a fixed lab password.
	User, Password string
}

// Endpoint is one lab server.
type Endpoint struct {
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Protocol string   `json:"protocol"`
	Broken   bool     `json:"broken"`
	Expect   []string `json:"expect"`
	// About says in a few words what is wrong (or right) with it.
	About string `json:"about"`
}

// Lab is a running set of endpoints.
type Lab struct {
	CAFile    string
	CA        *certs.CA
	User      string
	Password  string
	Endpoints []Endpoint

	closers []func() error
	tmpDir  string
}

// variant is one way of running a server: correct, or broken in one way.
type variant struct {
	suffix string
	about  string
	expect []string
	// apply turns a correct server's options into the broken ones.
	apply func(o *starttls.ServerOptions, k *keys) error
}

// strongSuites are the TLS 1.2 suites of a correct lab endpoint: ECDHE
// with AEAD only, what `starttls check` expects of a well-configured
// server (TLS 1.3 suites are not configurable in Go and all strong).
var strongSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// keys are the certificates the variants choose from.
type keys struct {
	good, selfSigned, expired, wrongName tls.Certificate
}

var variants = []variant{
	{"", "correct: STARTTLS offered, valid certificate, login only after TLS", nil, nil},
	{"-no-starttls", "the upgrade is not offered", []string{"starttls-not-offered"}, func(o *starttls.ServerOptions, _ *keys) error {
		o.TLSConfig = nil
		return nil
	}},
	{"-refused", "STARTTLS advertised, then refused with a temporary error", []string{"starttls-refused"}, func(o *starttls.ServerOptions, _ *keys) error {
		o.RefuseUpgrade = true
		return nil
	}},
	{"-handshake-failure", "STARTTLS accepted, then the TLS handshake fails", []string{"starttls-failed"}, func(o *starttls.ServerOptions, _ *keys) error {
		o.TLSConfig = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, errors.New("lab: no certificate on purpose")
		}}
		return nil
	}},
	{"-self-signed", "self-signed certificate", []string{"cert-self-signed", "cert-untrusted"}, func(o *starttls.ServerOptions, k *keys) error {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{k.selfSigned}}
		return nil
	}},
	{"-expired", "certificate expired a month ago", []string{"cert-expired"}, func(o *starttls.ServerOptions, k *keys) error {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{k.expired}}
		return nil
	}},
	{"-wrong-name", "certificate for another name", []string{"cert-name-mismatch"}, func(o *starttls.ServerOptions, k *keys) error {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{k.wrongName}}
		return nil
	}},
	{"-tls10", "only TLS 1.0", []string{"tls-version-obsolete"}, func(o *starttls.ServerOptions, k *keys) error {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{k.good}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
		return nil
	}},
	{"-auth-before-tls", "login offered and accepted before TLS", []string{"auth-before-tls"}, func(o *starttls.ServerOptions, _ *keys) error {
		o.AllowPlaintextLogin = true
		return nil
	}},
	{"-injection", "executes commands pipelined after STARTTLS inside TLS (CVE-2011-0411)", []string{"command-injection"}, func(o *starttls.ServerOptions, _ *keys) error {
		o.InsecureKeepPipelined = true
		return nil
	}},
}

// kind is one protocol flavour of the lab: a scheme and how to start its
// server. Only the plain STARTTLS schemes get the broken variants, less
// those in skip (suffixes such as "-auth-before-tls" for a protocol without
// login, "-injection" for one without a command stream to inject into).
type kind struct {
	scheme   string
	variants bool
	serve    func(o starttls.ServerOptions, st *store, l net.Listener) (stop func() error)
	skip     []string
}

// serveWith turns a constructor of a protocol's Server into a kind's
// serve function: serve on l in the background, stop with Close.
func serveWith[S interface {
	Serve(net.Listener) error
	Close() error
}](mk func(starttls.ServerOptions, *store) S) func(starttls.ServerOptions, *store, net.Listener) func() error {
	return func(o starttls.ServerOptions, st *store, l net.Listener) func() error {
		s := mk(o, st)
		go s.Serve(l)
		return s.Close
	}
}

func kinds() []kind {
	smtpServe := func(lmtp, auth bool) func(starttls.ServerOptions, *store, net.Listener) func() error {
		return serveWith(func(o starttls.ServerOptions, st *store) *smtp.Server {
			return &smtp.Server{ServerOptions: o, Backend: smtpBackend{st}, LMTP: lmtp, RequireAuth: auth}
		})
	}
	imapServe := serveWith(func(o starttls.ServerOptions, st *store) *imap.Server {
		return &imap.Server{ServerOptions: o, Backend: imapBackend{st}}
	})
	pop3Serve := serveWith(func(o starttls.ServerOptions, st *store) *pop3.Server {
		return &pop3.Server{ServerOptions: o, Backend: pop3Backend{st}}
	})
	ks := []kind{
		{"smtp", true, smtpServe(false, false), nil},
		{"submission", false, smtpServe(false, true), nil},
		{"smtps", false, smtpServe(false, true), nil},
		{"lmtp", false, smtpServe(true, false), nil},
		{"imap", true, imapServe, nil},
		{"imaps", false, imapServe, nil},
		{"pop3", true, pop3Serve, nil},
		{"pop3s", false, pop3Serve, nil},
	}
	// Other protocols: their kinds come from lab/PROTOCOL.go, one line
	// each; the endpoints are put in the scheme table's order below.
	ks = append(ks, ircKinds()...)
	ks = append(ks, nntpKinds()...)
	ks = append(ks, postgresKinds()...)
	ks = append(ks, httpupgradeKinds()...)
	ks = append(ks, xmppKinds()...)
	ks = append(ks, ftpKinds()...)
	ks = append(ks, sieveKinds()...)
	ks = append(ks, ldapKinds()...)
	ks = append(ks, mysqlKinds()...)
	ks = append(ks, telnetKinds()...)
	// (new protocols above this line)

	// Endpoints (and --port-base ports) follow the scheme table.
	order := map[string]int{}
	for i, sc := range starttls.Schemes() {
		order[sc.Name] = i
	}
	slices.SortStableFunc(ks, func(a, b kind) int { return order[a.scheme] - order[b.scheme] })
	return ks
}

// Start generates the CA and certificates and starts every endpoint.
func Start(o *Options) (lab *Lab, err error) {
	if o == nil {
		o = &Options{}
	}
	host := o.Listen
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("lab: listen address %q is not a loopback IP address; the lab serves broken servers and stays on loopback", host)
	}
	lb := &Lab{User: o.User, Password: o.Password}
	if lb.User == "" {
		lb.User = "alice"
	}
	if lb.Password == "" {
		lb.Password = "lab-password"
	}
	defer func() {
		// lb, not the named result: every error return sets that to nil.
		if err != nil {
			lb.Close()
		}
	}()
	lab = lb
	ca, err := certs.NewCA("starttls lab CA")
	if err != nil {
		return nil, err
	}
	lab.CA = ca
	names := []string{host, "localhost"}
	if host != "::1" {
		names = append(names, "::1")
	}
	var k keys
	if k.good, err = ca.Issue(certs.Leaf{Names: names}); err != nil {
		return nil, err
	}
	if k.selfSigned, err = certs.SelfSigned(certs.Leaf{Names: names}); err != nil {
		return nil, err
	}
	now := time.Now()
	if k.expired, err = ca.Issue(certs.Leaf{Names: names, NotBefore: now.AddDate(0, -13, 0), NotAfter: now.AddDate(0, -1, 0)}); err != nil {
		return nil, err
	}
	if k.wrongName, err = ca.Issue(certs.Leaf{Names: []string{"wrong-name.starttls.test"}}); err != nil {
		return nil, err
	}

	dir := o.Dir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	} else {
		if dir, err = os.MkdirTemp("", "starttls-lab-"); err != nil {
			return nil, err
		}
		lab.tmpDir = dir
	}
	lab.CAFile = filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(lab.CAFile, ca.PEM(), 0o644); err != nil {
		return nil, fmt.Errorf("lab: writing the CA certificate: %w", err)
	}

	st := newStore(lab.User, lab.Password)
	port := o.PortBase
	for _, kd := range kinds() {
		sc, _ := starttls.LookupScheme(kd.scheme)
		vs := variants[:1]
		if kd.variants {
			vs = nil
			for _, v := range variants {
				if !slices.Contains(kd.skip, v.suffix) {
					vs = append(vs, v)
				}
			}
		}
		for _, v := range vs {
			so := starttls.ServerOptions{
				TLSConfig:   &tls.Config{Certificates: []tls.Certificate{k.good}, MinVersion: tls.VersionTLS12, CipherSuites: strongSuites},
				Implicit:    sc.Implicit,
				Hostname:    "lab.starttls.test",
				ReadTimeout: time.Minute,
			}
			if v.apply != nil {
				if err := v.apply(&so, &k); err != nil {
					return nil, err
				}
			}
			addr := net.JoinHostPort(host, "0")
			if port != 0 {
				addr = net.JoinHostPort(host, strconv.Itoa(port))
				port++
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			lab.closers = append(lab.closers, kd.serve(so, st, l))
			url := fmt.Sprintf("%s://%s", kd.scheme, l.Addr().String())
			about := v.about
			if sc.Implicit {
				about = "correct: implicit TLS, valid certificate"
			}
			lab.Endpoints = append(lab.Endpoints, Endpoint{
				Name: kd.scheme + v.suffix, URL: url, Protocol: sc.Protocol,
				Broken: v.apply != nil, Expect: append([]string{}, v.expect...), About: about,
			})
		}
	}
	return lab, nil
}

// Endpoint returns the endpoint named name.
func (l *Lab) Endpoint(name string) (Endpoint, bool) {
	for _, e := range l.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Close stops every server and removes the temporary directory.
func (l *Lab) Close() error {
	for _, c := range l.closers {
		c()
	}
	l.closers = nil
	if l.tmpDir != "" {
		os.RemoveAll(l.tmpDir)
		l.tmpDir = ""
	}
	return nil
}

// Wait blocks until ctx is done, then closes the lab.
func (l *Lab) Wait(ctx context.Context) error {
	<-ctx.Done()
	return l.Close()
}
