package xmpp

import (
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestClientTranscript checks the client's bytes exactly through a whole
// c2s dialog: STARTTLS, SASL PLAIN, restart, bind, close.
func TestClientTranscript(t *testing.T) {
	srvTLS, _ := linetest.TLSPair(t)
	const (
		featBind  = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"
		authPlain = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldCBwdw==</auth>"
		bindReq   = "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>starttls</resource></bind></iq>"
	)
	var plain, overTLS string
	addr, wait := fakeServer(t, func(f *fake) {
		f.expect(wantHeader)
		f.send("<?xml version='1.0'?>\n" + srvHeader + "\n  " + featTLS)
		f.expect(wantStartTL)
		f.send(proceed)
		plain = f.got.String()
		f.got.Reset()
		if !f.startTLS(srvTLS) {
			return
		}
		f.expect(wantHeader)
		f.send(srvHeader + featSASL)
		f.expect(authPlain)
		f.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		f.expect(wantHeader)
		f.send(srvHeader + featBind)
		f.expect(bindReq)
		f.send("<message from='x'><body>hello</body></message> <iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/starttls</jid></bind></iq>")
		f.expect("</stream:stream>")
		f.send("</stream:stream>")
		overTLS = f.got.String()
		f.drain()
	})
	ctx := linetest.Ctx(t)
	tr := &starttls.Transcript{}
	o := clientOpts(t, starttls.ModeRequired)
	o.Transcript = tr
	c, res, err := Dial(ctx, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "alice", "secret pw"); err != nil {
		t.Fatal(err)
	}
	if c.JID() != "alice@localhost/starttls" {
		t.Errorf("JID %q", c.JID())
	}
	c.Close()
	if f := wait(); f.err != nil {
		t.Logf("fake: %v", f.err)
	}
	if plain != wantHeader+wantStartTL {
		t.Errorf("plaintext client bytes %q", plain)
	}
	if want := wantHeader + authPlain + wantHeader + bindReq + "</stream:stream>"; overTLS != want {
		t.Errorf("client bytes over TLS\n%q\nwant\n%q", overTLS, want)
	}
	if res.Greeting != "<stream:stream from='localhost' id='abc' version='1.0'>" || res.UpgradeReply != proceed || !res.UpgradeRequired {
		t.Errorf("Greeting %q UpgradeReply %q Required %v", res.Greeting, res.UpgradeReply, res.UpgradeRequired)
	}
	text := trText(tr)
	if strings.Contains(text, "AGFsaWNlAHNlY3JldCBwdw") || !strings.Contains(text, "mechanism='PLAIN'>****</auth>") {
		t.Errorf("credentials not masked:\n%s", text)
	}
}

// TestServerToServerHeader: the s2s stream header carries from, the
// jabber:server namespace and the dialback declaration.
func TestServerToServerHeader(t *testing.T) {
	const want = "<?xml version='1.0'?><stream:stream to='localhost' from='a.example' version='1.0' xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams'>"
	addr, wait := fakeServer(t, func(f *fake) {
		f.expect(want)
		f.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'><stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")
		f.closeStream()
	})
	o := clientOpts(t, starttls.ModeOpportunistic)
	o.LocalName = "a.example"
	c, res, err := DialServer(linetest.Ctx(t), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait()
	if res.Protocol != "xmpp-server" || res.Offered || strings.Join(res.CapsBefore, ",") != "dialback" {
		t.Errorf("%+v", res)
	}
}
