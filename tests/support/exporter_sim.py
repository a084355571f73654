#!/usr/bin/env python3
"""A small kafka_exporter simulator for the local stack and the tests.

Serves `kafka_consumergroup_lag{consumergroup,topic,partition}` gauges on
`GET /metrics` in the Prometheus text exposition format, so a real Prometheus
can scrape it, and lets the tests set the values:

    PUT    /lag   {"consumergroup": "g", "topic": "t", "partition": 0,
                   "value": 12000000}          value: number, "NaN", "+Inf", "-Inf"
    GET    /lag   every series as a JSON list
    DELETE /lag?topic=T   remove one topic's series (no query: remove all)

Usage: exporter_sim.py PORT [--port-file FILE]   (PORT 0 picks a free port)
Standard library only; binds 127.0.0.1.
"""

import argparse
import json
import math
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Series key (consumergroup, topic, partition) -> float value.
_series = {}
_lock = threading.Lock()

# The exposition format spells non-finite values exactly like this.
_SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


def format_value(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


def escape_label(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def parse_value(raw):
    """A number, or one of the strings NaN, +Inf, -Inf (or a numeric string)."""
    if isinstance(raw, bool):
        raise ValueError("value must be a number or NaN/+Inf/-Inf, got a boolean")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        if raw in _SPECIAL:
            return _SPECIAL[raw]
        return float(raw)
    raise ValueError(f"value must be a number or NaN/+Inf/-Inf, got {raw!r}")


def render_metrics():
    lines = [
        "# HELP kafka_consumergroup_lag Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        "# TYPE kafka_consumergroup_lag gauge",
    ]
    with _lock:
        items = sorted(_series.items())
    for (group, topic, partition), value in items:
        labels = (
            f'consumergroup="{escape_label(group)}",'
            f'partition="{escape_label(partition)}",'
            f'topic="{escape_label(topic)}"'
        )
        lines.append(f"kafka_consumergroup_lag{{{labels}}} {format_value(value)}")
    return "\n".join(lines) + "\n"


def list_series():
    with _lock:
        items = sorted(_series.items())
    return [
        {"consumergroup": g, "topic": t, "partition": p, "value": format_value(v)}
        for (g, t, p), v in items
    ]


class Handler(BaseHTTPRequestHandler):
    server_version = "exporter-sim/1"

    def _send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj) + "\n")

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._send(200, render_metrics(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/lag":
            self._json(200, list_series())
        elif path in ("/", "/healthz"):
            self._send(200, "ok\n", "text/plain")
        else:
            self._json(404, {"error": f"no route {path}"})

    def do_PUT(self):
        if urlsplit(self.path).path != "/lag":
            self._json(404, {"error": "PUT only on /lag"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            items = body if isinstance(body, list) else [body]
            parsed = []
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError("body must be an object or a list of objects")
                key = (
                    str(item["consumergroup"]),
                    str(item["topic"]),
                    str(item.get("partition", 0)),
                )
                parsed.append((key, parse_value(item["value"])))
        except (ValueError, KeyError, TypeError) as err:
            self._json(400, {"error": f"bad lag: {err}"})
            return
        with _lock:
            for key, value in parsed:
                _series[key] = value
        self._json(200, list_series())

    def do_DELETE(self):
        url = urlsplit(self.path)
        if url.path != "/lag":
            self._json(404, {"error": "DELETE only on /lag"})
            return
        topics = parse_qs(url.query).get("topic")
        with _lock:
            for key in list(_series):
                if topics is None or key[1] in topics:
                    del _series[key]
        self._json(200, list_series())

    def log_message(self, fmt, *args):
        # Scrapes arrive every second; only log changes.
        if self.command != "GET":
            sys.stderr.write("exporter-sim: %s\n" % (fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--port-file", help="write the chosen port to this file")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        # Rename so a reader never sees a half-written file.
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"exporter-sim listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
