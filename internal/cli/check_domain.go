package cli

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/starttls/starttls/resolver"
)

// domainFlags are the flags of `starttls check DOMAIN`.
type domainFlags struct {
	resolverAddr string
	smtpPort     int
	mtaSTSPort   int
}

func (d *domainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.resolverAddr, "resolver", "", "mail domains: send every DNS lookup to this validating resolver `HOST:PORT` (default: the first nameserver of /etc/resolv.conf); its AD bit is trusted for DNSSEC, so use one on loopback")
	fs.IntVar(&d.smtpPort, "smtp-port", 0, "mail domains: check the MX hosts on this `port` (default 25); TLSA is looked up at _PORT._tcp and _25._tcp")
	fs.IntVar(&d.mtaSTSPort, "mta-sts-port", 0, "mail domains: HTTPS `port` of the MTA-STS policy host (default 443; for test labs)")
}

// validate checks the flags for a domain target; the URL-only flags are
// refused rather than silently ignored.
func (d *domainFlags) validate(cf *clientFlags, trace bool) error {
	if cf.mode != "" || cf.serverName != "" {
		return errors.New("--mode and --server-name apply to URLs, not to a mail domain (its MX hosts are checked with STARTTLS required and their own names)")
	}
	if trace {
		return errors.New("--trace applies to URLs, not to a mail domain (its MX hosts are checked concurrently); check smtp://MX instead")
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--smtp-port", d.smtpPort}, {"--mta-sts-port", d.mtaSTSPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%s %d: not a port", p.name, p.v)
		}
	}
	if d.resolverAddr != "" {
		host, port, err := net.SplitHostPort(d.resolverAddr)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--resolver %q: want HOST:PORT, e.g. 127.0.0.1:53", d.resolverAddr)
		}
	}
	return nil
}

func (d *domainFlags) resolver() *resolver.Resolver {
	return &resolver.Resolver{Addr: d.resolverAddr}
}

// isDomainArg: an argument without a scheme is a mail domain.
func isDomainArg(s string) bool { return !strings.Contains(s, "://") }
