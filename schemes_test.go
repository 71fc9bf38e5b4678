package starttls

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		addr     string
		protocol string
		mode     Mode
		err      string
	}{
		{in: "smtp://mx.example.org", addr: "mx.example.org:25", protocol: "smtp", mode: ModeRequired},
		{in: "smtp://mx.example.org:465", addr: "mx.example.org:465", protocol: "smtp", mode: ModeImplicit},
		{in: "submission://127.0.0.1", addr: "127.0.0.1:587", protocol: "smtp", mode: ModeRequired},
		{in: "smtps://127.0.0.1", addr: "127.0.0.1:465", protocol: "smtp", mode: ModeImplicit},
		{in: "IMAPS://[::1]:1993", addr: "[::1]:1993", protocol: "imap", mode: ModeImplicit},
		{in: "imap://h?mode=opportunistic", addr: "h:143", protocol: "imap", mode: ModeOpportunistic},
		{in: "pop3://h:1110?mode=plain", addr: "h:1110", protocol: "pop3", mode: ModePlain},
		{in: "lmtp://h:2424", addr: "h:2424", protocol: "lmtp", mode: ModeRequired},
		{in: "smtp://BÜCHER.Example.", addr: "xn--bcher-kva.example:25", protocol: "smtp", mode: ModeRequired},
		{in: "smtp://xn--bcher-kva.example", addr: "xn--bcher-kva.example:25", protocol: "smtp", mode: ModeRequired},
		{in: "smtp://MX.Example.ORG", addr: "mx.example.org:25", protocol: "smtp", mode: ModeRequired},
		{in: "example.org", err: "not a URL"},
		{in: "gopher://h", err: "unknown scheme"},
		{in: "smtp://", err: "no host"},
		{in: "smtp://h:0", err: "invalid port"},
		{in: "smtp://h:70000", err: "invalid port"},
		{in: "smtp://h:x", err: "bad URL"},
		{in: "smtp://user:pw@h", err: "credentials"},
		{in: "smtp://h?mode=tls", err: "unknown mode"},
		{in: "smtp://h?foo=1", err: "unknown parameter"},
		{in: "smtps://h?mode=required", err: "implicit TLS"},
		{in: "smtp://h/path", err: "unexpected path"},
		{in: "imap://::", err: "invalid host"},
		{in: "smtp://a!b", err: "invalid host"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseTarget(%q) error = %v, want one containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTarget(%q) = %v", tt.in, err)
			}
			if got.Addr() != tt.addr || got.Scheme.Protocol != tt.protocol || got.EffectiveMode() != tt.mode {
				t.Errorf("ParseTarget(%q) = %s %s %s, want %s %s %s", tt.in, got.Addr(), got.Scheme.Protocol, got.EffectiveMode(), tt.addr, tt.protocol, tt.mode)
			}
		})
	}
}

func TestModeNames(t *testing.T) {
	for m := ModeAuto; m <= ModeImplicit; m++ {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v, want %v", m.String(), got, err, m)
		}
	}
	if ModeAuto.Resolve(993) != ModeImplicit || ModeAuto.Resolve(143) != ModeRequired || ModePlain.Resolve(993) != ModePlain {
		t.Error("Resolve does not follow the port table")
	}
}

func TestEscape(t *testing.T) {
	tests := map[string]string{
		"EHLO a\x00b":        `EHLO a\x00b`,
		"\x1b[31mred":        `\x1b[31mred`,
		"ok\r\n":             `ok\r\n`,
		"caf\xe9":            `caf\xe9`,
		"héllo \uFFFD":       "héllo \uFFFD",
		"\u009b31m":          `\x9b31m`,
		"250-STARTTLS\tnext": `250-STARTTLS\tnext`,
	}
	for in, want := range tests {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"smtp://h", "imaps://[::1]:993?mode=implicit", "pop3://h:0", "smtp://%zz", "smtp://h?mode=plain&mode=required"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if tg.Port < 1 || tg.Port > 65535 || tg.Host == "" {
			t.Fatalf("ParseTarget(%q) accepted port %d host %q", s, tg.Port, tg.Host)
		}
		if _, err := ParseTarget(tg.String()); err != nil {
			t.Fatalf("ParseTarget(%q).String() = %q does not parse: %v", s, tg.String(), err)
		}
	})
}
