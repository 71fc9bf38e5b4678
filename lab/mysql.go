package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/mysql"
)

// mysqlKinds is the MySQL endpoint with its variants. Skipped:
//
//   - "-injection": after the SSLRequest a client's next bytes are its TLS
//     ClientHello, so there is no command to pipeline and check has no
//     probe (the server side of the bug is tested in package mysql).
//   - "-auth-before-tls": a MySQL server tells whether it accepts a login
//     without TLS only to a correct password (MySQL checks
//     require_secure_transport after the password, MariaDB answers 1045
//     either way), so the plaintext-login probe, which never sends one,
//     cannot draw the finding; mysql.Server.AllowPlaintextLogin is tested
//     in package mysql.
//
// "-refused" maps to an ERR 1040 "Too many connections" in answer to the
// SSLRequest (MySQL has no refusal message).
func mysqlKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *mysql.Server {
		return &mysql.Server{ServerOptions: o, Backend: mysqlBackend{st}}
	})
	return []kind{{"mysql", true, serve, []string{"-injection", "-auth-before-tls"}}}
}

// mysqlBackend hands the lab password to the MySQL server, which needs it
// to verify mysql_native_password.
type mysqlBackend struct{ s *store }

func (b mysqlBackend) Password(_ context.Context, user string) (string, error) {
	if user != b.s.user {
		return "", ErrBadCredentials
	}
	return b.s.password, nil
}
