package textline

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/starttls/starttls"
)

// Dial is the common part of every protocol package's Dial: it copies opts
// (a caller's options are never modified), defaults the certificate name to
// the host part of addr, and connects within ctx (or the default timeout).
// On failure it returns a partial Result for the report, as Upgrade does.
func Dial(ctx context.Context, proto, addr string, opts *starttls.ClientOptions) (net.Conn, *starttls.ClientOptions, *starttls.Result, error) {
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
	}
	host, portStr, err := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	res := &starttls.Result{Protocol: proto, Mode: o.Mode.Resolve(port), Transcript: o.Transcript}
	if err != nil {
		return nil, nil, res, fmt.Errorf("%s: dial: %w", proto, err)
	}
	if o.ServerName == "" && (o.TLSConfig == nil || o.TLSConfig.ServerName == "") {
		o.ServerName = host
	}
	dctx, cancel := WithDefaultTimeout(ctx)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, res, fmt.Errorf("%s: dial: %w", proto, err)
	}
	return conn, &o, res, nil
}
