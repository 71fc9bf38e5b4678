#!/usr/bin/env python3
"""A mail application written the two ways Python programs secure a session,
for the `starttls strip` ground truth (interop/strip_test.go):

  --tls if-offered  call starttls()/stls() only when the server advertises it
                    (the common "opportunistic" idiom: has_extn("starttls"),
                    "STARTTLS" in capabilities, "STLS" in capa());
  --tls always      call starttls()/stls() unconditionally (the library
                    raises when the server does not offer it or refuses it).

Both use ssl.create_default_context(cafile=--ca): the certificate chain and
the host name are verified. After the upgrade (or without it) the program
logs in with --user/--password (SMTP: where AUTH is offered) and does one
thing a mail client does (SMTP: send a message to --rcpt; IMAP: SELECT
INBOX; POP3: STAT).

    pymail.py {smtp,imap,pop3} HOST PORT --ca FILE --tls MODE
              --user U --password P [--rcpt ADDR]

Prints one JSON object: offered (the upgrade was advertised), tls (the
session was upgraded), logged_in, done, error, error_type. Exit status 0
when the whole dialog succeeded, 1 otherwise.
"""

import argparse
import imaplib
import json
import poplib
import smtplib
import ssl
import sys

TIMEOUT = 20


def run_smtp(a, ctx, out):
    s = smtplib.SMTP(a.host, a.port, local_hostname="client.interop.test", timeout=TIMEOUT)
    try:
        s.ehlo()
        out["offered"] = s.has_extn("starttls")
        if a.tls == "always" or out["offered"]:
            s.starttls(context=ctx)
            out["tls"] = True
            s.ehlo()
        # The usual idiom: log in where the server offers AUTH, send anyway
        # (a relay that needs no login).
        if s.has_extn("auth"):
            s.login(a.user, a.password)
            out["logged_in"] = True
        rcpt = a.rcpt or a.user
        msg = (f"From: <{rcpt}>\r\nTo: <{rcpt}>\r\nSubject: strip interop\r\n\r\n"
               "Sent by Python smtplib through starttls strip.\r\n")
        out["done"] = not s.sendmail(rcpt, [rcpt], msg)
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def run_imap(a, ctx, out):
    m = imaplib.IMAP4(a.host, a.port, timeout=TIMEOUT)
    try:
        out["offered"] = "STARTTLS" in m.capabilities
        if a.tls == "always" or out["offered"]:
            m.starttls(ssl_context=ctx)
            out["tls"] = True
        m.login(a.user, a.password)
        out["logged_in"] = True
        typ, _ = m.select("INBOX", readonly=True)
        out["done"] = typ == "OK"
    finally:
        try:
            m.logout()
        except Exception:
            m.shutdown()


def run_pop3(a, ctx, out):
    p = poplib.POP3(a.host, a.port, timeout=TIMEOUT)
    try:
        try:
            caps = p.capa()
        except poplib.error_proto:
            caps = {}
        out["offered"] = "STLS" in caps
        if a.tls == "always" or out["offered"]:
            p.stls(context=ctx)
            out["tls"] = True
        p.user(a.user)
        p.pass_(a.password)
        out["logged_in"] = True
        p.stat()
        out["done"] = True
    finally:
        try:
            p.quit()
        except Exception:
            p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scheme", choices=["smtp", "imap", "pop3"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--tls", required=True, choices=["if-offered", "always"])
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rcpt")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    out = {"offered": False, "tls": False, "logged_in": False, "done": False}
    code = 0
    try:
        {"smtp": run_smtp, "imap": run_imap, "pop3": run_pop3}[a.scheme](a, ctx, out)
        if not out["done"]:
            code = 1
    except Exception as e:  # the program's outcome is the data: report it
        out["error"] = str(e)
        out["error_type"] = type(e).__name__
        code = 1
    json.dump(out, sys.stdout)
    print()
    sys.exit(code)


if __name__ == "__main__":
    main()
