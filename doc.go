// Package starttls is the cross-protocol core of the starttls module: the
// security modes, the record of an upgrade, the shared errors and the table of
// URL schemes and ports.
//
// Each protocol lives in its own package (smtp, imap, pop3, …) and implements
// both sides of its plaintext dialog on top of the types defined here. Every
// protocol obeys the same upgrade rule:
//
//  1. After the upgrade command (server side) or the server's go-ahead (client
//     side), anything already buffered is plaintext that arrived before the TLS
//     handshake and could have been injected by a man in the middle. It is
//     never trusted: it fails the session with ErrPlaintextAfterUpgrade.
//  2. New readers and writers are built on the *tls.Conn.
//  3. All session state is reset and capabilities are read again over TLS.
//  4. A failed handshake closes the connection; in ModeRequired nothing ever
//     falls back to plaintext.
//
// The modes avoid the historical confusion of "SSL", "TLS" and "TLS if
// available": see Mode.
package starttls
