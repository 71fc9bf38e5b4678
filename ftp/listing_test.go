package ftp

import (
	"errors"
	"strings"
	"testing"

	"github.com/starttls/starttls"
)

// TestListingSizeBudget: a listing of lines each under the line limit but
// together over MaxListBytes fails with ErrLineTooLong.
func TestListingSizeBudget(t *testing.T) {
	line := strings.Repeat("x", 3000) + "\r\n"
	data := strings.Repeat(line, (16<<20)/len(line)+2)
	var out []string
	err := (&Client{}).readLines(strings.NewReader(data), &out)
	if !errors.Is(err, starttls.ErrLineTooLong) {
		t.Errorf("readLines() error = %v (%d lines), want ErrLineTooLong", err, len(out))
	}
}
