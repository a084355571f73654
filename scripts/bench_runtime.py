#!/usr/bin/env python3
"""A minimal Lambda Runtime API that starts the function and times it.

    bench_runtime.py --binary PATH --event FILE --invocations N [--gap-ms MS]
                     [--cold-starts K] [--floor PROBE] [--log FILE] [--out FILE]

It serves the four routes the function uses (GET .../invocation/next, POST
.../invocation/ID/response, POST .../invocation/ID/error and POST .../init/error)
on 127.0.0.1, points AWS_LAMBDA_RUNTIME_API at itself and starts the binary,
which is then on its real runtime path: lambda_runtime polling this API.
The rest of the function's environment is inherited.

It starts the function K times (--cold-starts), a fresh process each time; the
first process gets N invocations (--invocations), the others one. It measures:
  init     from spawning the process to its first GET .../next
  first    the first invocation of each process: from just before the event's
           first byte is written to the arrival of the response's first byte
  warm     invocations 2..N of the first process, the same way
  receive  how long after its arrival this emulator read each warm response:
           its own delay, left out of the figures above
  cpu      CPU time of the function's process over each warm invocation, from
           the event to its next poll (its clock_getcpuclockid(3) clock); median
  rss      VmHWM (peak resident set) of each process after its last invocation
  floor    with --floor, one round of the probe (examples/read_floor.rs, which
           makes the read each line names) before each warm invocation:
           a Prometheus query, a DescribeAutoScalingGroups, both at once, each
           after the same pause (--gap-ms) as an invocation gets before it. So
           the floor and the invocations share the same minutes of the servers
           (moto's latency drifts from one minute to the next) and both come
           after a pause (a read after a pause is slower than one made straight
           after another). The probe says `ready` once its clients are warm,
           before the first cold start.
  paired   each warm invocation less the floor's `both` read just before it
A request's arrival is the kernel's receive time of its first byte
(SO_TIMESTAMPNS), not the time this emulator's thread got round to reading it,
so that neither Python nor the emulator's own wake-up is counted against the
function. Kernel timestamps are CLOCK_REALTIME, so every time here is too.
Medians are the lower median (nearest rank). It prints a JSON report, with
every sample, on stdout (or --out). It exits non-zero when an invocation
returns an error.
"""

import argparse
import ctypes
import http.server
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"
# Linux's value; Python's socket module does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("qq")


class Runtime:
    """What the handler threads share with the driver."""

    def __init__(self, event):
        self.event = event
        self.events = queue.Queue()  # request ids the driver releases
        # (kind, request id, arrival_ns, read_ns, body); kind is "next", "response", "error",
        # "init_error", or "emulator_fault" when this emulator cannot time a request.
        self.arrivals = queue.Queue()
        self.sent_at = {}


def make_handler(runtime):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # As the Runtime API's own server does (Go sets TCP_NODELAY): a body written after
        # its headers must not wait for the function's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

        def handle_one_request(self):
            # Waits for the next request's first byte without taking it, for the kernel's
            # time of its arrival. The function sends one request at a time and waits for the
            # answer, so nothing of the next request can already sit in rfile's buffer.
            self.arrived_ns = None
            first, ancillary, _, _ = self.connection.recvmsg(
                1, socket.CMSG_SPACE(TIMESPEC.size), socket.MSG_PEEK
            )
            self.read_ns = time.time_ns()
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = TIMESPEC.unpack(data)
                    self.arrived_ns = seconds * 1_000_000_000 + nanoseconds
            if first and self.arrived_ns is None:
                message = b"the kernel gave no receive timestamp (SO_TIMESTAMPNS)"
                self.arrival("emulator_fault", None, message)
                self.close_connection = True
                return None
            return super().handle_one_request()

        def arrival(self, kind, request_id, body=b""):
            runtime.arrivals.put((kind, request_id, self.arrived_ns, self.read_ns, body))

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        # Trailers end with an empty line.
                        while self.rfile.readline().strip():
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def reply(self, status, body=b"", headers=(), on_send=None):
            """Sends the answer in one write, headers and body, as the Runtime API's Go server
            does with a small answer; on_send, if given, gets the time (time.time_ns) just
            before it is written."""
            lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}"]
            lines += [f"{name}: {value}" for name, value in headers]
            lines += [f"Content-Length: {len(body)}", "", ""]
            answer = "\r\n".join(lines).encode("latin-1") + body
            if on_send:
                on_send(time.time_ns())
            self.wfile.write(answer)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            self.arrival("next", None)
            request_id = runtime.events.get()
            if request_id is None:
                # The run is over: hold the poll until the process is stopped.
                time.sleep(3600)
                return None
            deadline_ms = int(time.time() * 1000) + 60_000
            headers = [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:kafka-lag-scaler-bench",
                ),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
            ]
            # Timed from before the first byte is written, and noted then: once the body is
            # in, the function may take the CPU from this thread, and may even answer, before
            # the thread runs again.
            def sent(at):
                runtime.sent_at[request_id] = at

            self.reply(200, runtime.event, headers, on_send=sent)
            return None

        def do_POST(self):
            body = self.body()
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            if parts == ["init", "error"]:
                self.arrival("init_error", None, body)
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                self.arrival(parts[2], parts[1], body)
            else:
                return self.reply(404)
            return self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])

    return Handler


LIBC = ctypes.CDLL(None)


def cpu_ns(pid):
    """CPU time of the whole process so far, threads that have ended included: the clock
    clock_getcpuclockid(3) gives for it."""
    clock = ctypes.c_int()
    error = LIBC.clock_getcpuclockid(pid, ctypes.byref(clock))
    if error:
        raise OSError(error, f"clock_getcpuclockid({pid}): {os.strerror(error)}")
    return time.clock_gettime_ns(clock.value)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def wait_for(runtime, kinds, process, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            arrival = runtime.arrivals.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                raise SystemExit(f"the function exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"no {kinds} from the function within {timeout}s")
            continue
        if arrival[0] == "init_error":
            raise SystemExit(f"init failed: {arrival[4].decode(errors='replace')}")
        if arrival[0] == "emulator_fault":
            raise SystemExit(arrival[4].decode())
        if arrival[0] in kinds:
            return arrival


def one_process(args, event, log, invocations, floor=None):
    runtime = Runtime(event)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(runtime))
    # Before any connection: the kernel stamps only what arrives once a socket has asked, and
    # a connection's first request can arrive before it is accepted.
    server.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="kafka-lag-scaler-bench",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/kafka-lag-scaler-bench",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
    )
    started = time.time_ns()
    process = subprocess.Popen([args.binary], env=env, stdout=log, stderr=log)
    try:
        _, _, ready, _, _ = wait_for(runtime, ("next",), process)
        init_ns = ready - started
        durations, receive, cpu, summaries, rounds = [], [], [], [], []
        for i in range(invocations):
            request_id = str(uuid.uuid4())
            cpu_before = cpu_ns(process.pid)
            runtime.events.put(request_id)
            kind, got_id, at, read, body = wait_for(runtime, ("response", "error"), process)
            if kind == "error" or got_id != request_id:
                raise SystemExit(f"invocation {i + 1} failed: {body.decode(errors='replace')}")
            durations.append(at - runtime.sent_at[request_id])
            receive.append(read - at)
            summaries.append(json.loads(body))
            wait_for(runtime, ("next",), process)
            cpu.append(cpu_ns(process.pid) - cpu_before)
            if i + 1 == invocations:
                break
            if floor:
                rounds.append(floor_round(floor, args.gap_ms))
            pause(args.gap_ms)
        rss = peak_rss_kib(process.pid)
        runtime.events.put(None)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.shutdown()
        server.server_close()
    return init_ns, durations, receive, cpu, rss, summaries, rounds


def pause(gap_ms):
    if gap_ms:
        time.sleep(gap_ms / 1000)


FLOOR_READS = ("prometheus", "describe", "both")


def floor_round(floor, gap_ms):
    """One of each read of the probe, each after the pause an invocation gets before it."""
    times = {}
    for read in FLOOR_READS:
        pause(gap_ms)
        floor.stdin.write(read + "\n")
        floor.stdin.flush()
        line = floor.stdout.readline()
        if not line:
            raise SystemExit("the floor probe stopped")
        times[read] = float(line)
    return times


def ms(ns):
    return round(ns / 1e6, 3)


def percentile(values, fraction):
    ordered = sorted(values)
    # Nearest rank: the smallest value with at least `fraction` of the values at or below it.
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--invocations", type=int, default=61)
    parser.add_argument("--cold-starts", type=int, default=1)
    parser.add_argument("--gap-ms", type=float, default=50)
    parser.add_argument("--log", default=os.devnull, help="where the function's output goes")
    parser.add_argument("--floor", help="the floor probe, a round before each warm invocation")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.invocations < 2:
        parser.error("--invocations must be at least 2: the first, then the warm ones")
    with open(args.event, "rb") as source:
        event = source.read()

    inits, firsts, rss, warm, warm_receive, warm_cpu, actions, rounds = (
        [], [], [], [], [], [], set(), []
    )
    floor = None
    if args.floor:
        floor = subprocess.Popen(
            [args.floor], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        # It warms its clients, then says so: the first cold start must not overlap that.
        if floor.stdout.readline().strip() != "ready":
            raise SystemExit("the floor probe did not start")
    with open(args.log, "ab") as log:
        for cold in range(args.cold_starts):
            invocations = args.invocations if cold == 0 else 1
            init_ns, durations, receive, cpu, peak, summaries, probed = one_process(
                args, event, log, invocations, floor if cold == 0 else None
            )
            rounds.extend(probed)
            inits.append(init_ns)
            firsts.append(durations[0])
            rss.append(peak)
            if cold == 0:
                warm = durations[1:]
                warm_receive = receive[1:]
                warm_cpu = cpu[1:]
            actions.update(summary["action"] for summary in summaries)

    report = {
        "cold_starts": args.cold_starts,
        "init_ms": {"median": ms(percentile(inits, 0.5)), "all": [ms(v) for v in inits]},
        "first_invocation_ms": {
            "median": ms(percentile(firsts, 0.5)),
            "all": [ms(v) for v in firsts],
        },
        "warm_invocation_ms": {
            "count": len(warm),
            "median": ms(percentile(warm, 0.5)) if warm else None,
            "p95": ms(percentile(warm, 0.95)) if warm else None,
            "min": ms(min(warm)) if warm else None,
            "max": ms(max(warm)) if warm else None,
            "cpu_median": ms(percentile(warm_cpu, 0.5)) if warm_cpu else None,
            "emulator_receive_median": ms(percentile(warm_receive, 0.5)) if warm else None,
            "all": [ms(v) for v in warm],
            "cpu_all": [ms(v) for v in warm_cpu],
        },
        "peak_rss_mib": round(max(rss) / 1024, 2),
        "actions": sorted(actions),
    }
    if floor:
        floor.stdin.close()
        floor.wait(timeout=10)
        report["floor_ms"] = {"rounds": len(rounds)}
        for read in FLOOR_READS:
            samples = [r[read] for r in rounds]
            report["floor_ms"][read] = {
                "median": percentile(samples, 0.5),
                "p95": percentile(samples, 0.95),
                "all": samples,
            }
        # Round k was made just before warm invocation k: the pair shares the same minute.
        assert len(warm) == len(rounds), (len(warm), len(rounds))
        overhead = [ms(run) - r["both"] for run, r in zip(warm, rounds)]
        report["warm_minus_both_ms"] = {
            "pairs": len(overhead),
            "median": round(percentile(overhead, 0.5), 3),
        }
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
