#!/usr/bin/env python3
"""One ACME issuance, step by step, printing what the server answered at each step.

    acme-steps.py --directory URL --cafile PEM --http01-port PORT --out FULLCHAIN NAME...

For tests of the fault-injecting proxy (acmeproxy.py): unlike a finished client it shows the
raw order states it sees (processing, pending after orderNotReady, lag), the Retry-After
headers, the finalize answers and the order's "profile".  Uses Debian's python3-acme
(certbot's protocol library) for JWS and nonces, serves http-01 itself on 127.0.0.1:PORT, and
prints one JSON object per line:

    {"event": "order", "status": "pending", "profile": null, "url": ...}
    {"event": "authz", "identifier": "a.test", "status": "valid"}
    {"event": "finalize", "http": 403, "type": "urn:ietf:params:acme:error:orderNotReady"}
    {"event": "poll", "status": "processing", "retry_after": "1"}
    {"event": "cert", "path": FULLCHAIN}

Exit 0 once the certificate is written, 1 on an ACME error (printed as {"event": "error"}).
"""
import argparse
import http.server
import json
import sys
import threading
import time

import josepy as jose
import OpenSSL
from acme import client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TOKENS = {}


class Responder(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = TOKENS.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def emit(**kw):
    print(json.dumps(kw), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--directory", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--http01-port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--deadline", type=float, default=90)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.http01_port), Responder)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    acct_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(acct_key, alg=jose.ES256, verify_ssl=args.cafile,
                               user_agent="certagent-tests acme-steps")
    directory = client.ClientV2.get_directory(args.directory, net)
    acme = client.ClientV2(directory, net)
    deadline = time.time() + args.deadline
    try:
        net.account = acme.new_account(
            messages.NewRegistration.from_data(terms_of_service_agreed=True))
        cert_key = ec.generate_private_key(ec.SECP256R1())
        key_pem = cert_key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        csr_pem = crypto_util.make_csr(key_pem, args.names)
        orderr = acme.new_order(csr_pem)
        raw = acme._post_as_get(orderr.uri).json()  # pylint: disable=protected-access
        emit(event="order", status=raw.get("status"), profile=raw.get("profile"),
             url=orderr.uri)
        for authzr in orderr.authorizations:
            if authzr.body.status == messages.STATUS_PENDING:
                challb = next(c for c in authzr.body.challenges if c.chall.typ == "http-01")
                response, validation = challb.response_and_validation(acct_key)
                TOKENS[challb.chall.path] = validation
                acme.answer_challenge(challb, response)
            while True:
                authzr, _ = acme.poll(authzr)
                if authzr.body.status != messages.STATUS_PENDING or time.time() > deadline:
                    break
                time.sleep(0.2)
            emit(event="authz", identifier=authzr.body.identifier.value,
                 status=authzr.body.status.name)

        def poll(until):
            while time.time() < deadline:
                r = acme._post_as_get(orderr.uri)  # pylint: disable=protected-access
                body = r.json()
                ra = r.headers.get("Retry-After")
                emit(event="poll", status=body.get("status"), retry_after=ra,
                     profile=body.get("profile"), certificate=bool(body.get("certificate")))
                if body.get("status") in until:
                    return body
                time.sleep(min(float(ra), 2) if ra and ra.isdigit() else 0.2)
            raise errors.TimeoutError()

        body = poll(("ready", "invalid"))
        csr = jose.ComparableX509(OpenSSL.crypto.load_certificate_request(
            OpenSSL.crypto.FILETYPE_PEM, csr_pem))
        for _ in range(5):
            try:
                r = acme._post(orderr.body.finalize,  # pylint: disable=protected-access
                               messages.CertificateRequest(csr=csr))
                emit(event="finalize", http=r.status_code, status=r.json().get("status"),
                     retry_after=r.headers.get("Retry-After"))
                break
            except messages.Error as exc:
                emit(event="finalize", http=None, type=exc.typ, detail=exc.detail)
                if exc.code != "orderNotReady":
                    raise
                poll(("ready", "invalid"))
        while True:
            body = poll(("valid", "invalid"))
            if body.get("status") == "invalid" or body.get("certificate"):
                break
        if body.get("status") != "valid":
            emit(event="error", type="order invalid", detail=json.dumps(body.get("error")))
            return 1
        pem = acme._post_as_get(body["certificate"]).text  # pylint: disable=protected-access
        with open(args.out, "w", encoding="ascii") as f:
            f.write(pem)
        emit(event="cert", path=args.out)
        return 0
    except (messages.Error, errors.Error) as exc:
        emit(event="error", type=getattr(exc, "typ", type(exc).__name__), detail=str(exc))
        return 1
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
