#!/usr/bin/env python3
"""A real-world client for the interop suite: Python's smtplib, imaplib and
poplib, securing the connection the way applications do (STARTTLS / STLS or
implicit TLS, certificate and host name verified against --ca), then logging
in and doing one thing a mail client does.

    pyclient.py SCHEME HOST PORT --ca FILE [--user U --password P]
                [--send-to ADDR --token T] [--find-token T]

SCHEME is smtp, submission, smtps, lmtp, imap, imaps, pop3 or pop3s.
Prints one JSON object on stdout. Exit status: 0 success, 2 the TLS
handshake or certificate verification failed, 1 any other error (the JSON
object then has "error" and "error_type").
"""

import argparse
import imaplib
import json
import poplib
import smtplib
import ssl
import sys

TIMEOUT = 20


def tls_info(sock):
    return {
        "tls_version": sock.version(),
        "cipher": sock.cipher()[0],
        "peer_subject": dict(x[0] for x in sock.getpeercert().get("subject", ())),
    }


def message(sender, to, token):
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: interop {token}\r\n"
        f"Message-ID: <{token}@interop.test>\r\n\r\n"
        f"Sent by Python smtplib over TLS. token={token}\r\n"
    )


def run_smtp(a, ctx, out):
    implicit = a.scheme == "smtps"
    if implicit:
        s = smtplib.SMTP_SSL(a.host, a.port, local_hostname="client.interop.test",
                             context=ctx, timeout=TIMEOUT)
    elif a.scheme == "lmtp":
        s = smtplib.LMTP(a.host, a.port, local_hostname="client.interop.test", timeout=TIMEOUT)
    else:
        s = smtplib.SMTP(a.host, a.port, local_hostname="client.interop.test", timeout=TIMEOUT)
    try:
        s.ehlo()
        if not implicit:
            out["caps_before"] = sorted(s.esmtp_features)
            out["offered"] = s.has_extn("starttls")
            s.starttls(context=ctx)  # raises SMTPNotSupportedError if not offered
            s.ehlo()
        out["caps_after"] = sorted(s.esmtp_features)
        out.update(tls_info(s.sock))
        if a.user:
            s.login(a.user, a.password)
            out["logged_in"] = True
        if a.send_to:
            sender = a.send_from or a.send_to
            refused = s.sendmail(sender, [a.send_to], message(sender, a.send_to, a.token))
            out["sent"] = not refused
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def run_imap(a, ctx, out):
    if a.scheme == "imaps":
        m = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=ctx, timeout=TIMEOUT)
    else:
        m = imaplib.IMAP4(a.host, a.port, timeout=TIMEOUT)
        out["caps_before"] = sorted(m.capabilities)
        out["offered"] = "STARTTLS" in m.capabilities
        m.starttls(ssl_context=ctx)  # re-reads CAPABILITY over TLS
    try:
        out["caps_after"] = sorted(m.capabilities)
        out.update(tls_info(m.sock))
        if a.user:
            m.login(a.user, a.password)
            out["logged_in"] = True
            typ, data = m.list()
            if typ != "OK":
                raise RuntimeError(f"LIST: {typ} {data}")
            out["mailboxes"] = [d.decode(errors="replace").rsplit(" ", 1)[-1].strip('"')
                                for d in data if d]
            typ, data = m.select("INBOX", readonly=True)
            if typ != "OK":
                raise RuntimeError(f"SELECT INBOX: {typ} {data}")
            out["count"] = int(data[0])
            if a.find_token:
                typ, data = m.fetch("1:*", "(BODY.PEEK[])")
                if typ != "OK":
                    raise RuntimeError(f"FETCH: {typ} {data}")
                out["found_token"] = any(isinstance(d, tuple) and a.find_token.encode() in d[1]
                                         for d in data)
            m.close()
    finally:
        m.logout()


def run_pop3(a, ctx, out):
    if a.scheme == "pop3s":
        p = poplib.POP3_SSL(a.host, a.port, context=ctx, timeout=TIMEOUT)
    else:
        p = poplib.POP3(a.host, a.port, timeout=TIMEOUT)
        caps = p.capa()
        out["caps_before"] = sorted(caps)
        out["offered"] = "STLS" in caps
        p.stls(context=ctx)  # raises if STLS is not in CAPA
    try:
        out["caps_after"] = sorted(p.capa())
        out.update(tls_info(p.sock))
        if a.user:
            p.user(a.user)
            p.pass_(a.password)
            out["logged_in"] = True
            count, size = p.stat()
            out["count"], out["size"] = count, size
            if a.find_token:
                found = False
                for i in range(1, count + 1):
                    _, lines, _ = p.retr(i)
                    if any(a.find_token.encode() in line for line in lines):
                        found = True
                out["found_token"] = found
    finally:
        p.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scheme", choices=["smtp", "submission", "smtps", "lmtp",
                                       "imap", "imaps", "pop3", "pop3s"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--send-to")
    ap.add_argument("--send-from")
    ap.add_argument("--token", default="none")
    ap.add_argument("--find-token")
    a = ap.parse_args()

    # Verification as applications do it: the chain against the given CA
    # only, and the host name (here an IP address: the IP SAN) checked.
    ctx = ssl.create_default_context(cafile=a.ca)
    out = {"client": f"python {sys.version.split()[0]} {a.scheme}",
           "openssl": ssl.OPENSSL_VERSION}
    try:
        if a.scheme in ("smtp", "submission", "smtps", "lmtp"):
            run_smtp(a, ctx, out)
        elif a.scheme in ("imap", "imaps"):
            run_imap(a, ctx, out)
        else:
            run_pop3(a, ctx, out)
    except (ssl.SSLError, ssl.CertificateError) as e:
        out.update(error=str(e), error_type=type(e).__name__)
        print(json.dumps(out))
        return 2
    except Exception as e:  # noqa: BLE001 - report every failure as JSON
        out.update(error=str(e), error_type=type(e).__name__)
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
