package strip

import (
	"fmt"
	"strings"
)

// Attack names, as given to --attack and written in reports.
const (
	StripCapability   = "strip-capability"
	RejectUpgrade     = "reject-upgrade"
	UntrustedCert     = "untrusted-cert"
	ResponseInjection = "response-injection"
	CommandInjection  = "command-injection"
	Downgrade         = "downgrade"
	Pass              = "pass"
	// All cycles through every attack and variant on successive
	// connections.
	All = "all"
)

// Variants of the attacks that have more than one form.
const (
	Temporary  = "temporary"   // reject-upgrade: 454 / -ERR [SYS/TEMP] / NO [UNAVAILABLE]
	Permanent  = "permanent"   // reject-upgrade: 554 / -ERR [SYS/PERM] / NO [CANNOT]
	SelfSigned = "self-signed" // untrusted-cert: a self-signed certificate for the right name
	WrongName  = "wrong-name"  // untrusted-cert: the --cert certificate, or one for another name
)

// Step is one attack in one form, applied to one connection.
type Step struct {
	Attack  string
	Variant string // "" when the attack has one form
}

func (s Step) String() string {
	if s.Variant == "" {
		return s.Attack
	}
	return s.Attack + "/" + s.Variant
}

// attacks lists every attack with its forms, in the order --attack all
// runs them.
var attacks = []struct {
	name     string
	variants []string
	about    string
}{
	{StripCapability, nil, "remove the upgrade from the capabilities"},
	{RejectUpgrade, []string{Temporary, Permanent}, "answer the upgrade command with an error"},
	{UntrustedCert, []string{SelfSigned, WrongName}, "complete the upgrade with a certificate the client must refuse"},
	{ResponseInjection, nil, "append forged replies to the go-ahead, in the same segment"},
	{CommandInjection, nil, "toward the server: pipeline a command after the client's upgrade command"},
	{Downgrade, nil, "offer only TLS 1.0/1.1 with obsolete suites"},
	{Pass, nil, "relay untouched (control)"},
}

// Attacks returns the attack names with a one-line description each.
func Attacks() [][2]string {
	out := make([][2]string, len(attacks))
	for i, a := range attacks {
		out[i] = [2]string{a.name, a.about}
	}
	return out
}

// Plan returns the steps that successive connections take, cycling:
// "all", an attack name (its forms in turn) or "attack/variant".
func Plan(name string) ([]Step, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	attack, variant, hasVariant := strings.Cut(name, "/")
	var steps []Step
	for _, a := range attacks {
		if attack != All && attack != a.name {
			continue
		}
		if len(a.variants) == 0 {
			if hasVariant {
				return nil, fmt.Errorf("strip: attack %q has no variants", a.name)
			}
			steps = append(steps, Step{Attack: a.name})
			continue
		}
		for _, v := range a.variants {
			if !hasVariant || v == variant {
				steps = append(steps, Step{Attack: a.name, Variant: v})
			}
		}
		if hasVariant && len(steps) == 0 {
			return nil, fmt.Errorf("strip: attack %q has no variant %q (have %s)", a.name, variant, strings.Join(a.variants, ", "))
		}
	}
	if len(steps) == 0 {
		names := make([]string, 0, len(attacks)+1)
		for _, a := range attacks {
			names = append(names, a.name)
		}
		return nil, fmt.Errorf("strip: unknown attack %q (known: %s, all)", name, strings.Join(names, ", "))
	}
	if attack == All && hasVariant {
		return nil, fmt.Errorf("strip: %q: all takes no variant", name)
	}
	return steps, nil
}
