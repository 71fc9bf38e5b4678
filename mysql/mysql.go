// Package mysql implements both sides of the MySQL client/server protocol
// (MariaDB speaks the same) as far as TLS needs: the connection phase with
// the SSLRequest upgrade, login, and a few text queries.
//
// Implemented (MySQL "Client/Server Protocol" reference, chapter
// "Connection Lifecycle"; MariaDB's "Connection" page agrees):
//
//   - Packets: 3-byte little-endian length, 1-byte sequence id, payload
//     ("MySQL Packets"). Payloads of 16 MiB - 1 (multi-packet) are refused:
//     this package caps packets at 64 KiB in the connection phase and 1 MiB
//     for results. A wrong sequence id is a protocol error.
//   - Initial Handshake Packet v10 ("Protocol::HandshakeV10"), with the
//     auth-plugin-data in two parts and the default auth plugin name; an ERR
//     packet in its place ends the dialog (1040 "Too many connections" and
//     1129 "Host is blocked" are temporary, see Error.Temporary).
//   - SSLRequest ("Protocol::SSLRequest"): the first 32 bytes of a
//     HandshakeResponse41 with CLIENT_SSL set, after which both sides start
//     TLS at once; there is no go-ahead from the server.
//   - HandshakeResponse41 ("Protocol::HandshakeResponse41"), the
//     AuthSwitchRequest (0xfe) and AuthMoreData (0x01) packets, OK (0x00)
//     and ERR (0xff) packets.
//   - Auth plugins: mysql_native_password (SHA1(pw) XOR
//     SHA1(scramble + SHA1(SHA1(pw)))); caching_sha2_password, fast path
//     and, over TLS only, the full path that sends the password in clear;
//     mysql_clear_password over TLS only.
//   - Text protocol: COM_QUERY with text result sets ("Protocol::
//     ColumnDefinition41", EOF packets: CLIENT_DEPRECATE_EOF is never
//     set), COM_PING, COM_QUIT. CLIENT_LOCAL_FILES is never set and a
//     LOCAL INFILE request (0xfb) ends the session.
//
// # Client
//
// Upgrade and Dial read the greeting, record its capability flags (Result.
// CapsBefore), and send the SSLRequest when the server sets CLIENT_SSL. A
// server that does not set it fails ModeRequired with
// starttls.ErrUpgradeNotOffered before the client sends anything at all;
// this is the BACKRONYM case (CVE-2015-3152), where a client that merely
// preferred TLS went on in plaintext. Bytes that arrived after the greeting
// and before the handshake are response injection
// (starttls.ErrPlaintextAfterUpgrade). A server that answers the SSLRequest
// with an ERR packet instead of a TLS ServerHello refused the upgrade
// (starttls.ErrUpgradeRefused, with the ERR in Result.UpgradeReply).
//
// MySQL sends its capabilities once, in plaintext, before TLS: there is
// nothing to read again over TLS. Result.CapsAfter repeats the greeting's
// capabilities and Result.CapsReread stays false. An attacker can change
// those capabilities (the upgrade flag above all); ModeRequired does not
// depend on them once TLS is up, and the scramble they carry is only used
// inside TLS.
//
// The STARTTLS command-injection probe does not apply: after the SSLRequest
// the next bytes from the client are its TLS ClientHello, so there is no
// harmless command to pipeline; Result.Injection stays nil. The server
// side of the bug (a plaintext HandshakeResponse pipelined after the
// SSLRequest and taken as if it had come over TLS) is covered by the
// server, see below.
//
// Login sends a HandshakeResponse41 inside TLS (ModePlain excepted) and
// follows auth switches. Its password never appears in the transcript.
//
// ProbePlaintextLogin asks a server, without TLS and without a real
// password, whether it processes logins in plaintext; see its
// documentation for what a MySQL server can and cannot reveal this way.
//
// # Server
//
// Server greets as "5.5.5-10.11.0-MariaDB-starttls-lab", sets CLIENT_SSL
// only when TLSConfig is set (and not Implicit), and offers
// mysql_native_password with a fresh random 20-byte scramble. After the
// SSLRequest, bytes already received that are not the start of a TLS
// record were pipelined in plaintext (SECURITY SV-25): the server discards
// them and closes the connection, unless InsecureKeepPipelined, which takes
// complete packets among them as if they had come over TLS
// (CVE-2011-0411's class, for the lab). RefuseUpgrade answers the
// SSLRequest with ERR 1040 "Too many connections" and closes: MySQL has no
// refusal message, and that is what a real server at its connection limit
// sends. A HandshakeResponse without TLS is answered with ERR 3159 ("…
// --require_secure_transport=ON") unless AllowPlaintextLogin. A TLS
// ClientHello where the SSLRequest or the HandshakeResponse is expected
// closes the connection (starttls.ErrTLSOnPlaintextPort). COM_QUERY
// answers a tiny fixed set of queries (SELECT 1, SELECT VERSION(),
// SELECT @@version_comment, SHOW STATUS LIKE 'Ssl_cipher') and ERR 1064
// otherwise.
package mysql

import (
	"errors"
	"fmt"
	"strings"
)

// Capability flags of the handshake ("Capabilities Flags" in the protocol
// reference).
const (
	ClientLongPassword               uint32 = 0x00000001
	ClientFoundRows                  uint32 = 0x00000002
	ClientLongFlag                   uint32 = 0x00000004
	ClientConnectWithDB              uint32 = 0x00000008
	ClientNoSchema                   uint32 = 0x00000010
	ClientCompress                   uint32 = 0x00000020
	ClientODBC                       uint32 = 0x00000040
	ClientLocalFiles                 uint32 = 0x00000080
	ClientIgnoreSpace                uint32 = 0x00000100
	ClientProtocol41                 uint32 = 0x00000200
	ClientInteractive                uint32 = 0x00000400
	ClientSSL                        uint32 = 0x00000800
	ClientIgnoreSIGPIPE              uint32 = 0x00001000
	ClientTransactions               uint32 = 0x00002000
	ClientReserved                   uint32 = 0x00004000
	ClientSecureConnection           uint32 = 0x00008000
	ClientMultiStatements            uint32 = 0x00010000
	ClientMultiResults               uint32 = 0x00020000
	ClientPSMultiResults             uint32 = 0x00040000
	ClientPluginAuth                 uint32 = 0x00080000
	ClientConnectAttrs               uint32 = 0x00100000
	ClientPluginAuthLenencClientData uint32 = 0x00200000
	ClientCanHandleExpiredPasswords  uint32 = 0x00400000
	ClientSessionTrack               uint32 = 0x00800000
	ClientDeprecateEOF               uint32 = 0x01000000
	ClientOptionalResultsetMetadata  uint32 = 0x02000000
	ClientZstdCompression            uint32 = 0x04000000
	ClientQueryAttributes            uint32 = 0x08000000
	ClientMultiFactorAuthentication  uint32 = 0x10000000
	ClientCapabilityExtension        uint32 = 0x20000000
	ClientSSLVerifyServerCert        uint32 = 0x40000000
	ClientRememberOptions            uint32 = 0x80000000
)

var capNames = []string{
	"CLIENT_LONG_PASSWORD", "CLIENT_FOUND_ROWS", "CLIENT_LONG_FLAG", "CLIENT_CONNECT_WITH_DB",
	"CLIENT_NO_SCHEMA", "CLIENT_COMPRESS", "CLIENT_ODBC", "CLIENT_LOCAL_FILES",
	"CLIENT_IGNORE_SPACE", "CLIENT_PROTOCOL_41", "CLIENT_INTERACTIVE", "CLIENT_SSL",
	"CLIENT_IGNORE_SIGPIPE", "CLIENT_TRANSACTIONS", "CLIENT_RESERVED", "CLIENT_SECURE_CONNECTION",
	"CLIENT_MULTI_STATEMENTS", "CLIENT_MULTI_RESULTS", "CLIENT_PS_MULTI_RESULTS", "CLIENT_PLUGIN_AUTH",
	"CLIENT_CONNECT_ATTRS", "CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA", "CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS", "CLIENT_SESSION_TRACK",
	"CLIENT_DEPRECATE_EOF", "CLIENT_OPTIONAL_RESULTSET_METADATA", "CLIENT_ZSTD_COMPRESSION", "CLIENT_QUERY_ATTRIBUTES",
	"CLIENT_MULTI_FACTOR_AUTHENTICATION", "CLIENT_CAPABILITY_EXTENSION", "CLIENT_SSL_VERIFY_SERVER_CERT", "CLIENT_REMEMBER_OPTIONS",
}

// CapNames returns the names of the flags set in caps, lowest bit first
// ("CLIENT_LONG_PASSWORD", "CLIENT_SSL", …).
func CapNames(caps uint32) []string {
	var out []string
	for i, n := range capNames {
		if caps&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Auth plugin names.
const (
	PluginNativePassword = "mysql_native_password"
	PluginCachingSHA2    = "caching_sha2_password"
	PluginClearPassword  = "mysql_clear_password"
)

// Error codes this package sends or looks for.
const (
	ErConCountError             = 1040 // Too many connections
	ErHandshakeError            = 1043 // Bad handshake
	ErAccessDenied              = 1045 // Access denied for user …
	ErUnknownCom                = 1047 // Unknown command
	ErSyntax                    = 1064 // You have an error in your SQL syntax
	ErUnknown                   = 1105 // Unknown error
	ErHostIsBlocked             = 1129 // Host is blocked because of many connection errors
	ErSecureTransportRequired   = 3159 // Connections using insecure transport are prohibited …
	ErTooManyUserConnections    = 1203
	ErServerShutdown            = 1053
	ErUserLimitReached          = 1226
	ErOutOfResources            = 1041
	ErLockWaitTimeout           = 1205
	ErLockDeadlock              = 1213
	ErNetPacketTooLarge         = 1153
	ErNotSupportedAuthMode      = 1251
	errInsecureTransportMessage = "Connections using insecure transport are prohibited while --require_secure_transport=ON."
)

// Error is an ERR packet: the server's error code, SQLSTATE and message.
type Error struct {
	Code    uint16
	State   string // SQLSTATE, 5 characters; empty in a pre-4.1 ERR packet
	Message string
}

func (e *Error) Error() string {
	if e.State == "" {
		return fmt.Sprintf("mysql: ERROR %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("mysql: ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

// Temporary reports whether the server may accept the same request later:
// too many connections, host blocked (until FLUSH HOSTS), shutdown, out of
// resources, lock timeouts.
func (e *Error) Temporary() bool {
	switch e.Code {
	case ErConCountError, ErTooManyUserConnections, ErHostIsBlocked, ErServerShutdown,
		ErUserLimitReached, ErOutOfResources, ErLockWaitTimeout, ErLockDeadlock:
		return true
	}
	return false
}

// insecureTransport reports whether e says the server requires TLS: MySQL's
// ER_SECURE_TRANSPORT_REQUIRED (3159), or a message that says so.
func (e *Error) insecureTransport() bool {
	m := strings.ToLower(e.Message)
	return e.Code == ErSecureTransportRequired || strings.Contains(m, "insecure transport") ||
		strings.Contains(m, "secure_transport") || strings.Contains(m, "ssl connection is required")
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("mysql: "+format, args...)
}

// errQuit ends a server session after COM_QUIT.
var errQuit = errors.New("mysql: client quit")
