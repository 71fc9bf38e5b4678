package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// unbindTimeout bounds the polite UnbindRequest of Client.Close.
const unbindTimeout = 2 * time.Second

// rootDSEAttrs are the root DSE attributes the client asks for (RFC 4512
// §5.1).
var rootDSEAttrs = []string{"supportedExtension", "supportedSASLMechanisms", "supportedLDAPVersion", "vendorName", "vendorVersion"}

// Client is an LDAP session secured per the caller's mode. It is created by
// Upgrade or Dial, which have already done the TLS upgrade; it is not safe
// for concurrent use.
type Client struct {
	conn   net.Conn // the raw connection, or the *tls.Conn after the upgrade
	w      *wire
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	lastID int64
	closed bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 636, ModeRequired
// elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "ldap", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the root DSE (RFC 4512 §5.1), the
// StartTLS extended operation per the mode (RFC 4511 §4.14, RFC 4513 §3),
// the TLS handshake and the root DSE again over TLS, trusting only what it
// reads over TLS.
//
// ModeAuto is resolved from the remote port (implicit on 636). ModeImplicit
// does the handshake first. ModePlain never upgrades. ModeRequired fails
// with ErrUpgradeNotOffered when the root DSE was read and does not list
// StartTLS (and sends nothing more), and with ErrUpgradeRefused when the
// StartTLS response is not success. When the root DSE cannot be read
// anonymously, StartTLS is tried anyway; Offered stays false.
// ModeOpportunistic goes on in plaintext in both cases, without an error.
//
// Bytes that arrive after the StartTLS response and before the handshake
// fail the upgrade with ErrPlaintextAfterUpgrade (response injection).
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "ldap", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
	c := &Client{conn: conn, opts: &o, res: res, mode: mode}
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	err := c.dialog(ctx)
	stop()
	if err != nil {
		c.conn.Close()
		return nil, res, textline.CtxErr(ctx, err)
	}
	return c, res, nil
}

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
		c.w = newWire(c.conn, MaxMessageSize, starttls.FromClient, c.res.Transcript)
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.opts)
		if err != nil {
			return errorf("implicit TLS: %w", err)
		}
		c.w = newWire(tc, MaxMessageSize, starttls.FromClient, c.res.Transcript)
		c.tlsDone(tc)
		caps, auth, ok, err := c.rootDSE()
		if err != nil {
			return err
		}
		c.res.CapsAfter, c.res.AuthAfter, c.res.CapsReread = caps, auth, ok
		return nil
	default:
		return errorf("unsupported mode %v", c.mode)
	}

	caps, auth, readable, err := c.rootDSE()
	if err != nil {
		return err
	}
	c.res.CapsBefore, c.res.AuthBefore = caps, auth
	c.res.Offered = readable && slices.Contains(caps, "supportedExtension="+StartTLSOID)
	if c.mode == starttls.ModePlain {
		return nil
	}
	if readable && !c.res.Offered {
		if c.mode == starttls.ModeRequired {
			// CL-07: nothing else is sent.
			return errorf("StartTLS (%s) not in the root DSE's supportedExtension: %w", StartTLSOID, starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	if !readable {
		c.w.note("root DSE not readable anonymously: trying StartTLS anyway")
	}
	return c.startTLS(ctx)
}

// startTLS sends the StartTLS extended request (RFC 4511 §4.14.1), checks
// for response injection, does the handshake and reads the root DSE again.
func (c *Client) startTLS(ctx context.Context) error {
	// slapd may still count the root DSE search as outstanding for a
	// moment after sending its last response, and then refuses StartTLS
	// with operationsError (RFC 4513 §3.1.1). Nothing is outstanding on
	// our side (we read every response), so a short pause and one more
	// try is right; with the injection probe the refusal is the answer.
	for attempt := 0; ; attempt++ {
		err := c.startTLSOnce(ctx)
		var re *ResultError
		if attempt >= 2 || c.opts.ProbeInjection || !errors.As(err, &re) || re.Code != ResultOperationsError {
			return err
		}
		c.w.note("StartTLS refused with operationsError while nothing is outstanding; trying again")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Client) startTLSOnce(ctx context.Context) error {
	id := c.nextID()
	req := "ExtendedRequest " + StartTLSOID + " (StartTLS)"
	var probe *starttls.InjectionProbe
	var probeID int64
	if c.opts.ProbeInjection {
		// CVE-2011-0411: the StartTLS request and a root DSE search in one
		// write, which RFC 4513 §3.1.1 forbids the client to send.
		probeID = c.nextID()
		probe = &starttls.InjectionProbe{Sent: fmt.Sprintf("SearchRequest #%d base=\"\" scope=base (the root DSE)", probeID)}
		c.res.Injection = probe
		c.w.transcript.Add(starttls.FromClient, c.w.tls, fmt.Sprintf("#%d %s", id, req))
		c.w.transcript.Add(starttls.FromClient, c.w.tls, "#"+strconv.FormatInt(probeID, 10)+" SearchRequest base=\"\" scope=base (injection probe, same write)")
		b := append(encodeMessage(id, encodeExtended(StartTLSOID)), encodeMessage(probeID, encodeSearch("", ScopeBase, []string{"supportedExtension"}))...)
		if err := c.w.writeRaw(b); err != nil {
			return err
		}
	} else if err := c.w.write(id, encodeExtended(StartTLSOID), req); err != nil {
		return err
	}
	// RFC 4513 §3.1.1: the client sends nothing until the response.
	r, err := c.readStartTLSResponse(id, probe, probeID)
	if err != nil {
		return fmt.Errorf("%w (waiting for the StartTLS response)", err)
	}
	c.res.UpgradeReply = r.summary()
	if r.name != "" && r.name != StartTLSOID {
		return starttls.ProtocolError("ldap", "StartTLS response names %q", r.name)
	}
	if r.code != ResultSuccess {
		if probe != nil {
			if r.code == ResultOperationsError {
				// The answer RFC 4511 §4.14.1 prescribes to a client that
				// broke the StartTLS rules: safe.
				probe.Reply = "StartTLS refused with operationsError because of the pipelined request (RFC 4513 §3.1.1)"
			} else {
				probe.Err = "upgrade refused"
			}
		}
		if c.mode != starttls.ModeRequired {
			if probe != nil {
				return c.skipProbeAnswer(ctx, probeID)
			}
			return nil // opportunistic: go on in plaintext
		}
		if !c.res.Offered && r.code == ResultProtocolError {
			// RFC 4511 §4.12: protocolError answers an extended operation
			// the server does not know; the root DSE did not say.
			return fmt.Errorf("ldap: StartTLS: %w: %w", starttls.ErrUpgradeNotOffered, r.err("StartTLS"))
		}
		return fmt.Errorf("ldap: StartTLS: %w: %w", starttls.ErrUpgradeRefused, r.err("StartTLS"))
	}
	// Upgrade rule 1: nothing may follow the response in plaintext.
	if probe != nil {
		// The server may have answered the probe search in plaintext after
		// the StartTLS response: not response injection, and not trusted.
		if b := c.w.takeBuffered(); len(b) > 0 {
			probe.Reply = strings.TrimSpace(probe.Reply + " (in plaintext, before TLS; discarded) " + starttls.Escape(clip(b, 200)))
			c.w.note(fmt.Sprintf("%d bytes in plaintext after the StartTLS response (answer to the probe?), discarded", len(b)))
		}
	} else if b, err := c.w.checkNoBuffered(); err != nil {
		c.res.PlaintextAfterUpgrade = b
		return err
	}
	tc, err := starttls.Handshake(ctx, c.conn, c.opts)
	if err != nil {
		if probe != nil {
			if textline.IsClosed(err) {
				probe.Closed = true
			} else {
				probe.Err = err.Error()
			}
		}
		return errorf("StartTLS: %w", err)
	}
	c.tlsDone(tc)
	c.w.upgrade(tc)
	if probe != nil {
		if err := c.runProbe(ctx, probe, probeID); err != nil {
			return err
		}
	}
	// Upgrade rule 3: forget what the server said before TLS.
	caps, auth, ok, err := c.rootDSE()
	if err != nil {
		return err
	}
	c.res.CapsAfter, c.res.AuthAfter, c.res.CapsReread = caps, auth, ok
	// OfferedAfterTLS stays false: see the package documentation.
	return nil
}

// readStartTLSResponse reads the StartTLS response. With the injection
// probe, answers to the probe search that come first, in plaintext, are
// recorded and skipped (a server may run the search before StartTLS).
func (c *Client) readStartTLSResponse(id int64, probe *starttls.InjectionProbe, probeID int64) (*result, error) {
	for n := 0; ; n++ {
		m, err := c.readAny()
		if err != nil {
			return nil, err
		}
		if probe != nil && m.id == probeID && n < c.opts.LinesLimit() {
			if probe.Reply == "" {
				probe.Reply = "(in plaintext, before TLS; discarded) " + summarize(m)
			}
			continue
		}
		if m.id != id {
			return nil, starttls.ProtocolError("ldap", "response to message #%d while waiting for #%d", m.id, id)
		}
		if m.op.tag != opExtendedResponse {
			return nil, starttls.ProtocolError("ldap", "%s where an ExtendedResponse was expected", opName(m.op.tag))
		}
		return parseResult(&m.op)
	}
}

// runProbe waits opts.Wait() for a message the client did not ask for over
// TLS: a server that executed the pipelined search inside TLS answers it
// now (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe, probeID int64) error {
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	m, err := c.readAny()
	if err == nil {
		probe.Vulnerable = true
		probe.Reply = summarize(m)
		c.w.note("injection probe: the server answered the search pipelined after StartTLS inside TLS (CVE-2011-0411)")
		// Read the rest of the answer so that the dialog stays in step.
		for n := 0; err == nil && m.id == probeID && m.op.tag != opSearchResultDone && n < c.opts.LinesLimit(); n++ {
			m, err = c.readAny()
		}
	}
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return nil // silence: not vulnerable
	case textline.IsClosed(err):
		probe.Closed = true
		return errorf("server closed the connection after the TLS handshake (injection probe): %w", err)
	default:
		probe.Err = err.Error()
		return err
	}
}

// skipProbeAnswer reads and drops the plaintext answer to the probe search
// after a refused StartTLS, waiting at most opts.Wait() for it.
func (c *Client) skipProbeAnswer(ctx context.Context, probeID int64) error {
	// The short wait must not extend a context that ends sooner.
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	defer func() {
		if d, ok := ctx.Deadline(); ok {
			c.conn.SetReadDeadline(d)
		} else {
			c.conn.SetReadDeadline(time.Time{})
		}
	}()
	for n := 0; n < c.opts.LinesLimit(); n++ {
		m, err := c.readAny()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return err
		}
		if m.id != probeID {
			return starttls.ProtocolError("ldap", "response to message #%d after a refused StartTLS", m.id)
		}
		if m.op.tag == opSearchResultDone {
			return nil
		}
	}
	return starttls.ProtocolError("ldap", "more than %d search results", c.opts.LinesLimit())
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

func (c *Client) nextID() int64 {
	c.lastID++
	if c.lastID > maxMessageID {
		c.lastID = 1
	}
	return c.lastID
}

// rootDSE reads the root DSE anonymously. readable is false when the server
// refused the search or hid supportedExtension; err is set only for a
// transport or protocol failure.
func (c *Client) rootDSE() (caps, auth []string, readable bool, err error) {
	entries, err := c.search("", ScopeBase, rootDSEAttrs)
	var re *ResultError
	if errors.As(err, &re) && re.Op == "search" {
		c.w.note("root DSE: " + re.Error())
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	var dse *Entry
	for _, e := range entries {
		if e.DN == "" {
			dse = e
		}
	}
	if dse == nil {
		return nil, nil, false, nil
	}
	limit := c.opts.LinesLimit()
	add := func(s string) {
		if len(caps) < limit {
			caps = append(caps, s)
		}
	}
	for _, v := range dse.Values("supportedLDAPVersion") {
		add("supportedLDAPVersion=" + v)
	}
	for _, v := range dse.Values("supportedExtension") {
		add("supportedExtension=" + v)
	}
	for _, v := range dse.Values("supportedSASLMechanisms") {
		add("supportedSASLMechanisms=" + strings.ToUpper(v))
		if len(auth) < limit {
			auth = append(auth, strings.ToUpper(v))
		}
	}
	if g := strings.TrimSpace(strings.Join(append(dse.Values("vendorName"), dse.Values("vendorVersion")...), " ")); g != "" && c.res.Greeting == "" {
		c.res.Greeting = g
	}
	readable = dse.has("supportedExtension")
	return caps, auth, readable, nil
}

// search runs a SearchRequest with the filter (objectClass=*) and returns
// the entries; a result other than success is a *ResultError. At most
// opts.LinesLimit() entries and references are accepted.
func (c *Client) search(base string, scope Scope, attrs []string) ([]*Entry, error) {
	id := c.nextID()
	op := encodeSearch(base, scope, attrs)
	if err := c.w.write(id, op, fmt.Sprintf("SearchRequest base=%q scope=%v filter=(objectClass=*) attrs=%s", base, scope, strings.Join(attrs, ","))); err != nil {
		return nil, err
	}
	var entries []*Entry
	for results := 0; ; {
		m, err := c.readFor(id)
		if err != nil {
			return nil, err
		}
		switch m.op.tag {
		case opSearchResultEntry, opSearchResultReference, opIntermediateResponse:
			// At most LinesLimit() of these: the limit is exact.
			if results++; results > c.opts.LinesLimit() {
				return nil, starttls.ProtocolError("ldap", "more than %d search results", c.opts.LinesLimit())
			}
			if m.op.tag != opSearchResultEntry {
				continue
			}
			e, err := parseEntry(&m.op)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		case opSearchResultDone:
			r, err := parseResult(&m.op)
			if err != nil {
				return nil, err
			}
			return entries, r.err("search")
		default:
			return nil, starttls.ProtocolError("ldap", "%s in answer to a SearchRequest", opName(m.op.tag))
		}
	}
}

// readFor reads the next message, which must answer message id. A Notice
// of Disconnection (RFC 4511 §4.4.1) is returned as a *ResultError.
func (c *Client) readFor(id int64) (*message, error) {
	m, err := c.readAny()
	if err != nil {
		return nil, err
	}
	if m.id != id {
		return nil, starttls.ProtocolError("ldap", "response to message #%d while waiting for #%d", m.id, id)
	}
	return m, nil
}

// readAny reads the next message; a Notice of Disconnection is returned
// as an error.
func (c *Client) readAny() (*message, error) {
	m, err := c.w.read()
	if err != nil {
		return nil, err
	}
	c.w.record(m, summarize(m))
	if m.id == 0 && m.op.tag == opExtendedResponse {
		r, err := parseResult(&m.op)
		if err != nil {
			return nil, err
		}
		if r.code == ResultSuccess {
			r.code = ResultOther
		}
		return nil, fmt.Errorf("ldap: the server ended the session: %w", r.err("notice of disconnection"))
	}
	return m, nil
}

// readResult reads the response to message id, which must be of type tag.
func (c *Client) readResult(id int64, tag byte) (*result, error) {
	m, err := c.readFor(id)
	if err != nil {
		return nil, err
	}
	if m.op.tag != tag {
		return nil, starttls.ProtocolError("ldap", "%s where a %s was expected", opName(m.op.tag), opName(tag))
	}
	return parseResult(&m.op)
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used for operations afterwards.
func (c *Client) NetConn() net.Conn { return c.w.netConn() }

// begin applies ctx to one operation.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login runs a simple bind (RFC 4511 §4.2, RFC 4513 §5.1.3) with username
// as the DN, for example "uid=alice,dc=example,dc=org". A result other than
// success is a *ResultError (invalidCredentials, confidentialityRequired…).
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send the password on a connection without TLS unless the mode is
// ModePlain. An empty password is refused too: it would be an
// unauthenticated bind (RFC 4513 §5.1.2), which servers accept without
// checking anything. The transcript shows the password as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if password == "" {
		return errorf("refusing an empty password: that is an unauthenticated bind (RFC 4513 §5.1.2)")
	}
	ctx, done := c.begin(ctx)
	defer done()
	return textline.CtxErr(ctx, c.bind(username, password))
}

func (c *Client) bind(dn, password string) error {
	id := c.nextID()
	if err := c.w.write(id, encodeSimpleBind(dn, password), fmt.Sprintf("BindRequest v3 dn=%q simple password=****", dn)); err != nil {
		return err
	}
	r, err := c.readResult(id, opBindResponse)
	if err != nil {
		return err
	}
	return r.err("bind")
}

// Search runs a search with the filter (objectClass=*) under base and
// returns the entries, at most opts.MaxLines of them (DefaultMaxLines).
// No attributes means all user attributes.
func (c *Client) Search(ctx context.Context, base string, scope Scope, attrs ...string) ([]*Entry, error) {
	ctx, done := c.begin(ctx)
	defer done()
	e, err := c.search(base, scope, attrs)
	return e, textline.CtxErr(ctx, err)
}

// WhoAmI asks for the authorization identity of the session (RFC 4532):
// "dn:uid=alice,…", or "" when anonymous.
func (c *Client) WhoAmI(ctx context.Context) (string, error) {
	ctx, done := c.begin(ctx)
	defer done()
	id := c.nextID()
	if err := c.w.write(id, encodeExtended(WhoAmIOID), "ExtendedRequest "+WhoAmIOID+" (Who am I?)"); err != nil {
		return "", textline.CtxErr(ctx, err)
	}
	r, err := c.readResult(id, opExtendedResponse)
	if err != nil {
		return "", textline.CtxErr(ctx, err)
	}
	if err := r.err("Who am I?"); err != nil {
		return "", err
	}
	return string(r.value), nil
}

// Close sends an UnbindRequest (RFC 4511 §4.3), which has no response, and
// closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(unbindTimeout))
	c.w.write(c.nextID(), tlv(opUnbindRequest), "UnbindRequest")
	if tc, ok := c.conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	return c.conn.Close()
}

// ProbePlaintextLogin asks, on conn without TLS, whether the server accepts
// a simple bind in plaintext, without sending a real credential. It reads
// the root DSE's namingContexts, binds as "cn=starttls-probe,CONTEXT", a DN
// that should not exist, with a dummy password, then unbinds. The DN must
// lie under a naming context: OpenLDAP answers invalidCredentials for any
// DN outside its databases before it checks the connection's security.
// confidentialityRequired (13) or strongerAuthRequired (8) mean no plaintext
// login (an empty list); invalidCredentials (49) or success mean the server
// checks simple-bind passwords sent in plaintext ([]string{"SIMPLE"}).
// Other answers, or invalidCredentials when no naming context is known, are
// an error. It does not close conn. It fits dial.PlaintextAuthFunc.
func ProbePlaintextLogin(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) ([]string, error) {
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
	}
	c := &Client{conn: conn, opts: &o, mode: starttls.ModePlain, res: &starttls.Result{Protocol: "ldap", Transcript: o.Transcript}}
	c.w = newWire(conn, MaxMessageSize, starttls.FromClient, o.Transcript)
	ctx, done := c.begin(ctx)
	defer done()
	dn := probeRDN
	entries, err := c.search("", ScopeBase, []string{"namingContexts"})
	var re *ResultError
	switch {
	case errors.As(err, &re) && re.Op == "search":
	case err != nil:
		return nil, textline.CtxErr(ctx, err)
	}
	for _, e := range entries {
		if nc := e.Values("namingContexts"); e.DN == "" && len(nc) > 0 && nc[0] != "" {
			dn = probeRDN + "," + nc[0]
		}
	}
	err = c.bind(dn, probePassword)
	c.w.write(c.nextID(), tlv(opUnbindRequest), "UnbindRequest")
	switch {
	case err == nil:
		return []string{"SIMPLE"}, nil
	case errors.As(err, &re):
		switch {
		case re.Code == ResultConfidentialityRequired, re.Code == ResultStrongerAuthRequired:
			return []string{}, nil
		case re.Code == ResultInvalidCredentials && dn != probeRDN:
			return []string{"SIMPLE"}, nil
		}
		return nil, errorf("plaintext-login probe: cannot tell from the answer to a simple bind as %q: %w", dn, err)
	}
	return nil, textline.CtxErr(ctx, err)
}

// The plaintext-login probe's bind: a DN that does not exist and a password
// that is nobody's.
const (
	probeRDN      = "cn=starttls-probe"
	probePassword = "starttls-probe-not-a-password"
)
