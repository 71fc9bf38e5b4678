package config

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/proxy"
)

// pemPair writes a test certificate and key and returns their paths.
func pemPair(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	crt, err := certs.SelfSigned(certs.Leaf{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Certificate[0]})
	der, err := x509.MarshalPKCS8PrivateKey(crt.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	os.WriteFile(cf, certPEM, 0o600)
	os.WriteFile(kf, keyPEM, 0o600)
	return cf, kf
}

func TestParseGood(t *testing.T) {
	cf, kf := pemPair(t)
	text := `
log_format = "json"
metrics = "127.0.0.1:9100"
shutdown_timeout = "10s"

[[listener]]
name = "submission"
listen = "0.0.0.0:587"
protocol = "smtp"
backend = "127.0.0.1:2587"
cert = "` + cf + `"
key = "` + kf + `"
accept_proxy = true
send_proxy = 2
max_conns = 1000
rate_per_ip = 5
idle_timeout = "10m"

[[listener]]
listen = "127.0.0.1:2526"
protocol = "smtp"
upstream = "mail.example.org:587"
mode = "required"
`
	f, err := Parse("proxy.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Listeners) != 2 || f.Listeners[1].Name != "127.0.0.1:2526" || f.ShutdownTimeout.Seconds() != 10 {
		t.Fatalf("parsed %+v", f)
	}
	pl, store, err := f.Listeners[0].Build()
	if err != nil || store == nil || pl.IdleTimeout.Minutes() != 10 || pl.SendProxy != 2 {
		t.Fatalf("Build = %+v, %v, %v", pl, store, err)
	}
	// A mail domain: mode is a policy mode there, ca the MTA-STS roots.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM, _ := os.ReadFile(cf)
	os.WriteFile(caFile, certPEM, 0o644)
	f, err = Parse("proxy.toml", `[[listener]]
listen = "127.0.0.1:2527"
protocol = "smtp"
upstream_domain = "example.org"
mode = "mta-sts"
resolver = "127.0.0.1:5353"
smtp_port = 2525
mta_sts_port = 8443
ca = "`+caFile+`"
hostname = "relay.example.net"
`)
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err = f.Listeners[0].Build()
	if err != nil || pl.UpstreamDomain != "example.org" || pl.DomainMode != proxy.DomainMTASTS || pl.ClientTLS != nil {
		t.Fatalf("Build = %+v, %v", pl, err)
	}
	if o := pl.DomainOptions; o == nil || o.Resolver.Addr != "127.0.0.1:5353" || o.Port != 2525 || o.MTASTSPort != 8443 || o.Roots == nil {
		t.Fatalf("DomainOptions = %+v", o)
	}
}

func TestParseErrors(t *testing.T) {
	cf, kf := pemPair(t)
	good := "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"tcp\"\nimplicit = true\nbackend = \"127.0.0.1:2\"\ncert = \"" + cf + "\"\nkey = \"" + kf + "\"\n"
	cases := []struct{ name, text, want string }{
		{"syntax", "metrics = \"x\"\nlog_format = json\n", "proxy.toml:2:"},
		{"unknown key", good + "bakend = \"x\"\n", `proxy.toml:8: unknown key "listener.bakend"`},
		{"bad duration", good + "idle_timeout = \"ten\"\n", "proxy.toml:8:"},
		{"no listener", "log_format = \"json\"\n", "no [[listener]]"},
		{"log format", "log_format = \"xml\"\n" + good, "proxy.toml:1: log_format"},
		{"tcp without implicit", strings.Replace(good, "implicit = true\n", "", 1), `proxy.toml:1: listener "127.0.0.1:1": protocol "tcp" has no STARTTLS dialog`},
		{"mysql starttls", good + "[[listener]]\nlisten = \"127.0.0.1:3\"\nprotocol = \"mysql\"\nbackend = \"127.0.0.1:4\"\ncert = \"" + cf + "\"\nkey = \"" + kf + "\"\n", "proxy.toml:8: listener \"127.0.0.1:3\": proxy: not supported: STARTTLS in front of a mysql backend"},
		{"missing key file", strings.Replace(good, kf, "/nonexistent.pem", 1), "no such file"},
		{"no certificate", strings.Replace(strings.Replace(good, "cert = \""+cf+"\"\n", "", 1), "key = \""+kf+"\"\n", "", 1), "needs a certificate and key"},
		{"both sides", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream = \"x:25\"\nbackend = \"y:25\"\n", "one of backend, upstream and upstream_domain"},
		{"domain imap", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"imap\"\nupstream_domain = \"example.org\"\nmode = \"dane\"\n", "needs protocol smtp"},
		{"domain starttls mode", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream_domain = \"example.org\"\nmode = \"required\"\n", "want dane, mta-sts or policy"},
		{"domain no mode", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream_domain = \"example.org\"\n", "needs mode dane, mta-sts or policy"},
		{"domain resolver", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream_domain = \"example.org\"\nmode = \"dane\"\nresolver = \"127.0.0.1\"\n", "want HOST:PORT"},
		{"domain port", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream_domain = \"example.org\"\nmode = \"dane\"\nsmtp_port = 70000\n", "smtp_port = 70000"},
		{"resolver without domain", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream = \"x:25\"\nresolver = \"127.0.0.1:53\"\n", "apply to upstream_domain only"},
		{"opportunistic upstream", "[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"smtp\"\nupstream = \"x:25\"\nmode = \"opportunistic\"\n", "never plaintext or opportunistic"},
		{"require_tls false", good + "require_tls = false\n", "require_tls = false is not supported"},
		{"send_proxy 3", good + "send_proxy = 3\n", "send_proxy = 3"},
		{"duplicate", good + good, "defined twice"},
		{"unknown protocol", strings.Replace(good, `"tcp"`, `"gopher"`, 1), `unknown protocol "gopher"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("proxy.toml", c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// FuzzParse: any text gives a configuration or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add("[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"tcp\"\nimplicit = true\nbackend = \"127.0.0.1:2\"\n")
	f.Add("log_format = \"json\"\n[[listener]]\nprotocol = \"smtp\"\nupstream = \"x:25\"\nmode = \"implicit\"\nidle_timeout = \"-1s\"\n")
	f.Add("[[listener]]\ncerts = [{cert = \"a\"}]\nsend_proxy = 9\n")
	f.Fuzz(func(t *testing.T, text string) {
		Parse("fuzz.toml", text)
	})
}
