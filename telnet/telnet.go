// Package telnet implements both sides of Telnet secured with TLS: the
// START_TLS option (46) of draft-altman-telnet-starttls-02 on the telnet
// scheme, and implicit TLS (telnets, port 992). The server is a login
// prompt and a tiny shell for the lab.
//
// Implemented:
//
//   - RFC 854, the Telnet protocol: the NVT, IAC commands, DO/DONT/WILL/
//     WONT option negotiation (refusing every option this package does not
//     implement, without acknowledging states already in force, so that
//     negotiation cannot loop), IAC IAC escaping, CR LF and CR NUL line ends.
//   - RFC 855, subnegotiation (IAC SB … IAC SE), bounded by
//     MaxSubnegotiation bytes.
//   - RFC 860, TIMING-MARK: the injection probe asks for it; the server
//     refuses it with WONT, which is the answer the probe looks for.
//   - draft-altman-telnet-starttls-02 §2–3: the server sends IAC DO
//     START_TLS; the client answers IAC WILL START_TLS; the server sends
//     IAC SB START_TLS FOLLOWS IAC SE; the client sends the same and starts
//     the TLS handshake; both forget the options negotiated before (§3:
//     "the Telnet session is restarted") and negotiate again over TLS.
//
// # Client
//
// Upgrade and Dial read what the server sends first, until it has been
// quiet for a short while (QuietPeriod) or opts.Wait() passed: the text
// is Result.Greeting (or, with no text, the option requests), the option
// requests ("DO START_TLS", "WILL ECHO") are Result.CapsBefore and a login
// prompt in it ("login:") is Result.AuthBefore ["LOGIN"]. IAC DO START_TLS
// is the offer; when the server sent nothing at all, the client asks
// itself with IAC WILL START_TLS (a server may wait for the client to
// initiate; RFC 854 lets either side start a negotiation). IAC DONT or WONT
// START_TLS is a refusal (ErrUpgradeRefused). Bytes that follow the
// server's FOLLOWS are response injection (ErrPlaintextAfterUpgrade). After
// the handshake the client reads the banner again over TLS: CapsReread is
// set when text arrived, CapsAfter and AuthAfter come from it. Login
// answers the "login:" and "Password:" prompts, only over TLS unless
// ModePlain, with the password masked in the transcript.
//
// The injection probe (ClientOptions.ProbeInjection) sends IAC DO
// TIMING-MARK in the same segment as the client's FOLLOWS: a server that
// answers WILL or WONT TIMING-MARK inside TLS processed plaintext inside
// TLS (CVE-2011-0411 class).
//
// # Server
//
// Server sends IAC DO START_TLS and waits for the client: no banner and no
// login prompt before TLS, unless AllowPlaintextLogin, which prompts for
// login at once. After the upgrade (or with Implicit) it sends a banner,
// "login:" and "Password:" prompts checked by the Backend, then a tiny
// shell that echoes lines and ends on "exit" or "logout". RefuseUpgrade
// answers the client's WILL START_TLS with DONT START_TLS. Bytes pipelined
// after the client's FOLLOWS are discarded and the connection is closed
// (the client's handshake then fails); InsecureKeepPipelined instead feeds
// them into the TLS session, to reproduce CVE-2011-0411 in the lab. Lines
// are bounded by the line limit, subnegotiations by MaxSubnegotiation, and
// a ClientHello on the plaintext port gets a clear message and a close.
package telnet

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
)

// Telnet commands (RFC 854) and options.
const (
	cmdSE   = 240
	cmdNOP  = 241
	cmdAYT  = 246
	cmdSB   = 250
	cmdWILL = 251
	cmdWONT = 252
	cmdDO   = 253
	cmdDONT = 254
	cmdIAC  = 255

	optEcho       = 1
	optSGA        = 3
	optTimingMark = 6
	// OptStartTLS is the START_TLS option (draft-altman-telnet-starttls §2).
	OptStartTLS = 46
	// follows is the START_TLS subnegotiation command FOLLOWS.
	follows = 1
)

const (
	// MaxSubnegotiation bounds the data of one IAC SB … IAC SE.
	MaxSubnegotiation = 256
	// QuietPeriod is how long the client waits for more text once the
	// server started sending, to collect a banner and a prompt.
	QuietPeriod = 250 * time.Millisecond
	// closeTimeout bounds the polite logout of Client.Close.
	closeTimeout = 2 * time.Second
)

func errorf(format string, args ...any) error {
	return fmt.Errorf("telnet: "+format, args...)
}

// verbName names a negotiation verb.
func verbName(v byte) string {
	switch v {
	case cmdWILL:
		return "WILL"
	case cmdWONT:
		return "WONT"
	case cmdDO:
		return "DO"
	case cmdDONT:
		return "DONT"
	case cmdSB:
		return "SB"
	case cmdAYT:
		return "AYT"
	case cmdNOP:
		return "NOP"
	}
	return "CMD" + strconv.Itoa(int(v))
}

// optName names an option.
func optName(o byte) string {
	switch o {
	case optEcho:
		return "ECHO"
	case optSGA:
		return "SUPPRESS-GO-AHEAD"
	case optTimingMark:
		return "TIMING-MARK"
	case OptStartTLS:
		return "START_TLS"
	case 24:
		return "TERMINAL-TYPE"
	case 31:
		return "NAWS"
	case 37:
		return "AUTHENTICATION"
	case 38:
		return "ENCRYPT"
	}
	return strconv.Itoa(int(o))
}

// eventKind is what the decoder found.
type eventKind int

const (
	evData eventKind = iota // one data byte
	evNeg                   // DO/DONT/WILL/WONT option
	evSB                    // a complete subnegotiation
	evCmd                   // another command (NOP, AYT, GA, …)
)

// event is one decoded unit of the Telnet stream.
type event struct {
	kind eventKind
	b    byte   // the data byte, the verb, or the command
	opt  byte   // the option of evNeg and evSB
	data []byte // the subnegotiation parameters
}

func (e event) String() string {
	switch e.kind {
	case evNeg:
		return "IAC " + verbName(e.b) + " " + optName(e.opt)
	case evSB:
		if e.opt == OptStartTLS && len(e.data) == 1 && e.data[0] == follows {
			return "IAC SB START_TLS FOLLOWS IAC SE"
		}
		return fmt.Sprintf("IAC SB %s %q IAC SE", optName(e.opt), e.data)
	case evCmd:
		return "IAC " + verbName(e.b)
	}
	return fmt.Sprintf("%q", e.b)
}

// decState is the state of the decoder, one per position in an IAC
// sequence (RFC 854, RFC 855).
type decState int

const (
	stData  decState = iota // plain data
	stIAC                   // after IAC
	stNeg                   // after IAC DO/DONT/WILL/WONT
	stSBOpt                 // after IAC SB
	stSB                    // in subnegotiation data
	stSBIAC                 // after IAC inside a subnegotiation
)

// decoder is a byte-at-a-time Telnet stream decoder with a bounded
// subnegotiation buffer.
type decoder struct {
	st   decState
	verb byte
	opt  byte
	sb   []byte
}

// feed consumes one byte; ok reports that an event is complete.
func (d *decoder) feed(c byte) (ev event, ok bool, err error) {
	switch d.st {
	case stData:
		if c == cmdIAC {
			d.st = stIAC
			return event{}, false, nil
		}
		return event{kind: evData, b: c}, true, nil
	case stIAC:
		switch c {
		case cmdIAC:
			d.st = stData
			return event{kind: evData, b: cmdIAC}, true, nil
		case cmdDO, cmdDONT, cmdWILL, cmdWONT:
			d.verb, d.st = c, stNeg
			return event{}, false, nil
		case cmdSB:
			d.st = stSBOpt
			return event{}, false, nil
		case cmdSE:
			d.st = stData
			return event{}, false, starttls.ProtocolError("telnet", "IAC SE without IAC SB")
		}
		d.st = stData
		return event{kind: evCmd, b: c}, true, nil
	case stNeg:
		d.st = stData
		return event{kind: evNeg, b: d.verb, opt: c}, true, nil
	case stSBOpt:
		d.opt, d.sb, d.st = c, d.sb[:0], stSB
		return event{}, false, nil
	case stSB:
		if c == cmdIAC {
			d.st = stSBIAC
			return event{}, false, nil
		}
		return d.sbByte(c)
	case stSBIAC:
		switch c {
		case cmdIAC:
			d.st = stSB
			return d.sbByte(cmdIAC)
		case cmdSE:
			d.st = stData
			ev := event{kind: evSB, opt: d.opt, data: append([]byte(nil), d.sb...)}
			d.sb = d.sb[:0]
			return ev, true, nil
		}
		d.st = stData
		return event{}, false, starttls.ProtocolError("telnet", "IAC %d inside a subnegotiation", c)
	}
	return event{}, false, starttls.ProtocolError("telnet", "decoder in state %d", d.st)
}

func (d *decoder) sbByte(c byte) (event, bool, error) {
	if len(d.sb) >= MaxSubnegotiation {
		d.st = stData
		return event{}, false, starttls.ProtocolError("telnet", "subnegotiation of option %s longer than %d bytes (IAC SB without IAC SE?)", optName(d.opt), MaxSubnegotiation)
	}
	d.sb = append(d.sb, c)
	return event{}, false, nil
}

// neg encodes IAC verb option.
func neg(verb, opt byte) []byte { return []byte{cmdIAC, verb, opt} }

// startTLSFollows is IAC SB START_TLS FOLLOWS IAC SE.
var startTLSFollows = []byte{cmdIAC, cmdSB, OptStartTLS, follows, cmdIAC, cmdSE}

// escape doubles IAC bytes in data (RFC 854).
func escape(s string) []byte {
	return []byte(strings.ReplaceAll(s, "\xff", "\xff\xff"))
}

// promptTail is how much of the end of the text the prompt checks need:
// a prompt and the blanks after it.
const promptTail = 64

// tail returns the last promptTail bytes of s.
func tail(s string) string {
	if len(s) > promptTail {
		return s[len(s)-promptTail:]
	}
	return s
}

// isLoginPrompt reports whether text ends with a login prompt.
func isLoginPrompt(text string) bool {
	t := strings.ToLower(strings.TrimRight(text, " \t\r\n\x00"))
	return strings.HasSuffix(t, "login:") || strings.HasSuffix(t, "username:")
}

// isPasswordPrompt reports whether text ends with a password prompt.
func isPasswordPrompt(text string) bool {
	t := strings.ToLower(strings.TrimRight(text, " \t\r\n\x00"))
	return strings.HasSuffix(t, "password:")
}
