package ldap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeStartTLS: the StartTLS request is the one of CL-29 (testssl's
// starttls_ldap_dialog, RFC 4511 §4.14.1).
func TestEncodeStartTLS(t *testing.T) {
	want := append(mustHex(t, "30 1d 02 01 01 77 18 80 16"), StartTLSOID...)
	if got := encodeMessage(1, encodeExtended(StartTLSOID)); !bytes.Equal(got, want) {
		t.Fatalf("StartTLS request = % x, want % x", got, want)
	}
}

// TestEncodeSearchGolden: the root DSE search, derived by hand from the
// ASN.1 of RFC 4511 §4.5.1 (and checked against ldapsearch -x -b ""
// -s base supportedExtension, which differs only in the message ID and in
// writing "objectclass" in lower case).
func TestEncodeSearchGolden(t *testing.T) {
	want := mustHex(t, "30 39 02 01 01"+ // LDAPMessage, messageID 1
		" 63 34"+ // [APPLICATION 3] SearchRequest
		" 04 00"+ // baseObject ""
		" 0a 01 00"+ // scope baseObject
		" 0a 01 00"+ // derefAliases neverDerefAliases
		" 02 01 00"+ // sizeLimit 0
		" 02 01 00"+ // timeLimit 0
		" 01 01 00"+ // typesOnly FALSE
		" 87 0b 6f 62 6a 65 63 74 43 6c 61 73 73"+ // present [7] "objectClass"
		" 30 14 04 12 73 75 70 70 6f 72 74 65 64 45 78 74 65 6e 73 69 6f 6e") // attributes {"supportedExtension"}
	if got := encodeMessage(1, encodeSearch("", ScopeBase, []string{"supportedExtension"})); !bytes.Equal(got, want) {
		t.Fatalf("SearchRequest = % x, want % x", got, want)
	}
}

// TestEncodeSimpleBindGolden: a simple bind, derived by hand from RFC 4511
// §4.2 (ldapsearch -x -D cn=a -w p sends the same bytes).
func TestEncodeSimpleBindGolden(t *testing.T) {
	want := mustHex(t, "60 0c"+ // [APPLICATION 0] BindRequest
		" 02 01 03"+ // version 3
		" 04 04 63 6e 3d 61"+ // name "cn=a"
		" 80 01 70") // simple [0] "p"
	if got := encodeSimpleBind("cn=a", "p"); !bytes.Equal(got, want) {
		t.Fatalf("BindRequest = % x, want % x", got, want)
	}
	want = append(mustHex(t, "30 11 02 01 01"), want...)
	if got := encodeMessage(1, encodeSimpleBind("cn=a", "p")); !bytes.Equal(got, want) {
		t.Fatalf("LDAPMessage(BindRequest) = % x, want % x", got, want)
	}
}

// TestClientTranscript runs the client against scripted servers and checks
// the client's bytes exactly and the Result.
func TestClientTranscript(t *testing.T) {
	dseReq := searchMsg(1, "", ScopeBase, dseAttrs...)
	stReq := encodeMessage(2, encodeExtended(StartTLSOID))
	dseReq3 := searchMsg(3, "", ScopeBase, dseAttrs...)
	dse := append(dseEntry(1, StartTLSOID, WhoAmIOID), doneMsg(1, ResultSuccess)...)
	dseAfter := append(dseEntry(3, WhoAmIOID), doneMsg(3, ResultSuccess)...)
	// PR-18: Active Directory sends 4-octet long-form lengths.
	adSuccess := append(mustHex(t, "30 84 00 00 00 28 02 01 02 78 84 00 00 00 1f 0a 01 00 04 00 04 00 8a 16"), StartTLSOID...)
	minimal := mustHex(t, "30 0c 02 01 02 78 07 0a 01 00 04 00 04 00")
	upgraded := func(reply []byte) []step {
		return []step{{want: dseReq, reply: dse}, {want: stReq, reply: reply, handshake: true}, {want: dseReq3, reply: dseAfter}}
	}
	tests := []struct {
		name      string
		mode      starttls.Mode
		script    []step
		wantErr   error
		temporary bool
		offered   bool
		upgraded  bool
	}{
		{"upgrade", starttls.ModeRequired, upgraded(startTLSResp(2, ResultSuccess)), nil, false, true, true},
		{"ad-long-form", starttls.ModeRequired, upgraded(adSuccess), nil, false, true, true},
		{"minimal-success", starttls.ModeRequired, upgraded(minimal), nil, false, true, true},
		{"not-offered", starttls.ModeRequired, []step{{want: dseReq, reply: append(dseEntry(1, WhoAmIOID), doneMsg(1, ResultSuccess)...)}},
			starttls.ErrUpgradeNotOffered, false, false, false},
		{"not-offered-opportunistic", starttls.ModeOpportunistic, []step{{want: dseReq, reply: append(dseEntry(1), doneMsg(1, ResultSuccess)...)}},
			nil, false, false, false},
		{"refused-unavailable", starttls.ModeRequired, []step{{want: dseReq, reply: dse}, {want: stReq, reply: startTLSResp(2, ResultUnavailable)}},
			starttls.ErrUpgradeRefused, true, true, false},
		{"refused-protocolError", starttls.ModeRequired, []step{{want: dseReq, reply: dse}, {want: stReq, reply: startTLSResp(2, ResultProtocolError)}},
			starttls.ErrUpgradeRefused, false, true, false},
		// slapd's race: operationsError while nothing is outstanding is
		// tried again (twice), then taken as a refusal.
		{"refused-operationsError", starttls.ModeRequired, []step{{want: dseReq, reply: dse},
			{want: stReq, reply: startTLSResp(2, ResultOperationsError)},
			{want: encodeMessage(3, encodeExtended(StartTLSOID)), reply: startTLSResp(3, ResultOperationsError)},
			{want: encodeMessage(4, encodeExtended(StartTLSOID)), reply: startTLSResp(4, ResultOperationsError)}},
			starttls.ErrUpgradeRefused, false, true, false},
		{"operationsError-then-success", starttls.ModeRequired, []step{{want: dseReq, reply: dse},
			{want: stReq, reply: startTLSResp(2, ResultOperationsError)},
			{want: encodeMessage(3, encodeExtended(StartTLSOID)), reply: startTLSResp(3, ResultSuccess), handshake: true},
			{want: searchMsg(4, "", ScopeBase, dseAttrs...), reply: append(dseEntry(4, WhoAmIOID), doneMsg(4, ResultSuccess)...)}},
			nil, false, true, true},
		{"refused-opportunistic", starttls.ModeOpportunistic, []step{{want: dseReq, reply: dse}, {want: stReq, reply: startTLSResp(2, ResultUnavailable)}},
			nil, false, true, false},
		{"dse-unreadable-tried-anyway", starttls.ModeRequired, []step{{want: dseReq, reply: doneMsg(1, ResultInsufficientAccessRights)},
			{want: stReq, reply: startTLSResp(2, ResultSuccess), handshake: true}, {want: dseReq3, reply: dseAfter}}, nil, false, false, true},
		{"dse-hidden-tried-anyway", starttls.ModeRequired, []step{{want: dseReq, reply: append(encodeMessage(1, encodeEntry(&Entry{})), doneMsg(1, ResultSuccess)...)},
			{want: stReq, reply: startTLSResp(2, ResultSuccess), handshake: true}, {want: dseReq3, reply: dseAfter}}, nil, false, false, true},
		{"dse-unreadable-unknown-op", starttls.ModeRequired, []step{{want: dseReq, reply: doneMsg(1, ResultInsufficientAccessRights)},
			{want: stReq, reply: startTLSResp(2, ResultProtocolError)}}, starttls.ErrUpgradeNotOffered, false, false, false},
		{"notice-of-disconnection", starttls.ModeRequired, []step{{want: dseReq, reply: encodeMessage(0, encodeResult(opExtendedResponse, ResultUnavailable, "", "bye", berString(classContext|10, noticeOfDisconnectionOID)))}},
			nil, true, false, false},
		{"wrong-message-id", starttls.ModeRequired, []step{{want: dseReq, reply: doneMsg(7, ResultSuccess)}}, starttls.ErrProtocol, false, false, false},
		{"not-a-sequence", starttls.ModeRequired, []step{{want: dseReq, reply: []byte("220 smtp.example ESMTP\r\n")}}, starttls.ErrProtocol, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, tt.script)
			opts := clientOpts(t, tt.mode)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if tt.name == "notice-of-disconnection" {
				var re *ResultError
				if !errors.As(err, &re) || re.Code != ResultUnavailable {
					t.Fatalf("Dial error = %v, want a notice of disconnection", err)
				}
			} else if tt.wantErr == nil && err != nil {
				t.Fatalf("Dial: %v", err)
			} else if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Dial error = %v, want %v", err, tt.wantErr)
			}
			if got := starttls.IsTemporary(err); got != tt.temporary {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tt.temporary)
			}
			if res.Offered != tt.offered || res.Upgraded != tt.upgraded {
				t.Errorf("Offered, Upgraded = %v, %v, want %v, %v", res.Offered, res.Upgraded, tt.offered, tt.upgraded)
			}
			if c != nil {
				c.Close()
			}
			fr := <-done
			if fr.err != nil {
				t.Fatal(fr.err)
			}
			if err != nil && len(fr.rest) > 0 {
				t.Errorf("client sent % x after failing", fr.rest)
			}
			if err == nil && !bytes.Equal(fr.rest, encodeMessage(c.lastID, tlv(opUnbindRequest))) {
				t.Errorf("client ended with % x, want an UnbindRequest", fr.rest)
			}
			if tt.upgraded {
				if res.OfferedAfterTLS || !res.CapsReread || res.TLS == nil {
					t.Errorf("OfferedAfterTLS %v, CapsReread %v, TLS %v", res.OfferedAfterTLS, res.CapsReread, res.TLS != nil)
				}
				if want := []string{"supportedLDAPVersion=3", "supportedExtension=" + WhoAmIOID}; strings.Join(res.CapsAfter, " ") != strings.Join(want, " ") {
					t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
				}
			}
		})
	}
}

// TestClientTranscriptLines: the transcript has one readable line per
// message and never the password.
func TestClientTranscriptLines(t *testing.T) {
	srv := newServer(t)
	addr := startServer(t, srv)
	opts := clientOpts(t, starttls.ModeRequired)
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, aliceDN, alicePW); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var lines []string
	for _, e := range opts.Transcript.Events() {
		lines = append(lines, e.Dir.String()+" "+e.Text)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`#1 SearchRequest base="" scope=base filter=(objectClass=*) attrs=supportedExtension,supportedSASLMechanisms,supportedLDAPVersion,vendorName,vendorVersion`,
		`#1 SearchResultEntry "" supportedLDAPVersion=3 supportedExtension=1.3.6.1.4.1.1466.20037,1.3.6.1.4.1.4203.1.11.3 vendorName=starttls vendorVersion=ldap.test`,
		`#1 SearchResultDone success (0)`,
		`#2 ExtendedRequest 1.3.6.1.4.1.1466.20037 (StartTLS)`,
		`#2 ExtendedResponse success (0) name=1.3.6.1.4.1.1466.20037`,
		`#4 BindRequest v3 dn="uid=alice,dc=lab,dc=starttls,dc=test" simple password=****`,
		`#4 BindResponse success (0)`,
		`#5 UnbindRequest`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("transcript lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, alicePW) {
		t.Errorf("transcript shows the password:\n%s", all)
	}
}

// TestSearchResultLimit: a search accepts exactly opts.LinesLimit()
// entries (here those of the root DSE search), not one more.
func TestSearchResultLimit(t *testing.T) {
	const entries = 3
	reply := slices.Concat(dseEntry(1, StartTLSOID), dseEntry(1), dseEntry(1), doneMsg(1, ResultSuccess))
	for _, limit := range []int{entries, entries - 1} {
		addr, _ := fakeServer(t, []step{{want: searchMsg(1, "", ScopeBase, dseAttrs...), reply: reply}})
		opts := clientOpts(t, starttls.ModePlain)
		opts.MaxLines = limit
		c, _, err := Dial(linetest.Ctx(t), addr, opts)
		if err == nil {
			c.Close()
		}
		if ok := limit == entries; (err == nil) != ok {
			t.Errorf("limit %d: Dial = %v, want success %v", limit, err, ok)
		}
	}
}
