"""`mcpproxy serve --stdio`: one MCP client over stdin/stdout, with the real SDK stdio client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time


from e2e_support import (ProcId, bin_dir, descendants, fixture_server, make_config, run_async, wait_gone,
                         wait_until)


def test_stdio_mode_with_real_client(tmp_path, binaries):
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("fixture")])))
    data = tmp_path / "data"
    params = StdioServerParameters(
        command=str(bin_dir() / "mcpproxy"),
        args=["serve", "--stdio", "--config", str(cfg), "--data-dir", str(data), "--log-level", "debug"],
        env={"HOME": str(tmp_path), "MCPPROXY_API_KEY": "stdio-test-key"})
    seen: set[ProcId] = set()
    errlog = open(tmp_path / "stderr.log", "w")

    async def body():
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                tools = await s.list_tools()
                # Wait (bounded) until the upstream is up; the first-call behaviour itself is
                # tested in test_core_startup.py.
                deadline = time.monotonic() + 30
                while True:
                    try:
                        r = await s.call_tool("call_tool", {"name": "fixture:echo", "args": {"text": "over stdio"}})
                        if not r.is_error:
                            break
                        last = r
                    except Exception as exc:  # noqa: BLE001 - MCPError while the server starts
                        last = exc
                    if time.monotonic() > deadline:
                        raise AssertionError(f"fixture:echo never answered over --stdio: {last!r}")
                    await asyncio.sleep(0.2)
                found = await s.call_tool("retrieve_tools", {"query": "add integers", "limit": 1})
                # Record the proxy's process tree (mcpproxy is a child of this test process).
                seen.update(descendants(os.getpid()))
                return tools, r, found
    tools, r, found = run_async(body)
    names = {t.name for t in tools.tools}
    assert {"retrieve_tools", "call_tool", "upstream_servers"} <= names
    assert not r.is_error, r
    assert "".join(c.text for c in r.content) == "over stdio"
    assert json.loads("".join(c.text for c in found.content))["tools"][0]["name"] == "fixture:add"
    assert any("mcpproxy-fixture" in p.cmdline for p in seen), seen
    left = wait_gone(seen, 5)
    assert not left, f"processes left after the stdio client closed: {left}"


def test_stdio_mode_exits_on_eof(tmp_path, binaries):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("fixture")])))
    proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                             "--data-dir", str(tmp_path / "data")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / "err", "wb"),
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        proc.stdin.write((json.dumps(init) + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline()
        reply = json.loads(line)
        assert reply["id"] == 1 and reply["result"]["protocolVersion"] == "2025-06-18", reply
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        proc.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        while "id" not in reply:  # notifications (tools/list_changed) may come first
            reply = json.loads(proc.stdout.readline())
        assert reply["id"] == 2 and any(t["name"] == "call_tool" for t in reply["result"]["tools"]), reply
        wait_until(lambda: any("mcpproxy-fixture" in d.cmdline for d in descendants(proc.pid)), 30, 0.1,
                   "the fixture to be started")
        tree = descendants(proc.pid)
        proc.stdin.close()
        rc = proc.wait(20)
        assert rc == 0, f"exit status {rc}"
        assert not wait_gone(tree, 3)
        # stdout carried only JSON-RPC: after the replies, at most notifications (the fixture's
        # tools appearing).
        rest = [json.loads(l) for l in proc.stdout.read().splitlines() if l.strip()]
        assert all(m.get("method") == "notifications/tools/list_changed" for m in rest), rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_stdio_mode_with_stdout_to_a_file(tmp_path, binaries):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("fixture")])))
    out = tmp_path / "stdout.jsonl"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                                 "--data-dir", str(tmp_path / "data")],
                                stdin=subprocess.PIPE, stdout=sink, stderr=open(tmp_path / "err", "wb"),
                                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        try:
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            proc.stdin.write((json.dumps(init) + "\n").encode())
            proc.stdin.flush()
            wait_until(lambda: out.read_bytes().endswith(b"\n") or proc.poll() is not None, 20, 0.05, "a reply")
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    reply = json.loads(out.read_bytes().splitlines()[0])
    assert reply["id"] == 1 and "result" in reply, reply


def test_stdio_mode_with_files_for_stdin_and_stdout(tmp_path, binaries):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("fixture")])))
    requests = tmp_path / "in.jsonl"
    requests.write_text("".join(json.dumps(m) + "\n" for m in [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]))
    out = tmp_path / "out.jsonl"
    with open(requests, "rb") as src, open(out, "wb") as sink:
        proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                                 "--data-dir", str(tmp_path / "data")],
                                stdin=src, stdout=sink, stderr=open(tmp_path / "err", "wb"),
                                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        try:
            rc = proc.wait(30)  # EOF on the input file ends the session
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert rc == 0, (rc, (tmp_path / "err").read_text()[-2000:])
    replies = {m["id"]: m for m in map(json.loads, out.read_bytes().splitlines()) if "id" in m}
    assert set(replies) == {1, 2}, replies
    assert any(t["name"] == "call_tool" for t in replies[2]["result"]["tools"])


def test_stdout_carries_only_protocol_with_a_quarantined_server(tmp_path, binaries):
    """Every layer's logs go to stderr/main.log: in --stdio mode stdout is the MCP channel, and a
    quarantined server (which the security layer logs about) must not corrupt it."""
    import subprocess as sp
    server = fixture_server("held", quarantined=False)
    server.pop("quarantined")  # a new server: quarantined, and logged as such
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([server])))
    msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "call_tool", "arguments": {"name": "held:echo", "args": {"text": "x"}}}}]
    out = sp.run([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
                 input="".join(json.dumps(m) + "\n" for m in msgs).encode(), capture_output=True, timeout=60,
                 env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    lines = [l for l in out.stdout.decode().splitlines() if l.strip()]
    replies = [r for r in map(json.loads, lines) if "id" in r]  # every stdout line is a JSON-RPC message
    assert [r["id"] for r in replies] == [1, 2], replies
    assert replies[1]["result"]["isError"], replies[1]
    assert "quarantined" in replies[1]["result"]["content"][0]["text"], replies[1]
    assert "quarantined" in out.stderr.decode()


def test_stdio_client_is_told_when_upstream_tools_appear(tmp_path, binaries):
    """A client that lists tools once at start learns (notifications/tools/list_changed) when the
    upstreams come up, in direct mode as over HTTP; an over-long line is refused, not buffered."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("slow", "--startup-delay-ms", "1500")], routing_mode="direct",
                                          max_request_body="64k")))
    proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                             "--data-dir", str(tmp_path / "data")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / "err", "wb"),
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        def send(m) -> None:
            proc.stdin.write((m if isinstance(m, str) else json.dumps(m)).encode() + b"\n")
            proc.stdin.flush()
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert json.loads(proc.stdout.readline())["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(proc.stdout.readline())
            seen.append(msg)
            if msg.get("method") == "notifications/tools/list_changed":
                break
        assert seen[-1].get("method") == "notifications/tools/list_changed", seen
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        reply = json.loads(proc.stdout.readline())
        assert any(t["name"] == "slow__echo" for t in reply["result"]["tools"]), reply
        send('{"jsonrpc":"2.0","id":3,"method":"ping","params":{"pad":"' + "x" * 200_000 + '"}}')
        send({"jsonrpc": "2.0", "id": 4, "method": "ping"})
        first = json.loads(proc.stdout.readline())
        assert first.get("error", {}).get("code") == -32700, first
        assert json.loads(proc.stdout.readline()) == {"jsonrpc": "2.0", "id": 4, "result": {}}
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
