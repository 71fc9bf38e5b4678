#!/usr/bin/env python3
"""A real FTP client for the interop suite: Python's ftplib.FTP_TLS, the way
applications use it: AUTH TLS (or implicit TLS with --implicit), certificate
and host name verified against --ca, login, prot_p(), then NLST of the root
and RETR of --file in binary mode over the protected data connection.

    ftpclient.py HOST PORT --ca FILE --user U --password P --file NAME [--implicit]

Prints one JSON object on stdout. Exit status: 0 success, 2 the TLS
handshake or certificate verification failed, 1 any other error.
"""

import argparse
import ftplib
import json
import ssl
import sys

TIMEOUT = 20


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS speaking TLS from the first byte (ftps, port 990)."""

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        resp = None
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        import socket
        self.sock = socket.create_connection((host, port), self.timeout)
        self.af = self.sock.family
        self.sock = self.context.wrap_socket(self.sock, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        resp = self.getresp()
        self.welcome = resp
        return resp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--implicit", action="store_true")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    out = {}
    try:
        cls = ImplicitFTP_TLS if a.implicit else ftplib.FTP_TLS
        ftp = cls(context=ctx, timeout=TIMEOUT)
        out["welcome"] = ftp.connect(a.host, a.port)
        out["login"] = ftp.login(a.user, a.password)  # AUTH TLS first when explicit
        out["tls_version"] = ftp.sock.version()
        out["prot_p"] = ftp.prot_p()
        out["nlst"] = ftp.nlst()
        chunks = []
        out["retr"] = ftp.retrbinary("RETR " + a.file, chunks.append)
        out["data"] = b"".join(chunks).decode("utf-8", "replace")
        out["quit"] = ftp.quit()
    except (ssl.SSLError, ssl.CertificateError) as e:
        out.update(error=str(e), error_type=type(e).__name__)
        print(json.dumps(out))
        return 2
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        out.update(error=str(e), error_type=type(e).__name__)
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
