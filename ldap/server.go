package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Backend authenticates the users of a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the bind
	// (the client sees invalidCredentials, never the error text). username
	// is the uid of a DN "uid=NAME,BaseDN", or the bind name itself when it
	// is not a DN.
	Login(ctx context.Context, username, password string) error
}

// DefaultBaseDN is the naming context of a Server without BaseDN.
const DefaultBaseDN = "dc=starttls,dc=test"

// Server is a small read-only LDAPv3 server (RFC 4511) with StartTLS
// (RFC 4511 §4.14, RFC 4513 §3), simple and SASL PLAIN bind, "Who am I?"
// (RFC 4532) and implicit TLS. Its directory holds the base entry and, for a
// bound user, the user's entry "uid=NAME,BaseDN". The zero value with a
// Backend serves plaintext and refuses every password bind; set TLSConfig
// to offer StartTLS. A Server must not be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users. nil refuses every bind but the
	// anonymous one.
	Backend Backend
	// BaseDN is the naming context; empty means DefaultBaseDN.
	BaseDN string
	// MaxRequestSize bounds one LDAPMessage read from a client; 0 means
	// DefaultMaxRequestSize (64 KiB). A larger message ends the session.
	MaxRequestSize int

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("ldap: panic serving connection", s.Log, nil)
}

func (s *Server) baseDN() string {
	if s.BaseDN == "" {
		return DefaultBaseDN
	}
	return s.BaseDN
}

func (s *Server) maxRequest() int {
	if s.MaxRequestSize <= 0 {
		return DefaultMaxRequestSize
	}
	return s.MaxRequestSize
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil after an UnbindRequest, else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext part of a session (root DSE, refusals)
// until the client sends StartTLS, then completes the TLS handshake and
// returns the *tls.Conn, with the LDAP dialog over TLS still to come.
// Requests pipelined after StartTLS always close the connection here,
// InsecureKeepPipelined or not. With Implicit the handshake is done at
// once. On error conn is closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	if s.TLSConfig == nil {
		conn.Close()
		return nil, errorf("Handshake: no TLSConfig")
	}
	ss := s.newSession(ctx, conn)
	ss.handshakeOnly = true
	err := ss.run()
	if ss.upgraded != nil {
		conn.SetDeadline(time.Time{})
		return ss.upgraded, nil
	}
	conn.Close()
	if err == nil {
		err = errorf("client ended the session before the upgrade")
	}
	return nil, err
}

// Close closes the listeners and all connections immediately.
func (s *Server) Close() error { return s.sessions.Close() }

// Shutdown closes the listeners and waits for the sessions to end until ctx
// is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.sessions.Shutdown(ctx) }

// Sentinels that end a session.
var (
	errUnbind     = errors.New("ldap: client unbound")
	errHandedOver = errors.New("ldap: connection handed over after StartTLS")
	errTooMany    = errors.New("ldap: too many errors")
)

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	raw           net.Conn
	w             *wire
	tls           bool
	user          string // the bound user, "" when anonymous
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn // the TLS connection just established
	tlsConn       *tls.Conn // the TLS connection in use, closed at the end
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	return &session{srv: s, ctx: ctx, raw: conn, w: newWire(conn, s.maxRequest(), starttls.FromServer, nil)}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("ldap: "+msg, "remote", ss.raw.RemoteAddr().String(), "err", err)
}

// deadline gives the next exchange CommandTimeout.
func (ss *session) deadline() {
	ss.raw.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) send(id int64, op []byte) error {
	return ss.w.writeRaw(encodeMessage(id, op))
}

// notice sends the Notice of Disconnection (RFC 4511 §4.4.1) before the
// server closes the session.
func (ss *session) notice(code ResultCode, msg string) {
	ss.send(0, encodeResult(opExtendedResponse, code, "", msg, berString(classContext|10, noticeOfDisconnectionOID)))
}

// bad answers a request with an error result and counts a protocol error;
// past the limit it closes the session.
func (ss *session) bad(id int64, tag byte, code ResultCode, msg string) error {
	ss.errors++
	if err := ss.send(id, encodeResult(tag, code, "", msg)); err != nil {
		return err
	}
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.notice(ResultUnwillingToPerform, "too many errors, closing")
		return errTooMany
	}
	return nil
}

// run serves the session until an UnbindRequest, an error, or the
// hand-over after StartTLS in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("ldap: panic serving connection", "remote", ss.raw.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.raw.SetDeadline(time.Now().Add(time.Second))
			ss.notice(ResultUnavailable, "internal server error, closing")
			err = errorf("panic: %v", v)
		}
	}()
	stop := context.AfterFunc(ss.ctx, func() { ss.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ss.serve()
	if ss.tlsConn != nil && !errors.Is(err, errHandedOver) {
		ss.tlsConn.Close()
	}
	switch {
	case errors.Is(err, errUnbind), errors.Is(err, errHandedOver):
		return nil
	case err != nil:
		ss.debug("session ended", err)
	}
	return err
}

func (ss *session) serve() error {
	ss.deadline()
	if ss.srv.Implicit {
		if ss.srv.TLSConfig == nil {
			return errorf("implicit TLS without TLSConfig")
		}
		if err := ss.handshake(); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		ss.w.upgrade(ss.upgraded)
		ss.upgraded = nil
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.notice(ResultUnavailable, "server shutting down")
			return err
		}
		ss.deadline()
		m, err := ss.w.read()
		ss.deadline()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				// The client speaks TLS: an LDAP notice would only confuse
				// its handshake.
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.notice(ResultProtocolError, "message too large, closing")
				return err
			case errors.Is(err, errBER):
				// RFC 4511 §4.1.1: a malformed message ends the session.
				ss.notice(ResultProtocolError, "malformed message, closing")
				return err
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.notice(ResultUnavailable, "idle timeout, closing")
				return err
			}
			return err
		}
		if err := ss.dispatch(m); err != nil {
			return err
		}
	}
}

// critical reports whether the message carries a critical control: none is
// supported (RFC 4511 §4.1.11).
func critical(m *message) bool {
	if m.controls == nil {
		return false
	}
	for _, c := range m.controls.kids {
		for _, k := range c.kids {
			if k.tag == tagBoolean && len(k.data) == 1 && k.data[0] != 0 {
				return true
			}
		}
	}
	return false
}

// responses maps the request ops that have a response to its tag.
var responses = map[byte]byte{
	opBindRequest: opBindResponse, opSearchRequest: opSearchResultDone,
	opModifyRequest: opModifyResponse, opAddRequest: opAddResponse, opDelRequest: opDelResponse,
	opModifyDNRequest: opModifyDNResponse, opCompareRequest: opCompareResponse,
	opExtendedRequest: opExtendedResponse,
}

// dispatch answers one request.
func (ss *session) dispatch(m *message) error {
	resp, hasResp := responses[m.op.tag]
	if m.id == 0 && m.op.tag != opUnbindRequest {
		ss.notice(ResultProtocolError, "messageID 0 is reserved for unsolicited notifications")
		return starttls.ProtocolError("ldap", "request with messageID 0")
	}
	if hasResp && critical(m) {
		return ss.bad(m.id, resp, ResultUnavailableCriticalExt, "critical control not supported")
	}
	switch m.op.tag {
	case opBindRequest:
		return ss.bind(m)
	case opUnbindRequest:
		return errUnbind
	case opSearchRequest:
		return ss.search(m)
	case opExtendedRequest:
		return ss.extended(m)
	case opAbandonRequest:
		return nil // every operation is already complete
	case opModifyRequest, opAddRequest, opDelRequest, opModifyDNRequest, opCompareRequest:
		return ss.send(m.id, encodeResult(resp, ResultUnwillingToPerform, "", "the directory is read-only"))
	}
	// RFC 4511 §4.1.1: a protocolOp that is not a request ends the session.
	ss.notice(ResultProtocolError, opName(m.op.tag)+" is not a request")
	return starttls.ProtocolError("ldap", "client sent %s", opName(m.op.tag))
}

// offersStartTLS reports whether the root DSE lists StartTLS now.
func (ss *session) offersStartTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

// loginAllowed reports whether a password bind is possible now.
func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

// extended answers an ExtendedRequest (RFC 4511 §4.12).
func (ss *session) extended(m *message) error {
	k := m.op.kids
	if len(k) < 1 || len(k) > 2 || k[0].tag != ctxPrimitive0 || (len(k) == 2 && k[1].tag != classContext|1) {
		return ss.bad(m.id, opExtendedResponse, ResultProtocolError, "malformed ExtendedRequest")
	}
	switch string(k[0].data) {
	case StartTLSOID:
		if len(k) == 2 {
			return ss.bad(m.id, opExtendedResponse, ResultProtocolError, "StartTLS takes no requestValue")
		}
		return ss.startTLS(m)
	case WhoAmIOID:
		id := ""
		if ss.user != "" {
			id = "dn:" + ss.userDN(ss.user)
		}
		return ss.send(m.id, encodeResult(opExtendedResponse, ResultSuccess, "", "", berString(classContext|11, id)))
	}
	// RFC 4511 §4.12: an unknown requestName is a protocolError.
	return ss.bad(m.id, opExtendedResponse, ResultProtocolError, "unsupported extended operation")
}

// startTLS answers the StartTLS request (RFC 4511 §4.14, RFC 4513 §3.1)
// and runs the handshake.
func (ss *session) startTLS(m *message) error {
	name := berString(classContext|10, StartTLSOID)
	switch {
	case ss.tls:
		return ss.bad(m.id, opExtendedResponse, ResultOperationsError, "TLS already established")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.bad(m.id, opExtendedResponse, ResultProtocolError, "StartTLS not supported")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.send(m.id, encodeResult(opExtendedResponse, ResultUnwillingToPerform, "", "TLS not available", name))
	case ss.srv.RefuseUpgrade:
		return ss.send(m.id, encodeResult(opExtendedResponse, ResultUnavailable, "", "TLS not available due to a temporary reason", name))
	}
	// Anything already received was sent after StartTLS in plaintext,
	// which RFC 4513 §3.1.1 forbids (CVE-2011-0411): never execute it
	// inside TLS.
	pipelined := ss.w.Buffered()
	if pipelined > 0 && (!ss.srv.InsecureKeepPipelined || ss.handshakeOnly) {
		ss.send(m.id, encodeResult(opExtendedResponse, ResultOperationsError, "", "requests sent after StartTLS before its response (RFC 4513 §3.1.1), closing", name))
		return errorf("%d bytes pipelined after StartTLS, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
	}
	if err := ss.send(m.id, encodeResult(opExtendedResponse, ResultSuccess, "", "", name)); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 {
		kept = ss.w.takeBuffered()
	}
	if err := ss.handshake(); err != nil {
		return err
	}
	if ss.handshakeOnly {
		return errHandedOver
	}
	tc := ss.upgraded
	ss.upgraded = nil
	if kept != nil {
		ss.w.reset(textline.KeepPlaintext(tc, kept))
	} else {
		ss.w.upgrade(tc)
	}
	return nil
}

// handshake runs the server TLS handshake; the session becomes anonymous.
func (ss *session) handshake() error {
	tc := tls.Server(ss.raw, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.user = ""
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// normDN lower-cases a DN and drops the spaces around its separators, which
// is enough to compare the DNs of this tiny directory.
func normDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		t, v, ok := strings.Cut(p, "=")
		if ok {
			p = strings.TrimSpace(t) + "=" + strings.TrimSpace(v)
		}
		parts[i] = strings.ToLower(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func (ss *session) userDN(user string) string { return "uid=" + user + "," + ss.srv.baseDN() }

// userFromDN returns the user named by a bind DN: "uid=NAME,BaseDN", or
// a bare name that is not a DN.
func (ss *session) userFromDN(dn string) (string, bool) {
	if dn != "" && !strings.Contains(dn, "=") {
		return dn, true
	}
	first, rest, ok := strings.Cut(dn, ",")
	if !ok || normDN(rest) != normDN(ss.srv.baseDN()) {
		return "", false
	}
	t, v, ok := strings.Cut(first, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(t), "uid") || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// bind answers a BindRequest (RFC 4511 §4.2) with simple (RFC 4513 §5.1)
// or SASL PLAIN (RFC 4616) authentication.
func (ss *session) bind(m *message) error {
	ss.user = "" // RFC 4511 §4.2.1: a bind starts anonymous
	k := m.op.kids
	if len(k) != 3 || k[0].tag != tagInteger || k[1].tag != tagOctetString {
		return ss.bad(m.id, opBindResponse, ResultProtocolError, "malformed BindRequest")
	}
	if v, err := intValue(&k[0]); err != nil || v != 3 {
		return ss.bad(m.id, opBindResponse, ResultProtocolError, "only LDAPv3 is supported")
	}
	dn := string(k[1].data)
	var user, pass string
	switch k[2].tag {
	case ctxPrimitive0: // simple
		pass = string(k[2].data)
		if pass == "" {
			if dn == "" {
				// RFC 4513 §5.1.1: the anonymous bind.
				return ss.send(m.id, encodeResult(opBindResponse, ResultSuccess, "", ""))
			}
			// RFC 4513 §5.1.2: unauthenticated binds are refused.
			return ss.bad(m.id, opBindResponse, ResultUnwillingToPerform, "unauthenticated bind (DN with no password) disallowed")
		}
		if !ss.loginAllowed() {
			return ss.bad(m.id, opBindResponse, ResultConfidentialityRequired, "TLS confidentiality required: use StartTLS first")
		}
		var ok bool
		if user, ok = ss.userFromDN(dn); !ok {
			return ss.bad(m.id, opBindResponse, ResultInvalidCredentials, "invalid credentials")
		}
	case classContext | constructed | 3: // sasl
		s := k[2].kids
		if len(s) < 1 || len(s) > 2 || s[0].tag != tagOctetString || (len(s) == 2 && s[1].tag != tagOctetString) {
			return ss.bad(m.id, opBindResponse, ResultProtocolError, "malformed SaslCredentials")
		}
		if !strings.EqualFold(string(s[0].data), "PLAIN") {
			return ss.bad(m.id, opBindResponse, ResultAuthMethodNotSupported, "SASL mechanism not supported")
		}
		if !ss.loginAllowed() {
			return ss.bad(m.id, opBindResponse, ResultConfidentialityRequired, "TLS confidentiality required: use StartTLS first")
		}
		if len(s) != 2 {
			return ss.bad(m.id, opBindResponse, ResultInvalidCredentials, "PLAIN needs credentials")
		}
		parts := strings.Split(string(s[1].data), "\x00")
		if len(parts) != 3 || parts[1] == "" || (parts[0] != "" && parts[0] != parts[1] && parts[0] != "u:"+parts[1]) {
			return ss.bad(m.id, opBindResponse, ResultInvalidCredentials, "invalid credentials")
		}
		user, pass = parts[1], parts[2]
		if u, ok := ss.userFromDN(user); ok {
			user = u
		}
	default:
		return ss.bad(m.id, opBindResponse, ResultAuthMethodNotSupported, "authentication method not supported")
	}
	if pass != "" {
		mech := "simple bind"
		if k[2].tag != ctxPrimitive0 {
			mech = "SASL PLAIN bind"
		}
		ss.srv.SawCredentials(mech, user, pass, ss.tls)
	}
	if ss.srv.Backend == nil {
		return ss.bad(m.id, opBindResponse, ResultInvalidCredentials, "invalid credentials")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug(fmt.Sprintf("bind failed for %q", user), err)
		return ss.bad(m.id, opBindResponse, ResultInvalidCredentials, "invalid credentials")
	}
	ss.user = user
	return ss.send(m.id, encodeResult(opBindResponse, ResultSuccess, "", ""))
}

// rootDSE is the root DSE as this session sees it (RFC 4512 §5.1).
func (ss *session) rootDSE() *Entry {
	ext := []string{WhoAmIOID}
	if ss.offersStartTLS() {
		ext = append([]string{StartTLSOID}, ext...)
	}
	e := &Entry{Attributes: []Attribute{
		{"objectClass", []string{"top"}},
		{"namingContexts", []string{ss.srv.baseDN()}},
		{"supportedLDAPVersion", []string{"3"}},
		{"supportedExtension", ext},
		{"vendorName", []string{"starttls"}},
		{"vendorVersion", []string{ss.srv.Name()}},
	}}
	if ss.loginAllowed() {
		e.Attributes = append(e.Attributes, Attribute{"supportedSASLMechanisms", []string{"PLAIN"}})
	}
	return e
}

// entries returns the directory as this session sees it: the base entry,
// and the bound user's own entry.
func (ss *session) entries() []*Entry {
	base := ss.srv.baseDN()
	rdn, _, _ := strings.Cut(base, ",")
	t, v, _ := strings.Cut(rdn, "=")
	es := []*Entry{{DN: base, Attributes: []Attribute{
		{"objectClass", []string{"top", "dcObject", "organization"}},
		{strings.TrimSpace(t), []string{strings.TrimSpace(v)}},
		{"o", []string{"starttls"}},
	}}}
	if ss.user != "" {
		es = append(es, &Entry{DN: ss.userDN(ss.user), Attributes: []Attribute{
			{"objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
			{"uid", []string{ss.user}},
			{"cn", []string{ss.user}},
			{"sn", []string{ss.user}},
			{"mail", []string{ss.user + "@" + ss.srv.Name()}},
		}})
	}
	return es
}

// search answers a SearchRequest (RFC 4511 §4.5).
func (ss *session) search(m *message) error {
	k := m.op.kids
	if len(k) != 8 || k[0].tag != tagOctetString || k[1].tag != tagEnumerated || k[2].tag != tagEnumerated ||
		k[3].tag != tagInteger || k[4].tag != tagInteger || k[5].tag != tagBoolean || k[7].tag != tagSequence {
		return ss.bad(m.id, opSearchResultDone, ResultProtocolError, "malformed SearchRequest")
	}
	scope, err := intValue(&k[1])
	if err != nil || scope < 0 || scope > 2 {
		return ss.bad(m.id, opSearchResultDone, ResultProtocolError, "invalid scope")
	}
	typesOnly := len(k[5].data) == 1 && k[5].data[0] != 0
	var attrs []string
	for _, a := range k[7].kids {
		if a.tag != tagOctetString {
			return ss.bad(m.id, opSearchResultDone, ResultProtocolError, "malformed attribute list")
		}
		attrs = append(attrs, string(a.data))
	}
	base := normDN(string(k[0].data))
	var found []*Entry
	if base == "" {
		if Scope(scope) == ScopeBase {
			found = []*Entry{ss.rootDSE()}
		}
	} else {
		exists := false
		for _, e := range ss.entries() {
			dn := normDN(e.DN)
			exists = exists || dn == base
			var in bool
			switch Scope(scope) {
			case ScopeBase:
				in = dn == base
			case ScopeOne:
				_, parent, _ := strings.Cut(dn, ",")
				in = parent == base
			case ScopeSub:
				in = dn == base || strings.HasSuffix(dn, ","+base)
			}
			if in {
				found = append(found, e)
			}
		}
		if !exists {
			matched := ""
			if strings.HasSuffix(base, ","+normDN(ss.srv.baseDN())) {
				matched = ss.srv.baseDN()
			}
			return ss.send(m.id, encodeResult(opSearchResultDone, ResultNoSuchObject, matched, "no such object"))
		}
	}
	for _, e := range found {
		if !matchFilter(&k[6], e, 0) {
			continue
		}
		if err := ss.send(m.id, encodeEntry(selectAttrs(e, attrs, typesOnly))); err != nil {
			return err
		}
	}
	return ss.send(m.id, encodeResult(opSearchResultDone, ResultSuccess, "", ""))
}

// selectAttrs keeps the attributes asked for (RFC 4511 §4.5.1.8): none
// listed, "*" or "+" mean all, "1.1" none.
func selectAttrs(e *Entry, attrs []string, typesOnly bool) *Entry {
	all := len(attrs) == 0
	for _, a := range attrs {
		all = all || a == "*" || a == "+"
	}
	out := &Entry{DN: e.DN}
	for _, a := range e.Attributes {
		want := all
		for _, w := range attrs {
			want = want || strings.EqualFold(w, a.Type)
		}
		if !want {
			continue
		}
		if typesOnly {
			a.Values = nil
		}
		out.Attributes = append(out.Attributes, a)
	}
	return out
}

// matchFilter evaluates a Filter (RFC 4511 §4.5.1.7) against e: and, or,
// not, equalityMatch, substrings and present; anything else is Undefined,
// which does not match.
func matchFilter(f *element, e *Entry, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch f.tag {
	case ctxConstructed0: // and
		for i := range f.kids {
			if !matchFilter(&f.kids[i], e, depth+1) {
				return false
			}
		}
		return true
	case classContext | constructed | 1: // or
		for i := range f.kids {
			if matchFilter(&f.kids[i], e, depth+1) {
				return true
			}
		}
		return false
	case classContext | constructed | 2: // not
		return len(f.kids) == 1 && !matchFilter(&f.kids[0], e, depth+1)
	case classContext | 7: // present
		return strings.EqualFold(string(f.data), "objectClass") || e.Values(string(f.data)) != nil
	case classContext | constructed | 3: // equalityMatch
		if len(f.kids) != 2 {
			return false
		}
		for _, v := range e.Values(string(f.kids[0].data)) {
			if strings.EqualFold(v, string(f.kids[1].data)) {
				return true
			}
		}
	case classContext | constructed | 4: // substrings
		if len(f.kids) != 2 {
			return false
		}
		for _, v := range e.Values(string(f.kids[0].data)) {
			if matchSubstrings(strings.ToLower(v), f.kids[1].kids) {
				return true
			}
		}
	}
	return false
}

func matchSubstrings(v string, subs []element) bool {
	for i, s := range subs {
		p := strings.ToLower(string(s.data))
		switch s.tag {
		case ctxPrimitive0: // initial
			if i != 0 || !strings.HasPrefix(v, p) {
				return false
			}
			v = v[len(p):]
		case classContext | 1: // any
			j := strings.Index(v, p)
			if j < 0 {
				return false
			}
			v = v[j+len(p):]
		case classContext | 2: // final
			if i != len(subs)-1 || !strings.HasSuffix(v, p) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
