// Command proxyload is the load tool of scripts/bench-proxy.sh: it puts the
// same TLS workload through `starttls proxy --protocol tcp --implicit`,
// stunnel and HAProxy and measures them from the outside.
//
//	proxyload sink --listen 127.0.0.1:0          the plaintext backend (prints its address)
//	proxyload freeport                           a free loopback port, for a proxy's listener
//	proxyload bench --name N --addr A --backend B --cert LEAF.pem --pid PID
//	                                             one proxy: every measurement, as JSON on stdout
//	proxyload table --out FILE.md R1.json R2.json …
//	                                             one table: absolute numbers and ratios of the
//	                                             first result to each of the others
//
// The backend ("sink") speaks a tiny protocol of its own: the first byte of
// a connection chooses what it does (see sink.go), so that one server is the
// echo for latency, the source for downloads and the drain for uploads.
//
// The client side pins the proxy's leaf certificate (compared byte for
// byte) after verifying it once against the CA with its name, offers TLS
// 1.3 only and X25519 only, and never resumes a session: every handshake is
// a full one, and every proxy negotiates the same thing.
//
// Every loop is bounded in count and in time; every read has a deadline.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: proxyload sink|freeport|bench|table [flags]
  sink      --listen ADDR                    run the plaintext backend; prints "listening ADDR"
  freeport                                   print a free 127.0.0.1 port
  bench     --name N --addr A --backend B --cert LEAF.pem [--ca CA.pem] [--pid PID] …
  table     [--out FILE.md] RESULT.json…     the comparison table (first result vs the others)
run "proxyload CMD -h" for a command's flags`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "sink":
		err = sinkCmd(args[1:], stdout, stderr)
	case "freeport":
		err = freeportCmd(stdout)
	case "bench":
		err = benchCmd(args[1:], stdout, stderr)
	case "table":
		err = tableCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "proxyload: unknown command %q\n%s\n", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "proxyload %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
