"""Many clients at once: calls to one upstream run concurrently, JSON-RPC ids of different
sessions never mix, and tool changes reach clients (notifications/tools/list_changed)."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from urllib.parse import urlsplit

from e2e_support import fixture_server, make_config, mcp_client_session, result_text, run_async, tool_result_json, wait_until


def test_same_ids_in_many_sessions_never_mix(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    sessions = [p.session() for _ in range(8)]

    def worker(k: int) -> list[str]:
        s = sessions[k]
        errors = []
        for i in range(25):
            raw = '{"content":[{"type":"text","text":"s%d-%d"}],"structuredContent":{"k":%d.0}}' % (k, i, k)
            # Every session uses the same JSON-RPC id 7: the proxy must keep them apart.
            r = s.post({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                "name": "call_tool", "arguments": {"name": "fixture:raw_result", "args": {"json": raw}}}})
            if raw.encode() not in r.body or json.loads(r.body)["id"] != 7:
                errors.append(f"session {k} call {i}: {r.text[:200]}")
        return errors
    with ThreadPoolExecutor(8) as pool:
        problems = [e for errs in pool.map(worker, range(8)) for e in errs]
    assert not problems, problems[:5]


def test_calls_to_one_upstream_run_concurrently(proxy):
    """The fixture answers `sleep` on a thread pool; the proxy must not serialize calls to it."""
    p = proxy(make_config([fixture_server("fixture")]))
    n, ms = 6, 1500
    sessions = [p.session() for _ in range(n)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        replies = list(pool.map(lambda s: s.call_tool("fixture:sleep", {"ms": ms}), sessions))
    elapsed = time.monotonic() - t0
    assert all(result_text(r["result"]) == "slept" for r in replies), replies
    serial = n * ms / 1000
    assert elapsed < serial * 0.6, f"{n} concurrent {ms} ms calls took {elapsed:.1f}s (serial would be {serial:.0f}s)"


def test_concurrent_real_clients(proxy):
    p = proxy(make_config([fixture_server("fixture")]))

    async def one(k: int):
        async with p.client() as s:
            out = []
            for i in range(5):
                r = await s.call_tool("call_tool", {"name": "fixture:add", "args": {"a": k, "b": i}})
                out.append("".join(c.text for c in r.content))
            return out

    async def body():
        import asyncio
        return await asyncio.gather(*(one(k) for k in range(4)))
    results = run_async(body)
    assert results == [[str(k + i) for i in range(5)] for k in range(4)]


def _open_event_stream(mcp_url: str, session_id: str, token: str):
    parts = urlsplit(mcp_url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", parts.path, headers={"Accept": "text/event-stream", "Mcp-Session-Id": session_id,
                                             "MCP-Protocol-Version": "2025-06-18", "Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    return conn, resp


def test_tools_file_change_reaches_clients(proxy, tmp_path):
    zebra = {"name": "zebra_stripes", "description": "Count the stripes of a zebra in a photo.",
             "inputSchema": {"type": "object", "properties": {"photo": {"type": "string"}}},
             "annotations": {"readOnlyHint": True}}
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps([zebra]))
    p = proxy(make_config([fixture_server("fixture", "--tools-file", str(tools_file))]))
    assert p.server("fixture")["tool_count"] == 13
    s = p.session()
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "zebra stripes", "limit": 1}})
    assert tool_result_json(r["result"])["tools"][0]["name"] == "fixture:zebra_stripes"
    assert result_text(s.call_tool("fixture:zebra_stripes", {})["result"]) == "zebra_stripes called"

    conn, resp = _open_event_stream(p.mcp_url, s.session_id, p.api_key)
    assert resp.status == 200, (resp.status, resp.read()[:300])
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    events: list[str] = []

    def reader():
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                events.append(line.decode(errors="replace"))
        except (OSError, socket.timeout, ValueError, AttributeError):  # closed at the end of the test
            return
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        time.sleep(0.3)
        # The upstream drops a tool (announced by its notifications/tools/list_changed): the visible
        # tool set shrinks, so clients must be told and the tool must be gone.
        tools_file.write_text("[]")
        wait_until(lambda: p.server("fixture")["tool_count"] == 12, 20, 0.1, "the tool to be dropped")
        wait_until(lambda: any("notifications/tools/list_changed" in e for e in events), 20, 0.1,
                   "notifications/tools/list_changed on the GET /mcp stream")
        r = s.call_tool("fixture:zebra_stripes", {})
        assert r["result"].get("isError") is True, r  # unknown tool: a result the model can read (SEP-1303)
        r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "zebra stripes", "limit": 3}})
        assert all(t["name"] != "fixture:zebra_stripes" for t in tool_result_json(r["result"])["tools"])
        # A tool that appears later is listed by the REST API (the security layer may hold it).
        tools_file.write_text(json.dumps([dict(zebra, name="okapi_spots")]))
        wait_until(lambda: p.server("fixture")["tool_count"] == 13, 20, 0.1, "the new tool to be listed")
        names = {t["name"] for t in p.rest("GET", "/api/v1/servers/fixture/tools").json()["tools"]}
        assert "okapi_spots" in names
    finally:
        conn.close()


def test_event_stream_needs_a_known_session(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    conn, resp = _open_event_stream(p.mcp_url, "ffffffffffffffffffffffffffffffff", p.api_key)
    try:
        assert resp.status == 404, resp.status
    finally:
        conn.close()
