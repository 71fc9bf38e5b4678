// Package interop holds the interop suite: the starttls library and binary
// against real Postfix and Dovecot, and real clients (openssl s_client,
// curl, swaks, Python's smtplib/imaplib/poplib, Postfix's posttls-finger)
// against the starttls lab.
//
// The tests carry the build tag "interop" and need the servers and the
// environment that scripts/interop.sh sets up (INTEROP_* variables); run
// them with
//
//	make interop            # or: bash scripts/interop.sh
//
// Without that environment every test skips.
package interop
