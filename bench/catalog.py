#!/usr/bin/env python3
"""The catalogue benchmark (issue 13 items 2-3): one upstream with a generated 10,000-tool
catalogue, and 50 small stdio servers.

    bench/catalog.py [--bin-dir .build/release] [--count 10000] [--runs 3] [--servers 50]

For the big server (`mcpproxy-fixture --tools-file`, `quarantined: false`, so its tools are
scanned and pinned on first sight):
  - cold start (fresh data dir: scan + pin on first sight) and warm start (same data dir: the
    pins exist), each `--runs` times: spawn -> /healthz, -> first `call_tool big:echo` answered,
    -> first `retrieve_tools` whose answer lists tools of `big`;
  - `retrieve_tools` latency with `bench/loadgen.c` at 1 session (p50/p99 per query);
  - proxy RSS after the catalogue is in (VmRSS, VmHWM).
For 50 small servers: spawn -> first `call_tool` answered (on the last server), -> first
`retrieve_tools` with no server left starting.
Nothing here asserts a speed; it prints key=value lines and a markdown table.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "bench-catalog-key-0123456789"
QUERIES = ["list open pull requests in a repository", "delete a kubernetes pod", "send a slack message to a channel",
           "weather forecast", "refund a payment charge"]


def post(conn, body, sid=None):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "Authorization": "Bearer " + KEY}
    if sid:
        h["Mcp-Session-Id"] = sid
    conn.request("POST", "/mcp", json.dumps(body), h)
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheader("Mcp-Session-Id"), data


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024
    return out


class Proxy:
    def __init__(self, binary, config, data, port):
        self.port = port
        self.t0 = time.monotonic()
        env = dict(os.environ, MCPPROXY_API_KEY=KEY)
        self.p = subprocess.Popen([binary, "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                   "--data-dir", data, "--log-level", "warn"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(data + ".log", "w"))

    def wait_health(self, deadline):
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    return time.monotonic() - self.t0
            except OSError:
                time.sleep(0.002)
        raise SystemExit("no /healthz within the deadline")

    def session(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        _, sid, _ = post(c, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        post(c, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        return c, sid

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def until(deadline, f):
    while time.monotonic() < deadline:
        if f():
            return True
        time.sleep(0.005)
    return False


def start_big(binary, config, data, port):
    """spawn -> health, -> first routed call answered, -> first retrieve_tools listing big's tools (ms)."""
    px = Proxy(binary, config, data, port)
    try:
        deadline = px.t0 + 180
        health = px.wait_health(deadline)
        c, sid = px.session()
        t_call = t_search = None

        def call():
            nonlocal t_call
            st, _, b = post(c, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "call_tool", "arguments": {"name": "big:echo", "args": {"text": "hi"}}}}, sid)
            if st == 200 and b'"result"' in b and b'"isError":true' not in b:
                t_call = time.monotonic() - px.t0
            return t_call is not None

        def search():
            nonlocal t_search
            st, _, b = post(c, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "retrieve_tools", "arguments": {"query": QUERIES[0]}}}, sid)
            if st == 200 and b'big:github' in b:
                t_search = time.monotonic() - px.t0
            return t_search is not None

        until(deadline, call)
        until(deadline, search)
        mem = rss(px.p.pid)
        return health * 1000, (t_call or float("nan")) * 1000, (t_search or float("nan")) * 1000, mem
    finally:
        px.stop()


def loadgen_point(loadgen, port, query, seconds):
    body = json.dumps({"jsonrpc": "2.0", "id": 12345, "method": "tools/call", "params": {
        "name": "retrieve_tools", "arguments": {"query": query, "limit": 10}}}).replace("12345", "{ID}")
    out = subprocess.run([loadgen, "-p", str(port), "-c", "1", "-d", str(seconds), "-w", "1", "-a", KEY, "-b", body],
                         capture_output=True, text=True, timeout=seconds + 60)
    vals = {}
    for tok in (out.stdout + " " + out.stderr).split():
        k, _, v = tok.partition("=")
        if v:
            vals[k] = v
    return vals, out.stdout.strip() + out.stderr.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", ".build", "release"))
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--seconds", type=int, default=3)
    a = ap.parse_args()
    binary = os.path.abspath(os.path.join(a.bin_dir, "mcpproxy"))
    fixture = os.path.abspath(os.path.join(a.bin_dir, "mcpproxy-fixture"))
    work = tempfile.mkdtemp(prefix="mcpproxy-catalog-")
    loadgen = os.path.join(work, "loadgen")
    subprocess.run(["cc", "-O2", "-o", loadgen, os.path.join(HERE, "loadgen.c")], check=True)
    tools = os.path.join(work, "tools.json")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_catalog.py"), "--count", str(a.count), "--out", tools], check=True)
    config = os.path.join(work, "big.json")
    with open(config, "w") as f:
        json.dump({"listen": f"127.0.0.1:{a.port}", "mcpServers": [
            {"name": "big", "command": fixture, "args": ["--name", "big", "--tools-file", tools], "protocol": "stdio",
             "quarantined": False, "isolation": {"mode": "none"}}]}, f)
    print(f"load_average={open('/proc/loadavg').read().split()[0]} tools={a.count} catalogue_bytes={os.path.getsize(tools)}")
    rows = []
    for kind in ("cold", "warm"):
        runs = []
        for r in range(a.runs):
            data = os.path.join(work, f"data-{r}")
            if kind == "cold":
                shutil.rmtree(data, ignore_errors=True)
            runs.append(start_big(binary, config, data, a.port))
        for name, i in (("health", 0), ("first_call", 1), ("first_search", 2)):
            v = [x[i] for x in runs]
            print(f"{kind}_{name}_ms={statistics.median(v):.0f} runs={','.join(f'{x:.0f}' for x in v)}")
            rows.append((f"{kind} start: spawn → {name.replace('_', ' ')} (median of {a.runs})", f"{statistics.median(v):.0f} ms",
                         ",".join(f"{x:.0f}" for x in v)))
        print(f"{kind}_rss_mib={runs[-1][3].get('VmRSS', 0):.0f} hwm_mib={runs[-1][3].get('VmHWM', 0):.0f}")

    # Steady state: retrieve_tools latency at 1 session, then RSS.
    px = Proxy(binary, config, os.path.join(work, "data-0"), a.port)
    try:
        deadline = px.t0 + 180
        px.wait_health(deadline)
        c, sid = px.session()
        until(deadline, lambda: b"big:github" in post(c, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "retrieve_tools", "arguments": {"query": QUERIES[0]}}}, sid)[2])
        p50s, p99s = [], []
        for q in QUERIES:
            vals, raw = loadgen_point(loadgen, a.port, q, a.seconds)
            print(f"query={q!r} {raw}")
            if "p50_us" in vals:
                p50s.append(float(vals["p50_us"]))
                p99s.append(float(vals["p99_us"]))
        mem = rss(px.p.pid)
        print(f"search_p50_us={statistics.median(p50s) if p50s else 'nan'} search_p99_us={max(p99s) if p99s else 'nan'}")
        print(f"steady_rss_mib={mem['VmRSS']:.0f} hwm_mib={mem['VmHWM']:.0f}")
        rows.append(("retrieve_tools p50 at 1 session (median over 5 queries)", f"{statistics.median(p50s):.0f} µs" if p50s else "n/a",
                     ",".join(f"{x:.0f}" for x in p50s)))
        rows.append(("retrieve_tools p99 at 1 session (worst of 5 queries)", f"{max(p99s):.0f} µs" if p99s else "n/a",
                     ",".join(f"{x:.0f}" for x in p99s)))
        rows.append(("proxy RSS with the catalogue / peak", f"{mem['VmRSS']:.0f} / {mem['VmHWM']:.0f} MiB", ""))
    finally:
        px.stop()

    # 50 small servers.
    if a.servers:
        small = os.path.join(work, "small.json")
        with open(small, "w") as f:
            json.dump({"listen": f"127.0.0.1:{a.port}", "mcpServers": [
                {"name": f"s{i}", "command": fixture, "args": ["--name", f"s{i}"], "protocol": "stdio",
                 "quarantined": False, "isolation": {"mode": "none"}} for i in range(a.servers)]}, f)
        calls, searches = [], []
        for r in range(a.runs):
            data = os.path.join(work, f"small-{r}")
            shutil.rmtree(data, ignore_errors=True)
            px = Proxy(binary, small, data, a.port)
            try:
                deadline = px.t0 + 120
                px.wait_health(deadline)
                c, sid = px.session()
                last = f"s{a.servers - 1}:echo"
                until(deadline, lambda: b'"isError":true' not in post(c, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                    "name": "call_tool", "arguments": {"name": last, "args": {"text": "hi"}}}}, sid)[2])
                calls.append((time.monotonic() - px.t0) * 1000)
                until(deadline, lambda: b"starting" not in post(c, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                    "name": "retrieve_tools", "arguments": {"query": "echo"}}}, sid)[2])
                searches.append((time.monotonic() - px.t0) * 1000)
            finally:
                px.stop()
        print(f"small_first_call_ms={statistics.median(calls):.0f} runs={','.join(f'{x:.0f}' for x in calls)}")
        print(f"small_all_searchable_ms={statistics.median(searches):.0f} runs={','.join(f'{x:.0f}' for x in searches)}")
        rows.append((f"{a.servers} stdio servers: spawn → first call_tool on the last one answered", f"{statistics.median(calls):.0f} ms",
                     ",".join(f"{x:.0f}" for x in calls)))
        rows.append((f"{a.servers} stdio servers: spawn → retrieve_tools with none starting", f"{statistics.median(searches):.0f} ms",
                     ",".join(f"{x:.0f}" for x in searches)))
    print()
    print("| measure | value | runs |")
    print("| --- | ---: | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
