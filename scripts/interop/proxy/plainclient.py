#!/usr/bin/env python3
"""A legacy plaintext client for the interop module "proxy": Python's
smtplib and imaplib with no TLS at all, or a raw socket that reads what the
server says first, the way `nc` would. It talks to the client side of
`starttls proxy`, which must secure the upstream leg itself.

    plainclient.py smtp HOST PORT --send-to ADDR --token T
    plainclient.py imap HOST PORT --user U --password P [--find-token T]
    plainclient.py first-line HOST PORT

Prints one JSON object on stdout. Exit status: 0 success, 1 any error (the
JSON object then has "error", "error_type" and, for a protocol error reply,
"code").
"""

import argparse
import imaplib
import json
import smtplib
import socket
import sys

TIMEOUT = 20


def run_smtp(a, out):
    s = smtplib.SMTP(a.host, a.port, local_hostname="legacy-client.interop.test", timeout=TIMEOUT)
    try:
        code, _ = s.ehlo()
        out["ehlo_code"] = code
        out["caps"] = sorted(s.esmtp_features)
        msg = (f"From: {a.send_to}\r\nTo: {a.send_to}\r\nSubject: interop {a.token}\r\n"
               f"Message-ID: <{a.token}@interop.test>\r\n\r\n"
               f"Sent in plaintext by Python smtplib to starttls proxy. token={a.token}\r\n")
        refused = s.sendmail(a.send_to, [a.send_to], msg)
        out["sent"] = not refused
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def run_imap(a, out):
    m = imaplib.IMAP4(a.host, a.port, timeout=TIMEOUT)
    try:
        out["caps"] = sorted(m.capabilities)
        m.login(a.user, a.password)
        out["logged_in"] = True
        typ, data = m.select("INBOX", readonly=True)
        if typ != "OK":
            raise RuntimeError(f"SELECT INBOX: {typ} {data}")
        out["count"] = int(data[0])
        if a.find_token:
            typ, data = m.fetch("1:*", "(BODY.PEEK[])")
            if typ != "OK":
                raise RuntimeError(f"FETCH: {typ} {data}")
            out["found_token"] = any(isinstance(d, tuple) and a.find_token.encode() in d[1] for d in data)
        m.close()
    finally:
        try:
            m.logout()
        except Exception:
            pass


def run_first_line(a, out):
    """Reads the first line, then whatever follows until the server closes
    (at most 64 KiB, at most TIMEOUT seconds)."""
    with socket.create_connection((a.host, a.port), timeout=TIMEOUT) as s:
        buf = b""
        closed = False
        while len(buf) < 65536:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            buf += chunk
        first, _, rest = buf.partition(b"\n")
        out["first_line"] = first.decode(errors="replace").rstrip("\r")
        out["rest"] = rest.decode(errors="replace")
        out["closed"] = closed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["smtp", "imap", "first-line"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--send-to")
    ap.add_argument("--token", default="none")
    ap.add_argument("--find-token")
    a = ap.parse_args()
    out = {"client": f"python {sys.version.split()[0]} {a.mode} (no TLS)"}
    try:
        {"smtp": run_smtp, "imap": run_imap, "first-line": run_first_line}[a.mode](a, out)
    except Exception as e:  # noqa: BLE001 - report every failure as JSON
        out.update(error=str(e), error_type=type(e).__name__)
        code = getattr(e, "smtp_code", None)
        if code is not None:
            out["code"] = code
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
