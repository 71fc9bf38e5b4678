// Command starttls upgrades, audits, proxies and attacks STARTTLS and
// implicit TLS for mail and other plaintext protocols. See the README.
package main

import (
	"os"

	"github.com/starttls/starttls/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
