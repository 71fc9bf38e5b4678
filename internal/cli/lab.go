package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/starttls/starttls/lab"
)

func runLab(e *env, args []string) int {
	fs := flagSet("lab", e, "lab [--json] [--listen ADDR] [--port-base N] [--dir DIR]")
	asJSON := fs.Bool("json", false, "print one JSON object (ca, user, password, endpoints) once every endpoint listens")
	listen := fs.String("listen", "127.0.0.1", "loopback `address` to listen on")
	portBase := fs.Int("port-base", 0, "give the endpoints consecutive ports from this `port` (0: free ports)")
	dir := fs.String("dir", "", "`directory` for the CA certificate (default: a temporary one, removed at exit)")
	pos, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "starttls lab: unexpected argument %q\n", pos[0])
		return exitCantRun
	}
	if *portBase < 0 || *portBase > 65535 {
		fmt.Fprintln(e.stderr, "starttls lab: --port-base out of range")
		return exitCantRun
	}
	l, err := lab.Start(&lab.Options{Listen: *listen, PortBase: *portBase, Dir: *dir})
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls lab:", err)
		return exitCantRun
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if *asJSON {
		out := struct {
			CA        string         `json:"ca"`
			User      string         `json:"user"`
			Password  string         `json:"password"`
			Endpoints []lab.Endpoint `json:"endpoints"`
		}{l.CAFile, l.User, l.Password, l.Endpoints}
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			l.Close()
			return exitCantRun
		}
	} else {
		fmt.Fprintf(e.stdout, "starttls lab: %d endpoints on %s (Ctrl-C to stop)\n", len(l.Endpoints), *listen)
		fmt.Fprintf(e.stdout, "CA certificate: %s   (pass it as --ca)\n", l.CAFile)
		fmt.Fprintf(e.stdout, "login: %s / %s\n\n", l.User, l.Password)
		for _, ep := range l.Endpoints {
			fmt.Fprintf(e.stdout, "  %-28s %-30s %s\n", ep.Name, ep.URL, ep.About)
		}
		fmt.Fprintf(e.stdout, "\ntry: starttls check --ca %s %s\n", l.CAFile, l.Endpoints[0].URL)
	}
	l.Wait(ctx)
	return exitOK
}
