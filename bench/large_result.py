#!/usr/bin/env python3
"""Large results through the gateway, per upstream transport (issue 11).

A 10 MB tool result (the SDK server's `big_text`, tests/e2e/servers/py_upstream.py --flow-tools)
is fetched through `mcpproxy serve` from the same server run over stdio, streamable HTTP and SSE,
and, as the reference, from the stdio server directly (raw JSON lines on its pipes). For each:
median wall time of N calls and the proxy's CPU time per call (utime+stime from /proc, which does
not depend on what else the machine runs as much as wall time does).

Usage: bench/large_result.py [--bin-dir DIR] [--size BYTES] [--runs N]
       (default: .build/release if it exists, else .build/debug; 10 MiB; 5 runs)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    default_bin = ROOT / ".build" / "release"
    if not (default_bin / "mcpproxy").exists():
        default_bin = ROOT / ".build" / "debug"
    ap.add_argument("--bin-dir", default=str(default_bin))
    ap.add_argument("--size", type=int, default=10 << 20)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    os.environ["MCPPROXY_BIN_DIR"] = a.bin_dir

    import subprocess
    from e2e_support import (SERVERS_DIR, ProxyFactory, free_port, http_server, make_config, python_server,
                             venv_python, wait_until)
    upstream = str(SERVERS_DIR / "py_upstream.py")
    procs = []

    def serve(transport: str) -> str:
        port = free_port()
        procs.append(subprocess.Popen([str(venv_python()), upstream, "--transport", transport, "--port", str(port),
                                       "--name", transport, "--flow-tools"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        import socket

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(up, 30, 0.1, f"{transport} upstream")
        return f"http://127.0.0.1:{port}/mcp" if transport == "streamable-http" else f"http://127.0.0.1:{port}/sse"

    tmp = Path(tempfile.mkdtemp(prefix="mcpproxy-bench-"))
    factory = ProxyFactory(tmp)
    rows = []
    try:
        servers = [python_server("stdio", [upstream, "--transport", "stdio", "--name", "stdio", "--flow-tools"]),
                   http_server("http", serve("streamable-http"), "http"), http_server("sse", serve("sse"), "sse")]
        p = factory(make_config(servers, call_tool_timeout="5m"))
        s = p.session()
        for name in ("stdio", "http", "sse"):
            s.call_tool(f"{name}:big_text", {"size": 1000}, timeout=300)  # warm up
            walls, cpus = [], []
            for _ in range(a.runs):
                c0, t0 = cpu_seconds(p.pid), time.monotonic()
                r = s.call_tool(f"{name}:big_text", {"size": a.size}, timeout=300)
                walls.append(time.monotonic() - t0)
                cpus.append(cpu_seconds(p.pid) - c0)
                assert len(r["result"]["content"][0]["text"]) == a.size
            rows.append((f"through mcpproxy, {name} upstream", statistics.median(walls), statistics.median(cpus)))

        # Reference: the same stdio server spoken to over its own pipes in raw JSON lines (what the
        # upstream itself costs; no client library parsing 10 MB on the way).
        proc = subprocess.Popen([str(venv_python()), upstream, "--transport", "stdio", "--name", "d", "--flow-tools"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def exchange(msg: dict, expect_reply: bool = True) -> bytes:
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
            proc.stdin.flush()
            while expect_reply:
                line = proc.stdout.readline()
                if b'"id"' in line[:200] or b'"id":' in line[-200:]:
                    return line
            return b""
        exchange({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        exchange({"jsonrpc": "2.0", "method": "notifications/initialized"}, expect_reply=False)
        walls = []
        for i in range(a.runs):
            t0 = time.monotonic()
            line = exchange({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                             "params": {"name": "big_text", "arguments": {"size": a.size}}})
            walls.append(time.monotonic() - t0)
            assert len(line) > a.size
        proc.stdin.close()
        proc.wait(10)
        rows.append(("the stdio server on its own pipes, raw JSON lines (reference)", statistics.median(walls), None))
    finally:
        factory.teardown()
        for pr in procs:
            pr.terminate()
            pr.wait(10)
    build = "release" if "release" in a.bin_dir else "debug"
    print(f"| {a.size / (1 << 20):.0f} MiB result ({build} build, median of {a.runs}) | wall | proxy CPU |")
    print("| --- | ---: | ---: |")
    for label, wall, cpu in rows:
        print(f"| {label} | {wall:.2f} s | {'' if cpu is None else f'{cpu:.2f} s'} |")


if __name__ == "__main__":
    main()
