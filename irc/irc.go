// Package irc implements both sides of IRC secured with TLS: a client that
// upgrades per a starttls.Mode and a small server for the lab.
//
// Implemented:
//
//   - RFC 1459 §2.3 and RFC 2812 §2.3, the message format: prefix, command
//     (a word or a three-digit numeric), up to 15 parameters, the trailing
//     parameter after " :", lines ending in CRLF of at most 512 octets
//     (Message, ParseMessage).
//   - IRCv3 message tags (ircv3.net/specs/extensions/message-tags): "@k=v;…"
//     before the prefix, values unescaped; a line may then carry 8191 octets
//     of tags on top of the 512 (MaxLineLength).
//   - IRCv3 capability negotiation (ircv3.net/specs/extensions/capability-negotiation),
//     version 302: CAP LS 302 with values and multi-line "CAP * LS * :…"
//     continuations, CAP REQ/ACK/NAK, CAP LIST, CAP END; registration is
//     held until CAP END.
//   - The IRCv3 "tls" extension (ircv3.net/specs/deprecated/tls, STARTTLS):
//     the tls capability, the STARTTLS command, 670 RPL_STARTTLS and 691
//     ERR_STARTTLS; CAP LS again over TLS.
//   - IRCv3 SASL 3.1/3.2 (ircv3.net/specs/extensions/sasl-3.1): the sasl
//     capability with its mechanism list, AUTHENTICATE with the PLAIN
//     mechanism (RFC 4616) in 400-byte base64 chunks, numerics 900, 903,
//     904, 905, 906, 907, 908.
//   - RFC 2812 §3.1 registration (NICK, USER, 001–005), §3.7.2–3 PING/PONG,
//     §3.1.7 QUIT, §3.2.1 JOIN, §3.2.2 PART, §3.3.1 PRIVMSG and §3.3.2
//     NOTICE (server: channels and private messages, small).
//   - Implicit TLS on port 6697 (ModeImplicit, Server.Implicit), the
//     IRCv3 recommendation.
//
// STARTTLS on IRC is deprecated by IRCv3 in favour of implicit TLS and the
// Strict Transport Security policy (the "sts" capability,
// ircv3.net/specs/extensions/sts). STS is a policy a client stores, not an
// upgrade of this connection: the client reports "sts=…" among the
// capabilities but never treats it as an offer of STARTTLS.
//
// # Client
//
// Upgrade and Dial register nothing at first: they send "CAP LS 302" and
// nothing else, answer PING with PONG, take the lines that come before the
// CAP answer (NOTICE "*** Looking up your hostname…") as the greeting, and
// collect the capabilities. Offered means the tls capability; AuthBefore
// and AuthAfter are the SASL mechanisms ("sasl=PLAIN,EXTERNAL"; "SASL"
// when the capability has no value). STARTTLS is answered 670 (go-ahead),
// 691 (refused: ErrUpgradeRefused), or 421/451 (the server does not take
// it: ErrUpgradeRefused as well). Any byte received after 670 and before
// the handshake is response injection (ErrPlaintextAfterUpgrade). After
// the handshake the client forgets the capabilities and sends CAP LS 302
// again. A server that does not know CAP (421 or 451 to CAP LS) offers no
// STARTTLS.
//
// Login authenticates with SASL PLAIN (CAP REQ :sasl, AUTHENTICATE) and
// then registers (CAP END, NICK, USER, wait for 001); Register registers
// without SASL. Close sends QUIT.
//
// # Server
//
// Server offers tls in CAP LS when TLSConfig is set and the connection is
// not yet TLS, and sasl=PLAIN only over TLS unless AllowPlaintextLogin;
// before that CAP REQ :sasl is NAKed and AUTHENTICATE answered 904.
// Command lines must end in CRLF. Lines pipelined after STARTTLS
// (CVE-2011-0411) are discarded and the connection is closed after the 670:
// the client's handshake then fails. InsecureKeepPipelined executes them
// inside TLS instead, to reproduce the bug in the lab. After STARTTLS the
// nick, user and capabilities given before are forgotten.
package irc
