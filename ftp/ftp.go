// Package ftp implements both sides of FTP secured with TLS: a client that
// upgrades per a starttls.Mode and moves files over protected data
// connections, and a small read-only server.
//
// Implemented:
//
//   - RFC 959, FTP: the greeting (120/220), multi-line replies (§4.2: the
//     first line "CCC-", the last "CCC ", anything in between is text),
//     USER/PASS (§4.1.1), PWD, CWD, CDUP, TYPE, MODE, STRU, SYST, NOOP,
//     STAT, HELP, ALLO, ABOR, QUIT, PASV (§4.1.2), LIST, NLST and RETR
//     (§4.1.3), the reply codes of §4.2.2. Active mode (PORT, EPRT) is
//     refused by the server and never used by the client: it lets a
//     server be aimed at a third party (FTP bounce, RFC 2577 §3).
//   - RFC 2389, FEAT (§3: a 211 reply whose feature lines start with a
//     space) and OPTS (§4, only "OPTS UTF8 ON").
//   - RFC 2428, EPSV (§3; "EPSV ALL" and the 522 answer for a protocol the
//     server does not use). The client prefers EPSV and falls back to PASV.
//   - RFC 3659, SIZE, MDTM, MLST and MLSD (server side).
//   - RFC 2228 and RFC 4217, FTP over TLS: "AUTH TLS" (and its aliases
//     "AUTH TLS-C", "AUTH SSL") → 234 then the handshake (§4); PBSZ 0 and
//     PROT P|C (§8–9); after AUTH the server forgets any USER (§4); 431
//     for a refused upgrade, 503 for AUTH after login or inside TLS, 534
//     for a policy refusal, 521 for a data transfer without PROT P.
//   - Implicit TLS (ftps, port 990; ModeImplicit, Server.Implicit): the
//     handshake comes first, then the greeting; PBSZ/PROT still apply.
//   - RFC 7817/6125 server identity, through crypto/tls.
//
// # Client
//
// Upgrade and Dial read the greeting (a 220, after an optional 120), send
// FEAT and look for "AUTH TLS" (or an AUTH feature listing TLS, TLS-C or
// SSL). When FEAT succeeds without it, ModeRequired fails with
// starttls.ErrUpgradeNotOffered and sends nothing else. When FEAT is not
// understood (500, 502 and friends: servers older than RFC 2389), the
// upgrade is unknown rather than absent: Offered stays false and "AUTH TLS"
// is sent anyway. The go-ahead is 234; 431, 500, 502, 504, 534 and every
// other 4xx/5xx reply fail with starttls.ErrUpgradeRefused (4xx satisfies
// starttls.IsTemporary). Bytes buffered after 234 fail with
// starttls.ErrPlaintextAfterUpgrade. Over TLS the client forgets the FEAT
// list, sends FEAT again, then "PBSZ 0" and "PROT P" (RFC 4217 §9; when a
// server wants them after login, 530, they are sent again after Login). The
// outcome is noted in the transcript and reported by Client.DataProtected.
//
// FTP announces no login mechanism: USER/PASS is part of RFC 959 and always
// there. Result.AuthAfter is therefore ["USER"] over TLS, and AuthBefore
// is left empty by the dialog; whether the server would take a password in
// plaintext is answered by ProbePlaintextLogin, which dial registers as
// FTP's plaintext-login probe (see its rule).
//
// Data connections are passive only. The client connects to the port the
// server names in its 229 or 227 reply, but always at the control
// connection's peer address and from the control connection's local
// address: the host in a 227 reply is ignored (a hostile or NATed server
// could otherwise aim the client anywhere; curl's ftp-skip-pasv-ip). With
// PROT P the data connection is a TLS client of its own that resumes the
// control connection's session from a shared ClientSessionCache, as
// servers such as vsftpd (require_ssl_reuse) demand, and verifies the same
// server name. Listings and files are bounded (MaxListLines, MaxFileSize).
//
// # Server
//
// Server offers "AUTH TLS" in FEAT when TLSConfig is set and the session is
// not yet in TLS (nor implicit). Before TLS, USER and PASS are answered
// "530 TLS required" unless AllowPlaintextLogin is set. Commands pipelined
// after "AUTH TLS" (CVE-2011-0411) are discarded and the connection closed
// after the 234 — the client's handshake then fails; InsecureKeepPipelined
// executes them inside TLS, to reproduce the bug in the lab. In a TLS
// session PROT C is refused (534) and data transfers need PROT P (521), so
// file contents never travel in plaintext next to a protected control
// connection. Passive data connections listen on the control connection's
// local address only, on a port chosen by the system, and accept only a
// connection from the control connection's peer IP address (data-port
// stealing); connections from elsewhere are closed and the wait goes on.
// The file tree is the Backend's read-only fs.FS: STOR and every other
// write is refused with 550. Command lines must end in CRLF; MaxErrors
// protocol errors close the session with 421.
package ftp
