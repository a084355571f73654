#!/usr/bin/env python3
"""A chat-webhook stand-in that records what it receives.

    POST   /any/path        record path, headers and JSON body; print its `text`
    GET    /messages        every recorded message as a JSON list
    GET    /messages?path=/x   only the ones posted to /x
    DELETE /messages        forget them all

Replies 200 `ok` to every POST, like Slack. To exercise failure handling, a
POST to a path starting with /status/NNN is recorded and answered with NNN.

Usage: webhook_receiver.py PORT [--port-file FILE]   (PORT 0 picks a free port)
Standard library only; binds 127.0.0.1.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_messages = []
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "webhook-receiver/1"

    def _send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        message = {
            "path": path,
            "headers": dict(self.headers.items()),
            "body": body,
            "raw": raw.decode("utf-8", "replace"),
            "received_at": time.time(),
        }
        with _lock:
            _messages.append(message)
        text = body.get("text") if isinstance(body, dict) else None
        print(f"webhook {path}: {text if text is not None else message['raw']}", flush=True)

        status = 200
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "status" and parts[2].isdigit():
            status = int(parts[2])
        self._send(status, "ok" if status < 300 else "error", "text/plain")

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path in ("/", "/healthz"):
            self._send(200, "ok\n", "text/plain")
            return
        if url.path != "/messages":
            self._send(404, json.dumps({"error": f"no route {url.path}"}))
            return
        wanted = parse_qs(url.query).get("path")
        with _lock:
            found = [m for m in _messages if wanted is None or m["path"] in wanted]
        self._send(200, json.dumps(found) + "\n")

    def do_DELETE(self):
        if urlsplit(self.path).path != "/messages":
            self._send(404, json.dumps({"error": "DELETE only on /messages"}))
            return
        with _lock:
            _messages.clear()
        self._send(200, "[]\n")

    def log_message(self, fmt, *args):
        # One line per message is printed by do_POST; keep access logs quiet.
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--port-file", help="write the chosen port to this file")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        # Rename so a reader never sees a half-written file.
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"webhook-receiver listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
