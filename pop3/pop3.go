// Package pop3 implements both sides of POP3 secured with TLS: a client that
// upgrades per a starttls.Mode and a small read-only server.
//
// Implemented:
//
//   - RFC 1939, POP3: greeting, the AUTHORIZATION, TRANSACTION and UPDATE
//     states (§3), USER/PASS (§7), STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
//     NOOP, QUIT (§5–7), byte-stuffed multi-line responses (§3). APOP is
//     refused by the server and never sent by the client.
//   - RFC 2449, CAPA (§5) with TOP, USER, SASL, RESP-CODES, PIPELINING and
//     UIDL (§6), and response codes in brackets (§8): Error.Code.
//   - RFC 3206, the SYS/TEMP, SYS/PERM and AUTH response codes and the
//     AUTH-RESP-CODE capability.
//   - RFC 2595 §4, STLS: the STLS capability, "+OK" then the TLS handshake,
//     CAPA again over TLS, STLS refused once TLS is active.
//   - RFC 5034, AUTH with the SASL PLAIN mechanism (RFC 4616), initial
//     response or "+ " continuation.
//   - RFC 8314 §3, implicit TLS on port 995 (ModeImplicit, Server.Implicit).
//   - RFC 7817, the server identity check, through crypto/tls.
//
// # Client
//
// Upgrade and Dial read the greeting, which must be "+OK" (an APOP
// timestamp is ignored); anything the server sends after the greeting before
// the client spoke is a protocol error. They send CAPA; when CAPA succeeds
// without STLS, ModeRequired fails with starttls.ErrUpgradeNotOffered and
// sends nothing else; when CAPA fails, STLS is tried anyway for servers
// older than RFC 2449. After "+OK" to STLS any byte already received is
// response injection and fails with starttls.ErrPlaintextAfterUpgrade; the
// client then shakes hands and trusts only the capabilities it reads over
// TLS. Login refuses to send credentials without TLS unless the mode is
// ModePlain, and masks them in the transcript.
//
// # Server
//
// Server offers STLS when TLSConfig is set and hides USER and SASL until
// TLS is active; before that USER, PASS and AUTH are answered
// "-ERR [AUTH] … use STLS first" unless AllowPlaintextLogin is set. Command
// lines must end in CRLF. Commands pipelined after STLS (CVE-2011-0411) are
// discarded and the connection is closed after the "+OK": the client's TLS
// handshake then fails. InsecureKeepPipelined instead executes them inside
// TLS, to reproduce the bug in the lab. The maildrop is read-only: DELE
// hides a message for the rest of the session only.
package pop3
