package xmpp

import (
	"slices"
	"strings"
)

// features is what <stream:features> (RFC 6120 §4.3.2) announces.
type features struct {
	Names    []string // the feature element names, in order
	Mechs    []string // SASL mechanisms (RFC 6120 §6.4.1)
	StartTLS bool     // <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
	Required bool     // <starttls> holds <required/>
	Bind     bool     // resource binding (RFC 6120 §7.2)
	IQAuth   bool     // XEP-0078 non-SASL authentication (sends passwords)
}

// maxMechs bounds the SASL mechanisms kept.
const maxMechs = 64

// parseFeatures reads a <stream:features> element.
func parseFeatures(e *element) features {
	var f features
	for _, c := range e.Children {
		if len(f.Names) < maxMechs && !slices.Contains(f.Names, c.Name.Local) {
			f.Names = append(f.Names, c.Name.Local)
		}
		switch {
		case c.is(NSTLS, "starttls"):
			f.StartTLS = true
			f.Required = c.child(NSTLS, "required") != nil
		case c.is(NSSASL, "mechanisms"):
			for _, m := range c.Children {
				if !m.is(NSSASL, "mechanism") {
					continue
				}
				name := strings.ToUpper(strings.TrimSpace(m.Text))
				if name != "" && len(name) <= 40 && len(f.Mechs) < maxMechs && !slices.Contains(f.Mechs, name) {
					f.Mechs = append(f.Mechs, name)
				}
			}
		case c.is(NSBind, "bind"):
			f.Bind = true
		case c.is(NSIQAuthFeat, "auth"):
			f.IQAuth = true
		}
	}
	return f
}

// auth returns the login methods: the SASL mechanisms, plus "iq-auth" for
// XEP-0078.
func (f features) auth() []string {
	a := append([]string(nil), f.Mechs...)
	if f.IQAuth {
		a = append(a, "iq-auth")
	}
	return a
}

// summary renders a stream header for Result.Greeting: the element and the
// attributes that say who answers (from, id, version).
func summary(e *element) string {
	var b strings.Builder
	b.WriteString("<stream:stream")
	for _, name := range []string{"from", "id", "version"} {
		if v := e.attr(name); v != "" {
			b.WriteString(" " + name + "='" + esc(clip(v, 100)) + "'")
		}
	}
	b.WriteString(">")
	return b.String()
}
