// Package sieve implements both sides of ManageSieve (RFC 5804) secured
// with TLS: a client that upgrades per a starttls.Mode and a small server
// keeping scripts in memory.
//
// Implemented:
//
//   - RFC 5804 §1.7, the capabilities (IMPLEMENTATION, SASL, SIEVE,
//     STARTTLS, OWNER, VERSION), which are also the greeting; §4, the
//     responses OK, NO and BYE with response codes (§1.3) and quoted
//     strings or literals ("{n}" from the server, "{n+}" from the client).
//   - §2.2, STARTTLS: OK, the TLS handshake, then the server sends the
//     capabilities again, unasked; STARTTLS refused once TLS is active or
//     after authentication.
//   - §2.1, AUTHENTICATE with SASL PLAIN (RFC 4616), the initial response
//     as a string or after an empty challenge; the ENCRYPT-NEEDED code.
//   - §2.3 LOGOUT, §2.4 CAPABILITY, §2.5 HAVESPACE, §2.6 PUTSCRIPT, §2.7
//     LISTSCRIPTS, §2.8 SETACTIVE, §2.9 GETSCRIPT, §2.10 DELETESCRIPT,
//     §2.11 RENAMESCRIPT, §2.12 CHECKSCRIPT, §2.13 NOOP.
//   - RFC 7817 / RFC 6125, the server identity check, through crypto/tls.
//     ManageSieve has no implicit-TLS port; ModeImplicit and
//     Server.Implicit are supported for completeness.
//
// # Client
//
// Upgrade and Dial read the greeting (the capability list ending in OK)
// and, per the mode, send STARTTLS. Without STARTTLS in the greeting
// ModeRequired fails with starttls.ErrUpgradeNotOffered and sends nothing
// else. After the OK to STARTTLS any byte already received is response
// injection and fails with starttls.ErrPlaintextAfterUpgrade. After the
// handshake the client reads the capabilities the server sends unasked
// (Result.CapsReread); when none arrive within ClientOptions.Wait() it
// sends CAPABILITY. Login refuses to send credentials without TLS unless
// the mode is ModePlain, and masks them in the transcript. ListScripts,
// GetScript, PutScript, SetActive and DeleteScript manage scripts of at most
// MaxScriptSize octets.
//
// Injection probe: "STARTTLS\r\nCAPABILITY\r\n" in one write. Because a
// correct server speaks first over TLS (its capabilities, completed by one
// OK), the probe counts the OK completions received before the client's
// first command over TLS: one is the server's own list, a second is the
// answer to the pipelined CAPABILITY executed inside TLS (CVE-2011-0411).
//
// # Server
//
// Server sends "SASL" "" until TLS is active (unless AllowPlaintextLogin)
// and answers AUTHENTICATE before TLS with NO (ENCRYPT-NEEDED). Command
// lines must end in CRLF; client literals must be "{n+}" and at most
// MaxScriptSize octets; a malformed line or literal closes the session
// with BYE, as the stream cannot be resynchronised. Commands pipelined
// after STARTTLS (CVE-2011-0411) are discarded and the connection is
// closed after the OK: the client's TLS handshake then fails.
// InsecureKeepPipelined instead executes them inside TLS, after the
// server's own capabilities, to reproduce the bug in the lab.
package sieve
