// Package smtp implements both sides of SMTP with STARTTLS: the client that
// the checker, the CLI and the proxy use, and the server of the lab and the
// gateway. One implementation serves SMTP relay (RFC 5321, port 25),
// message submission (RFC 6409, port 587, and implicit TLS on 465 per RFC
// 8314 §3) and LMTP (RFC 2033).
//
// Implemented, extension by extension:
//
//   - RFC 5321: greeting, EHLO/HELO (§4.1.1.1, the first line of the EHLO
//     reply is always the domain), MAIL, RCPT, DATA with dot-stuffing
//     (§4.5.2), RSET, NOOP, VRFY (252), HELP, QUIT; multi-line replies
//     (§4.2.1); line limits (§4.5.3.1).
//   - RFC 3207 STARTTLS: 220 / 454 / 501 replies (§4), the reset of the
//     session after TLS on both sides and no STARTTLS over TLS (§4.2).
//   - RFC 4954 AUTH with PLAIN (RFC 4616) and LOGIN, offered and accepted only
//     over TLS unless ServerOptions.AllowPlaintextLogin; the old
//     "AUTH=LOGIN PLAIN" form is understood by the client.
//   - RFC 2034 / RFC 3463 enhanced status codes (ReplyError.Enhanced).
//   - RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 2920 PIPELINING (the server
//     accepts pipelined commands; the client never pipelines, except the
//     injection probe).
//   - RFC 2033 LMTP: LHLO and one reply per recipient after DATA.
//
// # Security
//
// The client never trusts what it read before TLS: bytes that follow the
// 220 go-ahead of STARTTLS fail the upgrade with
// starttls.ErrPlaintextAfterUpgrade (response injection), and the
// extensions are asked for again over TLS. In starttls.ModeRequired a
// missing or refused STARTTLS, a refused EHLO (which would force HELO, the
// STRIPTLS "ProtocolDowngradeStripExtendedMode" attack) or a failed
// handshake is an error and nothing else is sent. Login refuses to send
// credentials without TLS unless the mode is starttls.ModePlain.
//
// The server discards any plaintext pipelined after STARTTLS and closes the
// connection without starting TLS (CVE-2011-0411; Postfix discards and goes
// on, we close, which is also safe and easier to see).
// ServerOptions.InsecureKeepPipelined reproduces the bug for the lab. Command
// lines must end in CRLF and contain no NUL or bare CR; in DATA only
// CRLF "." CRLF ends a message and a bare CR or LF refuses it (SMTP
// smuggling, CVE-2023-51764). Lines, messages (MaxMessageBytes, enforced
// while reading), recipients and protocol errors are bounded, every read has
// a deadline (421 4.4.2 on idle timeout), and a panic answers 421.
package smtp
