package xmpp

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd runs our client against our server in every mode, for c2s
// and s2s.
func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name       string
		s2s        bool
		mode       starttls.Mode
		setup      func(*Server)
		wantUp     bool
		wantOffer  bool
		wantReq    bool
		wantBefore []string
		wantAuthB  []string
		wantAfter  []string
		wantAuthA  []string
		login      bool
		wantErr    error
	}{
		{name: "required", mode: starttls.ModeRequired, wantUp: true, wantOffer: true, wantReq: true,
			wantBefore: []string{"starttls"}, wantAfter: []string{"mechanisms"}, wantAuthA: []string{"PLAIN"}, login: true},
		{name: "opportunistic", mode: starttls.ModeOpportunistic, wantUp: true, wantOffer: true, wantReq: true,
			wantBefore: []string{"starttls"}, wantAfter: []string{"mechanisms"}, wantAuthA: []string{"PLAIN"}, login: true},
		{name: "opportunistic without TLS", mode: starttls.ModeOpportunistic,
			setup:      func(s *Server) { s.TLSConfig = nil; s.AllowPlaintextLogin = true },
			wantBefore: []string{"mechanisms"}, wantAuthB: []string{"PLAIN"}},
		{name: "required without TLS", mode: starttls.ModeRequired,
			setup: func(s *Server) { s.TLSConfig = nil }, wantErr: starttls.ErrUpgradeNotOffered},
		{name: "implicit", mode: starttls.ModeImplicit, setup: func(s *Server) { s.Implicit = true },
			wantUp: true, wantAfter: []string{"mechanisms"}, wantAuthA: []string{"PLAIN"}, login: true},
		{name: "plain", mode: starttls.ModePlain, setup: func(s *Server) { s.AllowPlaintextLogin = true },
			wantOffer: true, wantBefore: []string{"starttls", "mechanisms"}, wantAuthB: []string{"PLAIN"}, login: true},
		{name: "s2s required", s2s: true, mode: starttls.ModeRequired, setup: func(s *Server) { s.ServerToServer = true },
			wantUp: true, wantOffer: true, wantReq: true, wantBefore: []string{"starttls"}},
		{name: "s2s implicit", s2s: true, mode: starttls.ModeImplicit, setup: func(s *Server) { s.ServerToServer = true; s.Implicit = true },
			wantUp: true},
		{name: "s2s to a c2s server", s2s: true, mode: starttls.ModeRequired, wantErr: starttls.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			tr := &starttls.Transcript{}
			o := clientOpts(t, tt.mode)
			o.Transcript = tr
			dial := Dial
			if tt.s2s {
				dial = DialServer
			}
			c, res, err := dial(ctx, addr, o)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Dial error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v\n%s", err, trText(tr))
			}
			defer c.Close()
			if res.Upgraded != tt.wantUp || res.Offered != tt.wantOffer || res.UpgradeRequired != tt.wantReq {
				t.Errorf("Upgraded %v Offered %v Required %v, want %v %v %v", res.Upgraded, res.Offered, res.UpgradeRequired, tt.wantUp, tt.wantOffer, tt.wantReq)
			}
			if !slices.Equal(res.CapsBefore, tt.wantBefore) || !slices.Equal(res.AuthBefore, tt.wantAuthB) {
				t.Errorf("before TLS: caps %q auth %q, want %q %q", res.CapsBefore, res.AuthBefore, tt.wantBefore, tt.wantAuthB)
			}
			if tt.wantUp {
				if !slices.Equal(res.CapsAfter, tt.wantAfter) || !slices.Equal(res.AuthAfter, tt.wantAuthA) || !res.CapsReread || res.OfferedAfterTLS {
					t.Errorf("after TLS: caps %q auth %q reread %v offered %v, want %q %q", res.CapsAfter, res.AuthAfter, res.CapsReread, res.OfferedAfterTLS, tt.wantAfter, tt.wantAuthA)
				}
				if res.TLS == nil {
					t.Error("no TLS state")
				}
			}
			if !strings.HasPrefix(res.Greeting, "<stream:stream from='xmpp.test' id='") || res.Mode != tt.mode {
				t.Errorf("Greeting %q, Mode %v", res.Greeting, res.Mode)
			}
			if tt.login {
				if err := c.Login(ctx, "alice", "wrong"); err == nil {
					t.Fatal("Login with a wrong password succeeded")
				} else if se := (*SASLError)(nil); !errors.As(err, &se) || se.Condition != "not-authorized" {
					t.Errorf("wrong password: %v", err)
				}
				if err := c.Login(ctx, "alice", "secret pw"); err != nil {
					t.Fatalf("Login: %v\n%s", err, trText(tr))
				}
				if c.JID() != "alice@xmpp.test/starttls" {
					t.Errorf("JID = %q", c.JID())
				}
				if err := c.Ping(ctx); err != nil {
					t.Errorf("Ping: %v", err)
				}
				if strings.Contains(trText(tr), "c2VjcmV0IHB3") || strings.Contains(trText(tr), "AGFsaWNlAHNlY3JldCBwdw") {
					t.Errorf("password in the transcript:\n%s", trText(tr))
				}
			}
			if tt.s2s {
				if err := c.Login(ctx, "alice", "secret pw"); err == nil {
					t.Error("Login on an s2s stream succeeded")
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestServerStreamErrors: the server answers bad streams with the right
// stream error.
func TestServerStreamErrors(t *testing.T) {
	tests := []struct {
		name, send, want string
		setup            func(*Server)
	}{
		{"wrong namespace", "<?xml version='1.0'?><stream:stream to='x' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-namespace", nil},
		{"wrong stream namespace", "<stream:stream to='x' version='1.0' xmlns='jabber:client' xmlns:stream='urn:wrong'>", "invalid-namespace", nil},
		{"unknown host", testHeader, "host-unknown", func(s *Server) { s.Domains = []string{"example.org"} }},
		{"old version", "<stream:stream to='x' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", "unsupported-version", nil},
		{"bad XML", "<stream:stream to='x' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a></b>", "not-well-formed", nil},
		{"DOCTYPE", "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY a 'aaaa'>]>", "restricted-xml", nil},
		{"entity reference", testHeader + "<message>&a;</message>", "not-well-formed", nil},
		{"comment", testHeader + "<!-- hi -->", "restricted-xml", nil},
		{"processing instruction", testHeader + "<?php x?>", "restricted-xml", nil},
		{"stanza before auth", testHeader + "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "not-authorized", nil},
		{"unknown element", testHeader + "<foo/>", "unsupported-stanza-type", nil},
		{"too deep", testHeader + strings.Repeat("<a>", 100), "policy-violation", nil},
		{"too big", testHeader + "<message>" + strings.Repeat("x", MaxStanzaSize) + "</message>", "policy-violation", nil},
		{"too many attributes", testHeader + "<message" + strings.Repeat(" a='1'", 40)[:0] + func() string {
			var b strings.Builder
			for i := range 40 {
				b.WriteString(" a" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "='1'")
			}
			return b.String()
		}() + "/>", "policy-violation", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			c := dialRaw(t, startServer(t, srv))
			c.Write(tt.send)
			got, _ := c.readAll()
			if !strings.Contains(got, "<"+tt.want+" xmlns='"+NSStreamErr+"'/>") || !strings.HasSuffix(got, "</stream:stream>") {
				t.Errorf("got %q, want stream error %s", got, tt.want)
			}
		})
	}
}

// TestClientStreamError: a stream error names its condition.
func TestClientStreamError(t *testing.T) {
	addr, wait := fakeServer(t, func(f *fake) {
		f.expect("'>")
		f.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='x' version='1.0'>" +
			"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5222</see-other-host><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>moved</text></stream:error></stream:stream>")
	})
	_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	wait()
	var se *StreamError
	if !errors.As(err, &se) || se.Condition != "see-other-host" || se.Other != "other.example:5222" || se.Text != "moved" {
		t.Fatalf("err = %v, want see-other-host", err)
	}
	if !strings.Contains(err.Error(), "see-other-host (other.example:5222): moved") {
		t.Errorf("message %q", err)
	}
}
