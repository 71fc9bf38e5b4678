package ftp

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestClientTranscript checks the client's bytes exactly, before and
// inside TLS, through a multi-line greeting, login and QUIT.
func TestClientTranscript(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send("220-Welcome\r\nsecond line without code\r\n220 ready\r\n")
		f.Expect("FEAT")
		f.Send(featPre)
		f.Expect("AUTH TLS")
		f.Send("234-multi-line\r\n234 go ahead\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Expect("FEAT")
		f.Send(featPost)
		f.Expect("PBSZ 0")
		f.Send("530 login first\r\n")
		f.Expect("USER alice")
		f.Send("331 password\r\n")
		f.Expect("PASS secret pw")
		f.Send("230 ok\r\n")
		f.Expect("PBSZ 0")
		f.Send("200 PBSZ=0\r\n")
		f.Expect("PROT P")
		f.Send("200 ok\r\n")
		f.Expect("QUIT")
		f.Send("221 bye\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Greeting != "220-Welcome\nsecond line without code\nready" || res.UpgradeReply != "234-multi-line\ngo ahead" {
		t.Errorf("Greeting %q, UpgradeReply %q", res.Greeting, res.UpgradeReply)
	}
	if c.DataProtected() {
		t.Error("protected before PROT P")
	}
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); err != nil {
		t.Fatal(err)
	}
	if !c.DataProtected() {
		t.Error("PROT P after login not recorded")
	}
	c.Close()
	f := wait()
	if got := f.Plain(); got != "FEAT\r\nAUTH TLS\r\n" {
		t.Errorf("plaintext = %q", got)
	}
	if got, want := f.TLS(), "FEAT\r\nPBSZ 0\r\nUSER alice\r\nPASS secret pw\r\nPBSZ 0\r\nPROT P\r\nQUIT\r\n"; got != want {
		t.Errorf("inside TLS = %q, want %q", got, want)
	}
	if tr := dump(res.Transcript); strings.Contains(tr, "secret pw") || !strings.Contains(tr, "PASS ****") {
		t.Errorf("transcript does not mask the password:\n%s", tr)
	}
}

// TestClientIgnoresPASVAddress: EPSV refused, PASV names another host; the
// client connects to the control connection's peer only (FTP bounce / NAT
// trick), and a hostile 229 fails cleanly.
func TestClientIgnoresPASVAddress(t *testing.T) {
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	port := dl.Addr().(*net.TCPAddr).Port
	go func() {
		conn, err := dl.Accept()
		if err != nil {
			return
		}
		conn.Write([]byte("a.txt\r\nb.txt\r\n"))
		conn.Close()
	}()
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send(greeting)
		f.Expect("FEAT")
		f.Send("502 no FEAT\r\n")
		f.Expect("EPSV")
		f.Send("502 no EPSV\r\n")
		f.Expect("PASV")
		f.Send("227 Entering Passive Mode (10,9,9,9," + strconv.Itoa(port>>8) + "," + strconv.Itoa(port&0xff) + ")\r\n")
		f.Expect("NLST")
		f.Send("150 here\r\n226 done\r\n")
		f.Expect("PASV")
		f.Send("227 =(1,2,3,4,0,0)\r\n")
		f.Expect("QUIT")
		f.Send("221 bye\r\n")
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	names, err := c.NameList(linetest.Ctx(t), "")
	if err != nil || strings.Join(names, ",") != "a.txt,b.txt" {
		t.Fatalf("NameList = %q, %v\n%s", names, err, dump(res.Transcript))
	}
	if !strings.Contains(dump(res.Transcript), "PASV names 10.9.9.9; connecting to the control connection's peer 127.0.0.1") {
		t.Errorf("transcript:\n%s", dump(res.Transcript))
	}
	if _, err := c.NameList(linetest.Ctx(t), ""); err == nil {
		t.Error("port 0 in PASV accepted")
	}
	if _, err := c.NameList(linetest.Ctx(t), "x\r\nDELE y"); err == nil {
		t.Error("CR LF in a path accepted")
	}
	c.Close()
	wait()
}
