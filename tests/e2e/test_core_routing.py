"""routing_mode "direct": every upstream tool is listed as server__tool and callable directly."""

from __future__ import annotations

import pytest

from e2e_support import (BUILTIN_TOOLS, fixture_server, make_config, mcp_client_session, result_text, run_async,
                         time_server)


@pytest.fixture
def direct(proxy, python_bin):
    return proxy(make_config([fixture_server("fixture"), time_server("time")], routing_mode="direct"))


def test_direct_tools_list(direct):
    async def body():
        async with direct.client() as s:
            return await s.list_tools()
    tools = {t.name: t for t in run_async(body).tools}
    fixture_names = {"echo", "add", "sleep", "crash", "get_env", "list_env", "read_file", "write_file", "alloc",
                     "big", "raw_result", "whoami"}
    assert {f"fixture__{n}" for n in fixture_names} <= set(tools), sorted(tools)
    assert {"time__get_current_time", "time__convert_time"} <= set(tools)
    assert set(BUILTIN_TOOLS) <= set(tools)
    assert len(tools) == 12 + 2 + len(BUILTIN_TOOLS), sorted(tools)
    echo = tools["fixture__echo"]
    assert "Echo the given text back unchanged." in echo.description
    schema = getattr(echo, "input_schema", None) or getattr(echo, "inputSchema")
    assert schema["required"] == ["text"]


def test_direct_tools_list_keeps_the_upstreams_bytes(direct):
    """Each upstream tool is listed as the upstream sent it: same keys in the same order, same
    values, only the name prefixed (the time server is the Python SDK's, whose key order is not
    alphabetical)."""
    import json
    import subprocess
    from e2e_support import time_server as _time, http
    entry = _time("time")
    msgs = [{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "direct", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}]
    proc = subprocess.Popen([entry["command"], *entry["args"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        for m in msgs:
            proc.stdin.write(json.dumps(m) + "\n")
            proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            reply = json.loads(line, object_pairs_hook=list)
            if dict(reply).get("id") == 1:
                break
    finally:
        proc.stdin.close()
        proc.wait(10)
    upstream = dict(dict(reply)["result"])["tools"]
    s = direct.session()
    r = s.post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
    listed = dict(dict(json.loads(r.body, object_pairs_hook=list))["result"])["tools"]
    by_name = {dict(t)["name"]: t for t in listed}
    assert upstream, reply
    for t in upstream:
        name = dict(t)["name"]
        renamed = [(k, f"time__{v}" if k == "name" else v) for k, v in t]
        assert by_name[f"time__{name}"] == renamed, (by_name[f"time__{name}"], renamed)


def test_direct_call_through_real_client(direct):
    async def body():
        async with direct.client() as s:
            a = await s.call_tool("fixture__add", {"a": 40, "b": 2})
            t = await s.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
            return a, t
    a, t = run_async(body)
    assert "".join(c.text for c in a.content) == "42"
    assert "Europe/Paris" in "".join(c.text for c in t.content)


def test_direct_call_is_byte_exact(direct):
    raw = '{"content":[{"type":"text","text":"d"}],"structuredContent":{"v":1.0,"u":18446744073709551615}}'
    s = direct.session()
    r = s.request_raw("tools/call", {"name": "fixture__raw_result", "arguments": {"json": raw}})
    assert raw.encode() in r.body, r.text


def test_direct_unknown_tool(direct):
    s = direct.session()
    r = s.request("tools/call", {"name": "fixture__ecoh", "arguments": {"text": "x"}})
    assert "error" in r, r
    assert "fixture__echo" in r["error"]["message"] or "fixture:echo" in r["error"]["message"], r


def test_builtins_still_work_in_direct_mode(direct):
    s = direct.session()
    r = s.call_tool("fixture:echo", {"text": "both"})
    assert result_text(r["result"]) == "both"


def test_direct_mode_lists_added_server_after_reload(proxy):
    p = proxy(make_config([fixture_server("one")], routing_mode="direct"))
    s = p.session()
    before = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "one__echo" in before and "two__echo" not in before
    p.write_config(make_config([fixture_server("one"), fixture_server("two")], routing_mode="direct"))
    p.wait_ready(["one", "two"], timeout=20)
    after = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "two__echo" in after
