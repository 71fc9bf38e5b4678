package starttls

import (
	"net"
	"strings"
	"testing"
)

func TestHeloForNeverLocalhost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := (&ClientOptions{LocalName: "mx.example.org"}).HeloFor(c); got != "mx.example.org" {
		t.Errorf("HeloFor with LocalName = %q", got)
	}
	got := (*ClientOptions)(nil).HeloFor(c)
	if strings.Contains(strings.ToLower(got), "localhost") || got == "" {
		t.Errorf("HeloFor default = %q", got)
	}
	if !strings.Contains(got, ".") && got != "[127.0.0.1]" {
		t.Errorf("HeloFor default = %q: neither an FQDN nor the address literal", got)
	}
}

func TestIsTemporary(t *testing.T) {
	if IsTemporary(ErrUpgradeRefused) || IsTemporary(nil) {
		t.Error("IsTemporary of a permanent error")
	}
}
