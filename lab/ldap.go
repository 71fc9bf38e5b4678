package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ldap"
)

// ldapBaseDN is the lab directory's naming context; the lab user is
// uid=alice,dc=lab,dc=starttls,dc=test.
const ldapBaseDN = "dc=lab,dc=starttls,dc=test"

// ldapBackend adapts the store to ldap.Backend.
type ldapBackend struct{ s *store }

func (b ldapBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// ldapKinds are the LDAP endpoints: ldap with StartTLS and all its broken
// variants, and ldaps. "-injection" applies: a request pipelined after the
// StartTLS request is LDAP's CVE-2011-0411 (SECURITY.md SV-06), and the
// ldap client's probe sends one.
func ldapKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *ldap.Server {
		return &ldap.Server{ServerOptions: o, Backend: ldapBackend{st}, BaseDN: ldapBaseDN}
	})
	return []kind{
		{"ldap", true, serve, nil},
		{"ldaps", false, serve, nil},
	}
}
