#!/usr/bin/env python3
"""Workspace instances: the first call of a workspace to a cold `"instance": "workspace"` server
(the gateway starts that workspace's instance, then routes the call), the next (warm) call, and
what one idle instance costs in memory.

One `mcpproxy serve` with the fixture server declared `instance: workspace` (idle_timeout 1 h, so
nothing stops during the run) and N workspaces, one agent token each. For each workspace in turn:
open an MCP session over HTTP (initialize, initialized: not timed), then time `call_tool
files:whoami` twice: the first starts the instance (cold), the second reuses it (warm). Then,
with all N instances idle, read their memory:

  sandbox  RSS of each instance's process tree (the launcher execs the server: one process)
  docker   the container's memory as the engine reports it (`docker stats`: cgroup usage) plus the
           RSS of the `docker run -i` client process the gateway talks to on the host

"Fit in 24 GiB" divides 24 GiB by that per-instance figure (memory only; CPU, pids and the
gateway's own per-instance state, a few KiB, are not counted).

usage: bench/workspace_coldstart.py [--workspaces N] [--mode sandbox|docker|both] [--bin DIR]
Docker mode needs dockerd and the fixture image (scripts/setup.sh); take
/tmp/mcpproxy-docker.lock around it when other docker tests may run.
"""
import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "mcpproxy-fixture:test"
ACCEPT = "application/json, text/event-stream"


def find_bin(explicit):
    for d in ([explicit] if explicit else [os.path.join(ROOT, ".build/release"), os.path.join(ROOT, ".build/debug")]):
        if d and all(os.path.exists(os.path.join(d, b)) for b in ("mcpproxy", "mcpproxy-fixture", "mcpproxy-sandbox")):
            return os.path.realpath(d)
    sys.exit("mcpproxy, mcpproxy-fixture, mcpproxy-sandbox not built: run swift build")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, token, body, sid=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Content-Type": "application/json", "Accept": ACCEPT, "Authorization": f"Bearer {token}"}
    if sid:
        h["Mcp-Session-Id"] = sid
    c.request("POST", "/mcp", json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Mcp-Session-Id"), data


def rest(port, key, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, headers={"X-API-Key": key})
    r = c.getresponse()
    data = r.read()
    c.close()
    return json.loads(data) if data else None


def rss_tree_kib(pid):
    """RSS of `pid` and its descendants, KiB."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(p, [])
    return total


def parse_size(text):
    """`12.3MiB` -> KiB."""
    units = {"B": 1 / 1024, "KiB": 1, "kB": 1000 / 1024, "MiB": 1024, "MB": 1000 * 1000 / 1024, "GiB": 1024 * 1024}
    for u in sorted(units, key=len, reverse=True):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    return float(text) / 1024


def run(mode, n, bindir):
    work = tempfile.mkdtemp(prefix=f"mcpx-wsbench-{mode}-")
    data, config = os.path.join(work, "data"), os.path.join(work, "mcp_config.json")
    fixture_dir = os.path.join(work, "bin")
    os.makedirs(fixture_dir)
    os.chmod(work, 0o755)
    os.chmod(fixture_dir, 0o755)
    fixture = os.path.join(fixture_dir, "mcpproxy-fixture")
    shutil.copy2(os.path.join(bindir, "mcpproxy-fixture"), fixture)
    os.chmod(fixture, 0o755)
    if mode == "docker":
        server = {"name": "files", "command": "/fixture", "args": ["--name", "files"], "isolation": {"mode": "docker", "image": IMAGE}}
    else:
        server = {"name": "files", "command": fixture, "args": ["--name", "files"],
                  "isolation": {"mode": "sandbox", "network_mode": "none"}}
    server.update({"quarantined": False, "instance": "workspace", "idle_timeout": "1h"})
    workspaces = {f"ws{i}": {"members": [f"tok{i}"]} for i in range(n)}
    json.dump({"mcpServers": [server], "workspaces": workspaces}, open(config, "w"))
    key = "bench-" + secrets.token_hex(8)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "MCPPROXY_API_KEY": key, "LANG": "C.UTF-8"}
    mcpproxy = os.path.join(bindir, "mcpproxy")
    tokens = []
    for i in range(n):
        out = subprocess.run([mcpproxy, "token", "create", f"tok{i}", "--intent", "destructive", "--data-dir", data],
                             capture_output=True, text=True, env=env, check=True)
        tokens.append(out.stdout.strip())
    port = free_port()
    proxy = subprocess.Popen([mcpproxy, "serve", "--config", config, "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "proxy.stderr"), "wb"))
    cold, warm, mem = [], [], []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                s = rest(port, key, "/api/v1/servers/files")
                if s and s.get("state") == "ready":
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            sys.exit(f"{mode}: the definition instance did not become ready")
        time.sleep(0.5)  # its tools through the gate
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "call_tool", "arguments": {"name": "files:whoami", "args": {}}}}
        for i, tok in enumerate(tokens):
            _, sid, _ = post(port, tok, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
            post(port, tok, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
            for bucket in (cold, warm):
                t0 = time.perf_counter()
                status, _, body = post(port, tok, call, sid)
                bucket.append((time.perf_counter() - t0) * 1000)
                if status != 200 or b"pid=" not in body:
                    sys.exit(f"{mode}: call failed: {status} {body[:300]!r}")
        time.sleep(1)
        listing = rest(port, key, "/api/v1/workspaces")["workspaces"]
        instances = [w["instances"][0] for w in listing if w["instances"]]
        if len(instances) != n:
            sys.exit(f"{mode}: expected {n} running instances, found {len(instances)}")
        if mode == "docker":
            ids = [i["container_id"] for i in instances]
            out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}"] + ids,
                                 capture_output=True, text=True, check=True).stdout
            container = [parse_size(line.split()[1]) for line in out.splitlines() if line.strip()]
            client = [rss_tree_kib(i["pid"]) for i in instances]
            mem = [c + k for c, k in zip(container, client)]
            detail = f"container {statistics.median(container) / 1024:.1f} MiB + docker client {statistics.median(client) / 1024:.1f} MiB"
        else:
            mem = [rss_tree_kib(i["pid"]) for i in instances]
            detail = "process tree RSS"
        proxy_rss = rss_tree_kib(proxy.pid) - sum(rss_tree_kib(i["pid"]) for i in instances)
    finally:
        for i in range(n):
            subprocess.run([mcpproxy, "workspace", "delete", f"ws{i}", "--config", config, "--data-dir", data],
                           capture_output=True, env=env)
        proxy.terminate()
        try:
            proxy.wait(30)
        except subprocess.TimeoutExpired:
            proxy.kill()
        shutil.rmtree(work, ignore_errors=True)
    per = statistics.median(mem) / 1024
    return {"mode": mode, "n": n, "cold_median": statistics.median(cold), "cold_max": max(cold),
            "warm_median": statistics.median(warm), "mem_mib": per, "detail": detail,
            "fit_24g": int(24 * 1024 / per), "proxy_rss_mib": proxy_rss / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=10)
    ap.add_argument("--mode", choices=["sandbox", "docker", "both"], default="both")
    ap.add_argument("--bin")
    a = ap.parse_args()
    bindir = find_bin(a.bin)
    modes = ["sandbox", "docker"] if a.mode == "both" else [a.mode]
    print(f"binaries: {bindir}; {a.workspaces} workspaces per mode; load {os.getloadavg()[0]:.1f}")
    print("| isolation | first call, cold instance: median ms | max ms | next call, warm: median ms | memory per idle instance | fit in 24 GiB |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for m in modes:
        r = run(m, a.workspaces, bindir)
        print(f"| {m} | {r['cold_median']:.1f} | {r['cold_max']:.1f} | {r['warm_median']:.1f} | "
              f"{r['mem_mib']:.1f} MiB ({r['detail']}) | {r['fit_24g']} |")
        print(f"  (gateway RSS besides instances with {r['n']} instances: {r['proxy_rss_mib']:.0f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
