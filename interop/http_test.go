//go:build interop

package interop

// Module "http": real HTTPS clients (curl, Python's http.client) against
// the lab's https endpoint, and `starttls check` against the lab's
// http-upgrade endpoints (RFC 2817). The module starts no server: no
// Debian web server does the RFC 2817 upgrade any more (Apache removed it
// in 2.4.64, CVE-2025-49812; see scripts/interop/modules/http.sh).

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestHTTPCurl: curl --cacert LABCA https://127.0.0.1:PORT/ gets the lab
// page; without the lab CA it refuses the certificate.
func TestHTTPCurl(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "http")
	curl := needTool(t, "curl")
	l := startLab(t)
	host, port := l.addr(t, "https")
	url := "https://" + net.JoinHostPort(host, port) + "/"

	t.Run("curl→lab-https", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--cacert", l.CA, "-w", "\n%{http_code} %{http_version}", url)
		if r.Code != 0 || !strings.Contains(r.Stdout, "served over TLS") || !strings.HasSuffix(r.Stdout, "200 1.1") {
			r.dump(t)
			t.Fatal("curl did not get the page over TLS")
		}
	})
	t.Run("curl→lab-https(basic-auth)", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--cacert", l.CA, "-u", l.User+":"+l.Password, url+"private")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "Welcome "+l.User {
			r.dump(t)
			t.Fatal("curl Basic auth on /private failed")
		}
	})
	t.Run("curl→lab-https(untrusted)", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--cacert", e.CA, url)
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("curl accepted the lab certificate without the lab CA")
		}
	})
}

// TestHTTPPython: http.client.HTTPSConnection with a context trusting only
// the lab CA (name checked) gets the page and the protected page.
func TestHTTPPython(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "http")
	l := startLab(t)
	host, port := l.addr(t, "https")
	const script = `
import base64, http.client, ssl, sys
host, port, ca, user, pw = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
c.request("GET", "/")
r = c.getresponse()
print(r.status, r.read().decode().strip())
auth = base64.b64encode((user + ":" + pw).encode()).decode()
c.request("GET", "/private", headers={"Authorization": "Basic " + auth})
r = c.getresponse()
print(r.status, r.read().decode().strip())
print(c.sock.version())
`
	t.Run("python-http.client→lab-https", func(t *testing.T) {
		r := run(t, 30*time.Second, "", e.Python, "-c", script, host, port, l.CA, l.User, l.Password)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if r.Code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "200 ") || lines[1] != "200 Welcome "+l.User || !strings.HasPrefix(lines[2], "TLSv1.") {
			r.dump(t)
			t.Fatal("http.client did not get both pages over TLS")
		}
	})
}

// TestHTTPCheckLab: `starttls check` against the lab's http-upgrade
// endpoints: the correct one passes, the broken ones draw their findings.
func TestHTTPCheckLab(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "http")
	l := startLab(t)
	for _, ep := range l.Endpoints {
		if ep.Protocol != "http" {
			continue
		}
		t.Run("check→lab-"+ep.Name, func(t *testing.T) {
			rep := check(t, e, "--ca", l.CA, ep.URL)
			if !ep.Broken && rep.Verdict != "pass" {
				t.Fatalf("verdict %s, findings %v", rep.Verdict, rep.ids())
			}
			for _, want := range ep.Expect {
				if !rep.has(want) {
					t.Errorf("findings %v, missing %q", rep.ids(), want)
				}
			}
			if ep.Name == "http-upgrade" && (!rep.STARTTLS.Offered || !rep.STARTTLS.Upgraded || rep.Certificate == nil || !rep.Certificate.Trusted) {
				t.Errorf("starttls %+v certificate %+v", rep.STARTTLS, rep.Certificate)
			}
		})
	}
}
