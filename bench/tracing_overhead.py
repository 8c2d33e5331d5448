#!/usr/bin/env python3
"""Tracing on vs off at 32 sessions, in one run (issue 15: overhead of traces).

    bench/tracing_overhead.py [--bin-dir .build/release] [--rounds 4] [--seconds 5]

Two proxies of the same release binary on the same fixture upstream, one without `tracing` and
one exporting every trace (`sample_ratio` 1) to a local OTLP/HTTP sink (a small HTTP server that
accepts and counts the protobuf batches); `bench/loadgen.c` at 32 sessions, closed-loop
`call_tool fixture:echo`, the two proxies alternating round by round so machine noise falls on
both. Prints key=value lines and a markdown table; asserts nothing about speed.
"""
import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "bench-tracing-key-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Sink(http.server.BaseHTTPRequestHandler):
    batches = 0
    bytes = 0

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        Sink.batches += 1
        Sink.bytes += n
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def start_proxy(binary, fixture, work, name, port, tracing):
    cfg = {"listen": f"127.0.0.1:{port}",
           "mcpServers": [{"name": "fixture", "command": fixture, "args": ["--name", "fixture"], "protocol": "stdio",
                           "quarantined": False, "isolation": {"mode": "none"}}]}
    if tracing:
        cfg["tracing"] = tracing
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([binary, "serve", "--config", path, "--data-dir", os.path.join(work, f"{name}-data"),
                          "--log-level", "warn"], env=dict(os.environ, MCPPROXY_API_KEY=KEY),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/servers", headers={"X-API-Key": KEY})
            body = json.load(urllib.request.urlopen(req, timeout=2))
            if body["servers"] and body["servers"][0]["state"] == "ready":
                return p
        except OSError:
            pass
        time.sleep(0.1)
    p.kill()
    sys.exit(f"proxy {name} not ready")


def load(loadgen, port, seconds):
    out = subprocess.run([loadgen, "-p", str(port), "-c", "32", "-d", str(seconds), "-w", "1", "-a", KEY],
                         capture_output=True, text=True, timeout=seconds + 120).stdout
    kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
    return float(kv["rps"]), float(kv["p50_us"]), int(kv.get("errors", "0"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", ".build", "release"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    binary, fixture = os.path.join(a.bin_dir, "mcpproxy"), os.path.join(a.bin_dir, "mcpproxy-fixture")
    work = tempfile.mkdtemp(prefix="mcpproxy-tracing-bench.")
    loadgen = os.path.join(work, "loadgen")
    subprocess.run(["cc", "-O2", "-o", loadgen, os.path.join(HERE, "loadgen.c")], check=True)
    sink_port = free_port()
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", sink_port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    off_port, on_port = free_port(), free_port()
    procs = []
    try:
        procs.append(start_proxy(binary, fixture, work, "off", off_port, None))
        procs.append(start_proxy(binary, fixture, work, "on", on_port,
                                 {"otlp_endpoint": f"http://127.0.0.1:{sink_port}/v1/traces", "sample_ratio": 1}))
        rows = {"off": [], "on": []}
        for r in range(a.rounds):
            for name, port in (("off", off_port), ("on", on_port)) if r % 2 == 0 else (("on", on_port), ("off", off_port)):
                rps, p50, errors = load(loadgen, port, a.seconds)
                rows[name].append((rps, p50, errors))
                print(f"round={r} tracing={name} rps={rps:.0f} p50_us={p50:.0f} errors={errors}", flush=True)
        time.sleep(2)  # the last batch
        print(f"sink_batches={Sink.batches} sink_bytes={Sink.bytes}")
        print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
        print()
        print("| tracing | calls/s per round | median calls/s | median p50 µs | errors |")
        print("| --- | --- | ---: | ---: | ---: |")
        for name in ("off", "on"):
            rs = rows[name]
            print(f"| {name} | {', '.join(f'{x[0]:.0f}' for x in rs)} | {statistics.median(x[0] for x in rs):.0f} | "
                  f"{statistics.median(x[1] for x in rs):.0f} | {sum(x[2] for x in rs)} |")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        sink.shutdown()


if __name__ == "__main__":
    main()
