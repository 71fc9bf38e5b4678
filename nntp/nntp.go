// Package nntp implements both sides of NNTP secured with TLS: a client that
// upgrades per a starttls.Mode and a small read-only reader server.
//
// Implemented:
//
//   - RFC 3977, NNTP: the greeting (§5.1: 200, 201, 400, 502), CAPABILITIES
//     (§5.2) with VERSION, READER, LIST, IMPLEMENTATION, MODE READER (§5.3),
//     QUIT (§5.4), GROUP and LISTGROUP (§6.1), ARTICLE, HEAD, BODY and STAT
//     (§6.2), DATE (§7.1), HELP (§7.2), LIST ACTIVE and LIST NEWSGROUPS
//     (§7.6), dot-stuffed multi-line data blocks (§3.1.1), the 512-octet
//     command line limit (§3.1) and the generic replies 480, 500, 501, 502
//     (§3.2.1).
//   - RFC 4642, STARTTLS for NNTP: the STARTTLS capability, "382" then the
//     TLS handshake, 580 when TLS cannot be initiated, 502 once TLS is
//     active or after authentication; capabilities discarded and read again
//     over TLS (§2.2.2).
//   - RFC 4643, AUTHINFO: AUTHINFO USER/PASS (§2.3) and AUTHINFO SASL
//     with the PLAIN mechanism (§2.4, RFC 4616), the AUTHINFO and SASL
//     capabilities (§2.1), 483 when encryption is required first.
//   - RFC 8143 and RFC 8314 §3, implicit TLS on port 563 (ModeImplicit,
//     Server.Implicit); RFC 8143 §5, the server identity check, through
//     crypto/tls.
//
// # Client
//
// Upgrade and Dial read the greeting (200 or 201), send CAPABILITIES and,
// per the mode, STARTTLS. When CAPABILITIES answers without STARTTLS,
// ModeRequired fails with starttls.ErrUpgradeNotOffered and sends nothing
// else; when CAPABILITIES itself is refused (an RFC 977 server), STARTTLS
// is tried anyway. After "382" any byte already received is response
// injection and fails with starttls.ErrPlaintextAfterUpgrade; the client
// then shakes hands and trusts only the capabilities it reads over TLS.
// Login refuses to send credentials without TLS unless the mode is
// ModePlain, and masks them in the transcript. Group, Article, Head and
// Body read news; articles are dot-unstuffed and bounded by MaxArticleSize.
//
// # Server
//
// Server offers STARTTLS when TLSConfig is set and lists AUTHINFO without
// mechanisms until TLS is active; before that AUTHINFO is answered "483"
// unless AllowPlaintextLogin is set. Reading news requires a login (480).
// Command lines must end in CRLF and fit in 512 octets (MaxLineLength
// overrides). Commands pipelined after STARTTLS (CVE-2011-0411) are
// discarded and the connection is closed after the "382": the client's TLS
// handshake then fails. InsecureKeepPipelined instead executes them inside
// TLS, to reproduce the bug in the lab. Posting is not supported (201).
package nntp
