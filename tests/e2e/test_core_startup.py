"""Right after the proxy starts, servers may still be starting: the first search or call must wait
for them (bounded) instead of answering "unknown tool"."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from e2e_support import bin_dir, fixture_server, make_config, result_text, tool_result_json

# The fixture sleeps this long before reading stdin: it is "starting" while the first call comes in.
SLOW = ("--startup-delay-ms", "2500")
BUG = ("product bug: right after start, a call or search for a server that is still starting gets "
       "-32602 'unknown tool ...; no tools are available' at once (ServerManager.waitForStartup returns "
       "immediately)")


def test_first_call_waits_for_starting_server(proxy):
    p = proxy(make_config([fixture_server("slow", *SLOW)]), wait=False)
    s = p.session()
    r = s.call_tool("slow:echo", {"text": "patience"})
    assert "result" in r, r
    assert result_text(r["result"]) == "patience"


def test_first_search_waits_for_starting_server(proxy):
    p = proxy(make_config([fixture_server("slow", *SLOW)]), wait=False)
    s = p.session()
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "echo text", "limit": 3}})
    tools = tool_result_json(r["result"])["tools"]
    assert tools and tools[0]["name"] == "slow:echo", tools


def test_first_call_waits_in_stdio_mode(tmp_path, binaries):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([fixture_server("slow", *SLOW)])))
    proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                             "--data-dir", str(tmp_path / "data")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / "err", "wb"),
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                    "name": "call_tool", "arguments": {"name": "slow:echo", "args": {"text": "patience"}}}}]
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in msgs).encode())
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        reply = json.loads(proc.stdout.readline())
        while "id" not in reply:  # tools/list_changed when the slow server comes up
            reply = json.loads(proc.stdout.readline())
        assert reply["id"] == 2 and result_text(reply.get("result", {})) == "patience", reply
    finally:
        proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_retrieve_tools_answers_from_ready_servers_and_names_those_starting(proxy):
    """With a server that takes longer to start than retrieve_tools waits, the answer comes from
    the servers that are ready and says which are still starting (issue 10)."""
    p = proxy(make_config([fixture_server("fast"), fixture_server("late", "--startup-delay-ms", "25000")]), wait=False)
    p.wait_ready(["fast"])
    s = p.session()
    started = time.monotonic()
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "echo text", "limit": 5}})
    assert time.monotonic() - started < 20
    out = tool_result_json(r["result"])
    assert {t["server"] for t in out["tools"]} == {"fast"}, out
    assert out.get("starting") == ["late"], out
    assert "late" in out["note"] and "starting" in out["note"], out
