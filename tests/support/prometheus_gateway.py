#!/usr/bin/env python3
"""A Prometheus query endpoint that checks how each request authenticates.

With --sigv4 it stands in for an Amazon Managed Service for Prometheus
workspace: it recomputes every request's AWS Signature Version 4 with
botocore's signer (an implementation independent of the Rust `aws-sigv4`
crate), from the credentials it was given, and answers 403 with an AMP-style
`{"message": ...}` when the signature, the signed headers, the credential
scope, the body hash or the date do not match. The other modes check HTTP
basic credentials, a bearer token, or required headers (a Mimir tenant).

    POST /<any path>/api/v1/query   form `query=...`: checked, then answered
                                    with a one-series vector of value --lag
    GET  /requests                  what every query request carried, as JSON:
                                    path, query, verdict, header names

Usage:
    prometheus_gateway.py [--sigv4 REGION --access-key K --secret-key S
                           [--session-token T]] [--basic USER:PASS]
                          [--bearer TOKEN] [--require-header NAME=VALUE]...
                          [--lag N] [--port-file FILE]
Binds 127.0.0.1 on a free port; prints `listening on PORT` once ready.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGV4_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)

_requests = []
_lock = threading.Lock()
args = None


def sigv4_problem(handler, body):
    """Why the request's SigV4 signature is not valid, or None when it is."""
    authorization = handler.headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return "Missing Authentication Token"
    fields = dict(
        part.strip().split("=", 1)
        for part in authorization[len("AWS4-HMAC-SHA256 "):].split(",")
        if "=" in part
    )
    signed = fields.get("SignedHeaders", "").split(";")
    for required in ("host", "x-amz-date", "content-type"):
        if required not in signed:
            return f"the signature does not cover the `{required}` header"
    if args.session_token and "x-amz-security-token" not in signed:
        return "the signature does not cover the session token"

    stamp = handler.headers.get("X-Amz-Date", "")
    try:
        when = datetime.datetime.strptime(stamp, SIGV4_FORMAT).replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return f"X-Amz-Date `{stamp}` is not a SigV4 timestamp"
    if abs(datetime.datetime.now(datetime.timezone.utc) - when) > MAX_CLOCK_SKEW:
        return "Signature expired"

    claimed_hash = handler.headers.get("X-Amz-Content-SHA256")
    if claimed_hash is not None and claimed_hash != hashlib.sha256(body).hexdigest():
        return "X-Amz-Content-SHA256 does not match the body"

    # Rebuild the request from what arrived, with exactly the headers the client
    # says it signed, and let botocore sign it again at the client's timestamp.
    headers = {name: handler.headers[name] for name in signed if name in handler.headers}
    request = AWSRequest(
        method=handler.command,
        url=f"http://{handler.headers['Host']}{handler.path}",
        headers=headers,
        data=body,
    )
    request.context["timestamp"] = stamp
    credentials = Credentials(args.access_key, args.secret_key, args.session_token)
    signer = SigV4Auth(credentials, "aps", args.sigv4)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    if request.headers["Authorization"] != authorization:
        return (
            "The request signature we calculated does not match the signature you "
            "provided. Check your AWS Secret Access Key and signing method."
        )
    return None


def check(handler, body):
    """(status, message) refusing the request, or None to answer it."""
    if args.sigv4:
        problem = sigv4_problem(handler, body)
        if problem:
            return 403, problem
    if args.basic:
        expected = "Basic " + base64.b64encode(args.basic.encode()).decode()
        if not hmac.compare_digest(handler.headers.get("Authorization", ""), expected):
            return 401, "basic credentials missing or wrong"
    if args.bearer:
        expected = f"Bearer {args.bearer}"
        if not hmac.compare_digest(handler.headers.get("Authorization", ""), expected):
            return 401, "bearer token missing or wrong"
    for name, value in args.require_header:
        if handler.headers.get(name) != value:
            return 401, f"no org id ({name} missing or wrong)"
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "prometheus-gateway/1"

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(body.decode("utf-8", "replace")).get("query", [None])[0]
        refusal = check(self, body)
        with _lock:
            _requests.append({
                "path": self.path,
                "query": query,
                "verdict": "accepted" if refusal is None else refusal[1],
                "headers": sorted(name.lower() for name in self.headers.keys()),
            })
        if refusal is not None:
            status, message = refusal
            self._send(status, {"message": message})
            return
        self._send(200, {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{
                    "metric": {"consumergroup": "cg-gateway", "topic": "orders"},
                    "value": [time.time(), str(args.lag)],
                }],
            },
        })

    def do_GET(self):
        if self.path == "/requests":
            with _lock:
                self._send(200, list(_requests))
        else:
            self._send(404, {"message": "not found"})

    def log_message(self, fmt, *values):
        # Every request's access line would land in the test output: say nothing here.
        pass

    def log_error(self, fmt, *values):
        # Errors (a malformed request, a client that timed out) still go to stderr;
        # an exception in a handler is printed with its traceback by the server.
        sys.stderr.write("gateway: " + (fmt % values) + "\n")


def header_pair(text):
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def main():
    global args
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigv4", metavar="REGION")
    parser.add_argument("--access-key")
    parser.add_argument("--secret-key")
    parser.add_argument("--session-token")
    parser.add_argument("--basic", metavar="USER:PASS")
    parser.add_argument("--bearer", metavar="TOKEN")
    parser.add_argument("--require-header", type=header_pair, action="append", default=[])
    parser.add_argument("--lag", type=int, default=12_000_000)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    if args.sigv4 and not (args.access_key and args.secret_key):
        parser.error("--sigv4 needs --access-key and --secret-key")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(str(port))
    print(f"listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
