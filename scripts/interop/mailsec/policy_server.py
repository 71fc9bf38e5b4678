#!/usr/bin/python3
"""MTA-STS policy server of the mailsec interop module.

Serves https://mta-sts.DOMAIN/.well-known/mta-sts.txt for the test domains
on one loopback port, with a behaviour per Host header read from a sites
file (lines "HOST<TAB>ACTION<TAB>ARG", # comments):

  policy    FILE   200, text/plain, the policy in FILE
  html      FILE   200, text/html (wrong media type), the policy in FILE
  redirect  URL    301 to URL
  large     BYTES  200, text/plain, a syntactically valid policy padded
                   with mx lines to more than BYTES bytes

One certificate for every name (no SNI switching): a host left out of the
certificate is how a "policy host certificate invalid" case is made.
Python standard library only; every connection has a timeout.
"""
import argparse
import http.server
import os
import ssl
import sys

POLICY_PATH = "/.well-known/mta-sts.txt"


def load_sites(path, policies):
    sites = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                sys.exit(f"{path}:{n}: want HOST<TAB>ACTION<TAB>ARG")
            host, action, arg = (p.strip() for p in parts)
            if action in ("policy", "html"):
                with open(os.path.join(policies, arg), "rb") as pf:
                    body = pf.read()
                ctype = "text/plain" if action == "policy" else "text/html"
                sites[host.lower()] = (200, ctype, body, None)
            elif action == "redirect":
                sites[host.lower()] = (301, "text/plain", b"moved\n", arg)
            elif action == "large":
                sites[host.lower()] = (200, "text/plain", large_policy(int(arg)), None)
            else:
                sys.exit(f"{path}:{n}: unknown action {action!r}")
    return sites


def large_policy(minimum):
    """A valid enforce policy for mx.interop.test of more than minimum bytes."""
    lines = [b"version: STSv1", b"mode: enforce", b"mx: mx.interop.test", b"max_age: 86400"]
    size = sum(len(x) + 2 for x in lines)
    i = 0
    while size <= minimum:
        extra = b"mx: mx%05d.padding.interop.test" % i
        lines.append(extra)
        size += len(extra) + 2
        i += 1
    return b"\r\n".join(lines) + b"\r\n"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "mailsec-policy-server"
    sys_version = ""
    timeout = 10  # seconds, per connection (socket timeout)

    def do_GET(self):
        host = (self.headers.get("Host") or "").lower()
        if host.startswith("["):
            host = host.split("]")[0] + "]"
        else:
            host = host.rsplit(":", 1)[0] if ":" in host else host
        site = self.server.sites.get(host)
        if site is None or self.path != POLICY_PATH:
            self.reply(404, "text/plain", b"not found\n", None)
            return
        self.reply(*site)

    def reply(self, status, ctype, body, location):
        self.send_response(status)
        self.send_header("Content-Type", ctype + "; charset=utf-8" if ctype == "text/html" else ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--sites", required=True)
    p.add_argument("--policies", required=True)
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    srv = http.server.ThreadingHTTPServer((a.listen, a.port), Handler)
    srv.daemon_threads = True
    srv.sites = load_sites(a.sites, a.policies)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write(f"serving {len(srv.sites)} policy hosts on https://{a.listen}:{a.port}\n")
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
