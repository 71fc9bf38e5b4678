package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
)

func runConnect(e *env, args []string) int {
	fs := flagSet("connect", e, "connect [flags] URL\n       starttls connect --mode mta-sts|dane|policy [flags] smtp://DOMAIN   (deliver to the domain's MX hosts under its policy)")
	var cf clientFlags
	cf.register(fs)
	trace := fs.Bool("trace", false, "show the dialog before the interactive session, with directions and times (stderr)")
	insecure := fs.Bool("insecure", false, "DANGEROUS: do not verify the certificate chain or name")
	raw := fs.Bool("raw", false, "send stdin as it is (default for LDAP, PostgreSQL and MySQL; for the text protocols a lone LF becomes CRLF, as they require)")
	quiet := fs.Bool("quiet", false, "do not print the TLS summary")
	linger := fs.Duration("linger", 3*time.Second, "after stdin ends, wait this long for the server's last words")
	var df domainFlags
	df.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := cf.validate(); err != nil {
		fmt.Fprintln(e.stderr, "starttls connect:", err)
		return exitCantRun
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "starttls connect: give exactly one URL, e.g. smtp://127.0.0.1:2525")
		return exitCantRun
	}
	// smtp://DOMAIN with --mode (or ?mode=) mta-sts, dane or policy: the
	// domain's MX hosts under its policy.
	if pm, ok := domainPolicyMode(cf.mode, pos[0]); ok {
		return connectDomain(e, &cf, &df, pm, pos[0], *insecure, *trace, *raw, *quiet, *linger)
	}
	if df.set() {
		fmt.Fprintln(e.stderr, "starttls connect: --resolver, --smtp-port and --mta-sts-port apply to a mail domain with --mode mta-sts, dane or policy")
		return exitCantRun
	}
	t, err := cf.target(pos[0])
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls connect:", err)
		return exitCantRun
	}
	roots, err := cf.roots()
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls connect:", err)
		return exitCantRun
	}
	tlsConf := &tls.Config{RootCAs: roots, InsecureSkipVerify: *insecure}
	tr := &starttls.Transcript{}
	if *trace {
		tr.Live = e.stderr
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, cf.timeout)
	sess, res, err := dial.Dial(dctx, t, &dial.Options{
		Client: starttls.ClientOptions{TLSConfig: tlsConf, ServerName: cf.serverName, LocalName: cf.ehlo, Transcript: tr},
		Source: cf.source,
	})
	dcancel()
	if err != nil {
		fmt.Fprintf(e.stderr, "starttls connect: %s: %v\n", t, err)
		if p := starttls.CertificateProblem(err); p != "" {
			fmt.Fprintf(e.stderr, "starttls connect: certificate %s; pass --ca FILE to trust a private CA (or --insecure to look anyway)\n", p)
		}
		return exitFail
	}
	conn := sess.NetConn()
	defer conn.Close()
	if !*quiet {
		name := cf.serverName
		if name == "" {
			name = t.Host
		}
		verified := fmt.Sprintf("certificate verified: chain and name %q OK", name)
		if *insecure {
			verified = "WARNING: certificate NOT verified (--insecure)"
		}
		printSession(e, res, verified)
	}
	return interact(e, ctx, conn, !*raw && !t.Scheme.Binary, *linger)
}

// interact is the session after the upgrade: the server to stdout, stdin
// to the server (with crlf, a lone LF becomes CRLF), until either side
// ends; after stdin ends the server gets linger to finish.
func interact(e *env, ctx context.Context, conn net.Conn, crlf bool, linger time.Duration) int {
	// Server to stdout; stdin to the server. On a terminal, control bytes
	// from the server are shown escaped: a hostile server must not be able
	// to drive the user's terminal with escape sequences.
	out := e.stdout
	if isTerminal(out) {
		out = &escapingWriter{w: out}
	}
	activity := make(chan struct{}, 1)
	serverDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				out.Write(buf[:n])
				select {
				case activity <- struct{}{}:
				default:
				}
			}
			if err != nil {
				serverDone <- err
				return
			}
		}
	}()
	stdinDone := make(chan error, 1)
	go func() { stdinDone <- copyInput(conn, e.stdin, crlf) }()

	select {
	case err := <-serverDone:
		return connectEnd(e, err)
	case <-ctx.Done():
		return exitOK
	case err := <-stdinDone:
		if err != nil {
			fmt.Fprintln(e.stderr, "starttls connect:", err)
			return exitFail
		}
	}
	// stdin is over: wait for the server's answers until it closes or
	// falls silent.
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		select {
		case err := <-serverDone:
			return connectEnd(e, err)
		case <-activity:
			timer.Reset(linger)
		case <-timer.C:
			return exitOK
		case <-ctx.Done():
			return exitOK
		}
	}
}

func connectEnd(e *env, err error) int {
	if err == nil || errors.Is(err, io.EOF) {
		return exitOK
	}
	fmt.Fprintln(e.stderr, "starttls connect:", err)
	return exitFail
}

// copyInput sends stdin line by line; with crlf a line ending in a lone LF is
// sent with CRLF.
func copyInput(w io.Writer, r io.Reader, crlf bool) error {
	if !crlf {
		_, err := io.Copy(w, r)
		return err
	}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if strings.HasSuffix(line, "\n") && !strings.HasSuffix(line, "\r\n") {
				line = line[:len(line)-1] + "\r\n"
			}
			if _, werr := io.WriteString(w, line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// printSession prints the upgrade and the TLS parameters; verified is the
// line that says how the certificate was verified.
func printSession(e *env, res *starttls.Result, verified string) {
	w := e.stderr
	fmt.Fprintf(w, "--- %s, mode %s", res.Protocol, res.Mode)
	switch {
	case res.Mode == starttls.ModeImplicit:
		fmt.Fprint(w, ", implicit TLS")
	case res.Upgraded && res.UpgradeReply != "":
		fmt.Fprintf(w, ", upgraded with STARTTLS (%s)", res.UpgradeReply)
	case res.Upgraded:
		fmt.Fprint(w, ", upgraded with STARTTLS")
	default:
		fmt.Fprint(w, ", PLAINTEXT (not upgraded)")
	}
	fmt.Fprintln(w)
	if st := res.TLS; st != nil {
		alpn := ""
		if st.NegotiatedProtocol != "" {
			alpn = ", ALPN " + st.NegotiatedProtocol
		}
		fmt.Fprintf(w, "--- %s, %s%s\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), alpn)
		for i, c := range st.PeerCertificates {
			sum := sha256.Sum256(c.Raw)
			fmt.Fprintf(w, "--- certificate %d: %s\n      issuer %s\n      valid %s to %s\n      sha256 %x\n", i, c.Subject, c.Issuer, c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly), sum)
			if i == 0 && len(c.DNSNames)+len(c.IPAddresses) > 0 {
				var names []string
				names = append(names, c.DNSNames...)
				for _, ip := range c.IPAddresses {
					names = append(names, ip.String())
				}
				fmt.Fprintf(w, "      names %s\n", strings.Join(names, ", "))
			}
		}
		fmt.Fprintln(w, "---", verified)
	}
	if len(res.CapsAfter) > 0 {
		fmt.Fprintf(w, "--- capabilities: %s\n", strings.Join(res.CapsAfter, " "))
	} else if len(res.CapsBefore) > 0 {
		fmt.Fprintf(w, "--- capabilities: %s\n", strings.Join(res.CapsBefore, " "))
	}
	fmt.Fprintln(w, "--- session follows (stdin to server, server to stdout)")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// escapingWriter writes text with control bytes other than CR, LF and TAB
// replaced by \xNN.
type escapingWriter struct{ w io.Writer }

func (e *escapingWriter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		switch {
		case c == '\r' || c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	if _, err := e.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
