package mysql

import (
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

// TestMariaDBClient: the real mariadb client (skipped when missing)
// against our Server: login and queries over TLS with the certificate
// verified, refused without TLS (ERR 3159) and refused with a certificate
// for another name.
func TestMariaDBClient(t *testing.T) {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("mariadb client not installed")
	}
	ca, err := certs.NewCA("mysql client test CA")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1", "localhost"}})
	wrong, _ := ca.Issue(certs.Leaf{Names: []string{"wrong-name.starttls.test"}})
	caFile := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(caFile, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	serve := func(cert tls.Certificate) string {
		_, port, _ := net.SplitHostPort(startServer(t, &Server{ServerOptions: starttls.ServerOptions{
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, Backend: &memBackend{}}))
		return port
	}
	goodPort, wrongPort := serve(good), serve(wrong)
	run := func(port string, args ...string) (string, error) {
		base := []string{"--no-defaults", "--connect-timeout=5", "-h", "127.0.0.1", "-P", port, "-u", testUser, "-p" + testPassword}
		out, err := exec.Command(bin, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	tlsArgs := []string{"--ssl", "--ssl-ca=" + caFile, "--ssl-verify-server-cert", "-e", "SELECT 1; SHOW STATUS LIKE 'Ssl_cipher'"}
	out, err := run(goodPort, tlsArgs...)
	if err != nil || !strings.Contains(out, "Ssl_cipher\tTLS_") {
		t.Fatalf("mariadb over TLS: %v\n%s", err, out)
	}
	if out, err := run(goodPort, "--skip-ssl", "-e", "SELECT 1"); err == nil || !strings.Contains(out, "3159") {
		t.Errorf("mariadb without TLS: %v\n%s", err, out)
	}
	if out, err := run(wrongPort, tlsArgs...); err == nil {
		t.Errorf("mariadb accepted a certificate for another name:\n%s", out)
	}
	if out, err := run(goodPort, "--ssl", "--ssl-ca="+caFile, "--ssl-verify-server-cert", "-pwrong", "-e", "SELECT 1"); err == nil || !strings.Contains(out, "1045") {
		t.Errorf("mariadb with a wrong password: %v\n%s", err, out)
	}
}
