package httpupgrade

import (
	"strconv"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// readHeaders reads header lines up to the empty line, at most maxLines of
// them (PR-23: a server sending 100 000 header lines is cut off).
func readHeaders(tc *textline.Conn, proto string, maxLines int) (headers, error) {
	var h headers
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return h, err
		}
		if line == "" {
			return h, nil
		}
		if len(h) >= maxLines {
			return h, starttls.ProtocolError(proto, "more than %d header lines", maxLines)
		}
		f, err := parseHeaderLine(proto, line)
		if err != nil {
			return h, err
		}
		h = append(h, f)
	}
}

// response is a status line and its header block.
type response struct {
	status
	h headers
}

// readResponse reads a status line and its headers. Interim 1xx answers
// other than 101 (100 Continue, 103 Early Hints) are skipped, at most
// maxLines of them.
func readResponse(tc *textline.Conn, maxLines int) (response, error) {
	for i := 0; ; i++ {
		line, err := tc.ReadLine()
		if err != nil {
			return response{}, err
		}
		st, err := parseStatus(line)
		if err != nil {
			return response{}, err
		}
		h, err := readHeaders(tc, "http", maxLines)
		if err != nil {
			return response{}, err
		}
		if st.code >= 200 || st.code == 101 {
			return response{st, h}, nil
		}
		if i >= maxLines {
			return response{}, starttls.ProtocolError("http", "more than %d interim answers", maxLines)
		}
	}
}

// bodyLength says how a message body is delimited (RFC 9112 §6.3): n >= 0
// bytes, chunked, or (n < 0, !chunked) until the connection closes.
func bodyLength(h headers) (n int64, chunked bool, err error) {
	if te := h.get("Transfer-Encoding"); te != "" {
		if !strings.EqualFold(strings.TrimSpace(te), "chunked") {
			return 0, false, starttls.ProtocolError("http", "unsupported Transfer-Encoding %q", te)
		}
		if h.has("Content-Length") {
			// RFC 9112 §6.3 point 3: a smuggling attempt; refuse.
			return 0, false, starttls.ProtocolError("http", "both Transfer-Encoding and Content-Length")
		}
		return -1, true, nil
	}
	if !h.has("Content-Length") {
		return -1, false, nil
	}
	v := h.get("Content-Length")
	n, err = strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v == "" || v[0] == '+' {
		return 0, false, starttls.ProtocolError("http", "bad Content-Length %q", v)
	}
	return n, false, nil
}

// readBody reads a body of n bytes or in chunks, at most limit bytes; a
// longer body fails.
func readBody(tc *textline.Conn, n int64, chunked bool, limit int, maxLines int) ([]byte, error) {
	if !chunked {
		if n > int64(limit) {
			return nil, starttls.ProtocolError("http", "body of %d bytes exceeds %d", n, limit)
		}
		return tc.ReadFull(int(n))
	}
	var body []byte
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return nil, err
		}
		sizeStr, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeStr), 16, 64)
		if err != nil || size < 0 {
			return nil, starttls.ProtocolError("http", "bad chunk size %q", starttls.Escape(line))
		}
		if size == 0 {
			// Trailer fields, up to the empty line.
			_, err := readHeaders(tc, "http", maxLines)
			return body, err
		}
		if int64(len(body))+size > int64(limit) {
			return nil, starttls.ProtocolError("http", "chunked body exceeds %d bytes", limit)
		}
		b, err := tc.ReadFull(int(size))
		if err != nil {
			return nil, err
		}
		body = append(body, b...)
		if crlf, err := tc.ReadLine(); err != nil || crlf != "" {
			if err == nil {
				err = starttls.ProtocolError("http", "chunk not followed by CRLF")
			}
			return nil, err
		}
	}
}
