// Package tlsscan enumerates what a TLS server accepts, from hand-built
// ClientHellos, the way testssl.sh does, without crypto/tls: protocol
// versions from SSLv2 to TLS 1.3, the cipher suites of each version and
// whether the server imposes its own order, the key-exchange groups, the
// size of the finite-field DH prime, TLS_FALLBACK_SCSV, secure
// renegotiation, compression, session ids and session tickets.
//
// The scanner never knows the protocol in front of TLS. Each probe asks
// the caller's Dialer for a fresh connection positioned exactly where the
// ClientHello goes (after SMTP STARTTLS, the LDAP extended operation, the
// PostgreSQL SSLRequest, or at once for implicit TLS; in this module, the
// protocol clients' ClientOptions.Intercept hook provides that), writes
// one hello, reads the server's first flight and lets the Dialer close
// the connection: no handshake is ever finished.
//
// # What is sent
//
//   - TLS 1.0–1.2 (RFC 2246, 4346, 5246 §7.4.1.2): a ClientHello with an
//     empty session id, the suites under test, compression null (DEFLATE
//     and null for the compression probe, RFC 3749), and the extensions
//     server_name (RFC 6066 §3, omitted for IP literals), status_request
//     (RFC 6066 §8), supported_groups and ec_point_formats (RFC 8422
//     §5.1, RFC 7919 §2), signature_algorithms with SHA-1/MD5 entries for
//     old servers (TLS 1.2 only), an empty renegotiation_info (RFC 5746
//     §3.4), an empty session_ticket (RFC 5077) and
//     extended_master_secret (RFC 7627).
//   - SSLv3 (RFC 6101 §5.6.1.2): the same hello without extensions, with
//     TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3).
//   - TLS 1.3 (RFC 8446 §4.1.2): legacy_version 0x0303, supported_versions
//     [0x0304], a key_share with a real X25519 public key (crypto/ecdh),
//     psk_key_exchange_modes and the TLS 1.3 suites. A HelloRetryRequest
//     (RFC 8446 §4.1.4, the special Random) counts as acceptance of the
//     suite and of the group it names.
//   - SSLv2: a CLIENT-HELLO (2-byte header with the high bit set) offering
//     the seven SSLv2 cipher kinds; a SERVER-HELLO means SSLv2 is spoken.
//     SSLv2 kinds appear in Result.Ciphers with ID = the upper two bytes of
//     the 3-byte kind (0x0100…0x0700); Lookup does not know them.
//
// # What is read
//
// Record headers are bounded (a record ≤ 2^14+2048 bytes, RFC 5246
// §6.2.3; a handshake message ≤ 64 KiB; 256 KiB per probe) and handshake
// messages are reassembled across records. The scanner parses the
// ServerHello (version, suite, compression, session id, extensions
// including supported_versions, key_share, renegotiation_info and
// session_ticket), alerts (handshake_failure 40, protocol_version 70,
// insufficient_security 71, inappropriate_fallback 86, …) and, for DHE
// and ECDHE suites in TLS ≤1.2, the ServerKeyExchange (the DH prime
// length, RFC 5246 §7.4.3; the named curve, RFC 8422 §5.4). It stops
// after that. An alert, a close or a reset right after the hello is a
// refusal; a timeout is a refusal too (most servers that hang mean "no")
// but is listed in Result.Errors; anything else (a plaintext answer, a
// suite that was not offered, a dial failure) leaves the answer
// undetermined (nil) and is listed in Result.Errors.
//
// # How it enumerates
//
//   - Versions and suites together: for each version SSLv3…TLS 1.2 the
//     scanner offers every suite usable with it, then removes the suite
//     the server picked and offers the rest again, until the server
//     refuses. A version is accepted when any suite was picked. Many
//     servers refuse hellos with more than about 128 suites, so the
//     ~350-suite table (Lookup) is offered in chunks of at most 128,
//     strongest first; each chunk is enumerated on its own.
//   - Server preference: the accepted suites are offered forwards and
//     reversed; when both picks follow the client's first choice the
//     server has no order of its own (ServerCipherOrder false). Otherwise
//     the suites are listed in the server's order (by repeated removal
//     over the accepted set when they came from several chunks).
//     ServerCipherOrder is the answer for the highest version ≤ TLS 1.2,
//     or TLS 1.3 when only 1.3 is accepted.
//   - TLS 1.3: the five suites likewise.
//   - Groups by repeated removal: with TLS 1.3, supported_groups = the
//     groups not yet found and an empty key_share, so that the server
//     names its choice in a HelloRetryRequest; without TLS 1.3, the
//     accepted ECDHE suites of the highest version and the curve read from
//     the ServerKeyExchange. Result.Groups is in the server's order.
//   - TLS_FALLBACK_SCSV (RFC 7507 §3): the version just below the highest
//     accepted one, with the accepted suites and 0x5600:
//     inappropriate_fallback is true, a ServerHello is false.
//   - Secure renegotiation, session ids and session tickets come from the
//     first ServerHello of the highest version ≤ TLS 1.2; compression from
//     one more hello of that version offering DEFLATE (CRIME).
//
// Probes run concurrently, at most Options.MaxConns at a time, each with
// its own deadline; everything stops when the context ends. A scan of a
// Go server accepting TLS 1.0–1.3 takes about 45 connections.
package tlsscan
