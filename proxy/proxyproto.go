package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2)
// carries the client's address from a load balancer to the server behind
// it. The parser below is our own, small and bounded: it reads exactly the
// header's bytes from the connection (v1 byte by byte, at most 107; v2 its
// 16-byte prefix and declared length, at most maxV2Len), so that nothing
// of the client's stream is buffered away from the relay, and it needs no
// dependency for forty lines of framing.

// proxyInfo is a parsed header. Src and Dst are nil for LOCAL (v2) and
// UNKNOWN (v1) headers: the connection's own addresses then stand.
type proxyInfo struct {
	Src, Dst *net.TCPAddr
}

var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	maxV1Len = 107 // proxy-protocol.txt §2.1
	maxV2Len = 4096
)

var errProxyHeader = errors.New("proxy: bad PROXY protocol header")

func proxyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProxyHeader, fmt.Sprintf(format, args...))
}

// readProxyHeader reads a v1 or v2 header from r, consuming exactly its
// bytes. The caller sets the read deadline.
func readProxyHeader(r io.Reader) (proxyInfo, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return proxyInfo{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return proxyInfo{}, proxyErr("starts with 0x%02x", first[0])
}

func readV1(r io.Reader) (proxyInfo, error) {
	line := []byte{'P'}
	var b [1]byte
	for {
		if len(line) >= maxV1Len {
			return proxyInfo{}, proxyErr("v1 line longer than %d bytes", maxV1Len)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return proxyInfo{}, fmt.Errorf("%w: %w", errProxyHeader, err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	return parseV1(string(line))
}

// parseV1 parses "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n".
func parseV1(line string) (proxyInfo, error) {
	body, ok := strings.CutSuffix(line, "\r\n")
	if !ok {
		return proxyInfo{}, proxyErr("v1 line does not end in CRLF")
	}
	f := strings.Split(body, " ")
	if len(f) < 2 || f[0] != "PROXY" {
		return proxyInfo{}, proxyErr("v1 line %q", body)
	}
	if f[1] == "UNKNOWN" {
		return proxyInfo{}, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return proxyInfo{}, proxyErr("v1 line %q", body)
	}
	src, err := v1Addr(f[2], f[4], f[1] == "TCP6")
	if err != nil {
		return proxyInfo{}, err
	}
	dst, err := v1Addr(f[3], f[5], f[1] == "TCP6")
	if err != nil {
		return proxyInfo{}, err
	}
	return proxyInfo{Src: src, Dst: dst}, nil
}

func v1Addr(ip, port string, six bool) (*net.TCPAddr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" || a.Is6() != six || (a.Is4In6()) {
		return nil, proxyErr("address %q", ip)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (len(port) > 1 && port[0] == '0') {
		return nil, proxyErr("port %q", port)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(p))), nil
}

func readV2(r io.Reader) (proxyInfo, error) {
	var hdr [16]byte
	hdr[0] = '\r'
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return proxyInfo{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if !bytes.Equal(hdr[:12], v2Sig) {
		return proxyInfo{}, proxyErr("v2 signature")
	}
	n := int(binary.BigEndian.Uint16(hdr[14:]))
	if n > maxV2Len {
		return proxyInfo{}, proxyErr("v2 length %d over %d", n, maxV2Len)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return proxyInfo{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	return parseV2(hdr, body)
}

// parseV2 decodes the version/command and family bytes and the addresses;
// TLVs after them are ignored.
func parseV2(hdr [16]byte, body []byte) (proxyInfo, error) {
	if hdr[12]>>4 != 2 {
		return proxyInfo{}, proxyErr("v2 version %d", hdr[12]>>4)
	}
	switch hdr[12] & 0x0f {
	case 0: // LOCAL: the balancer's own health check
		return proxyInfo{}, nil
	case 1: // PROXY
	default:
		return proxyInfo{}, proxyErr("v2 command %d", hdr[12]&0x0f)
	}
	var alen int
	switch hdr[13] {
	case 0x11: // TCP over IPv4
		alen = 4
	case 0x21: // TCP over IPv6
		alen = 16
	case 0x00: // UNSPEC
		return proxyInfo{}, nil
	default:
		return proxyInfo{}, proxyErr("v2 family/transport 0x%02x", hdr[13])
	}
	if len(body) < 2*alen+4 {
		return proxyInfo{}, proxyErr("v2 addresses truncated")
	}
	sa, _ := netip.AddrFromSlice(body[:alen])
	da, _ := netip.AddrFromSlice(body[alen : 2*alen])
	sp := binary.BigEndian.Uint16(body[2*alen:])
	dp := binary.BigEndian.Uint16(body[2*alen+2:])
	return proxyInfo{
		Src: net.TCPAddrFromAddrPort(netip.AddrPortFrom(sa, sp)),
		Dst: net.TCPAddrFromAddrPort(netip.AddrPortFrom(da, dp)),
	}, nil
}

// proxyHeader renders a header of version 1 or 2 for src → dst; addresses
// that are not TCP, or of mixed families, give UNKNOWN (v1) or LOCAL (v2).
func proxyHeader(version int, src, dst net.Addr) []byte {
	s, okS := src.(*net.TCPAddr)
	d, okD := dst.(*net.TCPAddr)
	var sa, da netip.AddrPort
	if okS && okD {
		sa, da = s.AddrPort(), d.AddrPort()
		sa = netip.AddrPortFrom(sa.Addr().Unmap(), sa.Port())
		da = netip.AddrPortFrom(da.Addr().Unmap(), da.Port())
	}
	known := okS && okD && sa.Addr().Is4() == da.Addr().Is4() && sa.Addr().IsValid() && da.Addr().IsValid()
	if version == 1 {
		if !known {
			return []byte("PROXY UNKNOWN\r\n")
		}
		fam := "TCP4"
		if sa.Addr().Is6() {
			fam = "TCP6"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, sa.Addr().WithZone(""), da.Addr().WithZone(""), sa.Port(), da.Port())
	}
	b := append([]byte(nil), v2Sig...)
	if !known {
		return append(b, 0x20, 0x00, 0, 0)
	}
	if sa.Addr().Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
	}
	b = append(b, sa.Addr().AsSlice()...)
	b = append(b, da.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, sa.Port())
	return binary.BigEndian.AppendUint16(b, da.Port())
}
