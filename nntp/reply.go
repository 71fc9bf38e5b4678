package nntp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// Reply codes this package sends or acts on (RFC 3977 §3.2, RFC 4642,
// RFC 4643).
const (
	CodeHelp             = 100
	CodeCapabilities     = 101
	CodeDate             = 111
	CodePostingAllowed   = 200
	CodeNoPosting        = 201
	CodeClosing          = 205
	CodeGroupSelected    = 211
	CodeListFollows      = 215
	CodeArticle          = 220
	CodeHead             = 221
	CodeBody             = 222
	CodeStat             = 223
	CodeAuthAccepted     = 281
	CodePasswordRequired = 381
	CodeContinueTLS      = 382
	CodeSASLContinue     = 383
	CodeUnavailable      = 400
	CodeInternalFault    = 403
	CodeNoSuchGroup      = 411
	CodeNoGroup          = 412
	CodeNoCurrent        = 420
	CodeNoSuchNumber     = 423
	CodeNoSuchID         = 430
	CodeAuthRequired     = 480
	CodeAuthFailed       = 481
	CodeAuthSequence     = 482
	CodeEncryptionNeeded = 483
	CodeUnknownCommand   = 500
	CodeSyntax           = 501
	CodeNotPermitted     = 502
	CodeCannotTLS        = 580
)

// Error is a negative NNTP reply (4xx or 5xx, RFC 3977 §3.2).
type Error struct {
	Code int
	Text string
}

// Error renders the reply as "nntp: 483 text".
func (e *Error) Error() string {
	return fmt.Sprintf("nntp: %d %s", e.Code, starttls.Escape(e.Text))
}

// Temporary reports whether the reply is a 4xx one (RFC 3977 §3.2:
// "command was syntactically correct but failed for some reason"), other
// than the authentication and encryption demands, which repeat until the
// client changes.
func (e *Error) Temporary() bool {
	switch e.Code {
	case CodeAuthRequired, CodeAuthFailed, CodeAuthSequence, CodeEncryptionNeeded:
		return false
	}
	return e.Code >= 400 && e.Code < 500
}

// reply is one parsed status line.
type reply struct {
	Code int
	Text string
}

// err returns the *Error for a 4xx or 5xx reply, nil otherwise.
func (r reply) err() error {
	if r.Code >= 400 {
		return &Error{Code: r.Code, Text: r.Text}
	}
	return nil
}

// parseReply parses "CCC text" (RFC 3977 §3.2). NNTP has no continuation
// lines: "CCC-text" is a protocol error.
func parseReply(line string) (reply, error) {
	code, more, text, err := textline.ParseReplyLine(line)
	if err != nil {
		return reply{}, starttls.ProtocolError("nntp", "%v", err)
	}
	if more {
		return reply{}, starttls.ProtocolError("nntp", "malformed reply %q", starttls.Escape(clip(line, 80)))
	}
	return reply{Code: code, Text: text}, nil
}

// lineReader is what the multi-line reader needs: *textline.Conn, or a
// slice in tests and fuzzing.
type lineReader interface {
	ReadLine() (string, error)
}

// readMulti reads a multi-line data block up to the terminating "." line
// (RFC 3977 §3.1.1), removing the dot-stuffing, and calls fn for each line.
// maxLines bounds the number of lines (0: no count bound), maxBytes the
// total size including line endings (0: no bound).
func readMulti(r lineReader, maxLines int, maxBytes int64, fn func(line string)) error {
	var n int
	var size int64
	for {
		line, err := r.ReadLine()
		if err != nil {
			return err
		}
		if line == "." {
			return nil
		}
		line = strings.TrimPrefix(line, ".")
		n++
		size += int64(len(line)) + 2
		if maxLines > 0 && n > maxLines {
			return starttls.ProtocolError("nntp", "multi-line block longer than %d lines", maxLines)
		}
		if maxBytes > 0 && size > maxBytes {
			return starttls.ProtocolError("nntp", "multi-line block larger than %d bytes", maxBytes)
		}
		fn(line)
	}
}

// GroupInfo is the answer to GROUP (RFC 3977 §6.1.1): the estimated
// number of articles, the low and high water marks and the group name.
type GroupInfo struct {
	Name             string
	Count, Low, High int64
}

// parseGroup parses the text of a 211 reply: "number low high group".
func parseGroup(text string) (GroupInfo, error) {
	f := strings.Fields(text)
	if len(f) < 4 {
		return GroupInfo{}, starttls.ProtocolError("nntp", "malformed GROUP answer %q", starttls.Escape(clip(text, 80)))
	}
	var nums [3]int64
	for i := range nums {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return GroupInfo{}, starttls.ProtocolError("nntp", "malformed GROUP answer %q", starttls.Escape(clip(text, 80)))
		}
		nums[i] = n
	}
	return GroupInfo{Name: f[3], Count: nums[0], Low: nums[1], High: nums[2]}, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errorf builds an nntp-prefixed error.
func errorf(format string, args ...any) error {
	return fmt.Errorf("nntp: "+format, args...)
}
