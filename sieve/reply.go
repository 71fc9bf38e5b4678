package sieve

import (
	"strings"

	"github.com/starttls/starttls"
)

// Response codes (RFC 5804 §1.3) this package sends or acts on.
const (
	CodeAuthTooWeak      = "AUTH-TOO-WEAK"
	CodeEncryptNeeded    = "ENCRYPT-NEEDED"
	CodeQuota            = "QUOTA"
	CodeQuotaMaxScripts  = "QUOTA/MAXSCRIPTS"
	CodeQuotaMaxSize     = "QUOTA/MAXSIZE"
	CodeTryLater         = "TRYLATER"
	CodeActive           = "ACTIVE"
	CodeNonexistent      = "NONEXISTENT"
	CodeAlreadyExists    = "ALREADYEXISTS"
	CodeTransitionNeeded = "TRANSITION-NEEDED"
	CodeSASL             = "SASL"
	CodeWarnings         = "WARNINGS"
	CodeTag              = "TAG"
	CodeReferral         = "REFERRAL"
)

// Error is a NO or BYE response (RFC 5804 §4): Kind "NO" or "BYE", the
// response code without parentheses ("ENCRYPT-NEEDED", "QUOTA/MAXSIZE"),
// and the human-readable text.
type Error struct {
	Kind string
	Code string
	Text string
}

// Error renders the response as `sieve: NO (CODE) "text"`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sieve: ")
	b.WriteString(e.Kind)
	if e.Code != "" {
		b.WriteString(" (")
		b.WriteString(starttls.Escape(e.Code))
		b.WriteString(")")
	}
	if e.Text != "" {
		b.WriteString(" ")
		b.WriteString(starttls.Escape(e.Text))
	}
	return b.String()
}

// Temporary reports whether the server said to try again later (TRYLATER,
// RFC 5804 §1.3), hierarchically.
func (e *Error) Temporary() bool {
	return e.Code == CodeTryLater || strings.HasPrefix(e.Code, CodeTryLater+"/")
}
