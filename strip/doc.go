// Package strip is the STRIPTLS attacker for auditing clients: a
// man-in-the-middle on loopback between a client under test and a real (or
// lab) server that applies one attack per connection and records what the
// client did.
//
// The attacks (Plan, Attacks): strip-capability (the upgrade removed from
// the capabilities), reject-upgrade (temporary and permanent refusals),
// untrusted-cert (a self-signed and a wrong-name certificate),
// response-injection (forged replies after the go-ahead, in the same
// segment), command-injection (toward the server: a command pipelined
// after the client's upgrade command, CVE-2011-0411), downgrade (TLS 1.0
// and 1.1 with obsolete suites only) and pass (an untouched relay, the
// control).
//
// The simulator never parses a protocol itself and never switches on
// protocols: toward the client it runs the protocol package's own Server
// (ServeConn when it plays the whole session, Handshake when it relays
// after TLS), configured per attack through starttls.ServerOptions; toward
// the real server it runs the package's client (dial.Upgrader) and takes
// over where TLS starts (ClientOptions.Intercept). What it must know of a
// protocol comes from one table, dial.MITMFor. Logins are reported by the
// servers themselves (ServerOptions.OnCredentials) and shown masked: the
// first and last character and the length; transcripts show only the
// command names of what a client sent beyond discovery and upgrade, and
// count the bytes inside TLS without recording them.
//
// Every verdict comes from evidence seen on the connection:
// plaintext_continued (the client sent commands other than discovery,
// upgrade or quit in plaintext), credentials_seen, accepted_bad_cert (the
// TLS handshake with the bad certificate, or the obsolete version for
// downgrade, completed and application data followed), acted_on_injection
// (the first answer inside TLS is held back for Config.Wait: a client that
// sends a second command meanwhile took the forged reply for it; for
// command-injection, the server answered the pipelined command inside
// TLS).
package strip
