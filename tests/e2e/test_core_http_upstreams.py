"""Remote upstreams: a streamable-HTTP and a legacy-SSE MCP server from the real Python SDK."""

from __future__ import annotations

import json

import pytest

from e2e_support import (fixture_server, http_server, make_config, mcp_client_session, result_text, run_async,
                         tool_result_json)


@pytest.mark.parametrize("transport,protocol", [("streamable-http", "http"), ("sse", "sse")])
def test_http_upstream(proxy, py_http_upstream, transport, protocol):
    url = py_http_upstream(transport, name=f"py-{protocol}")
    p = proxy(make_config([http_server("remote", url, protocol), fixture_server("fixture")]))
    servers = {s["name"]: s for s in p.servers()}
    assert servers["remote"]["protocol"] == protocol
    assert servers["remote"]["tool_count"] == 4, servers["remote"]
    assert not servers["remote"].get("pid"), "a remote upstream has no local process"

    tools = p.rest("GET", "/api/v1/servers/remote/tools")
    assert tools.status == 200, tools
    assert {t["name"] for t in tools.json()["tools"]} == {"reverse_text", "multiply", "transport_name", "wait_ms"}

    async def body():
        async with p.client() as s:
            found = await s.call_tool("retrieve_tools", {"query": "reverse characters palindrome", "limit": 3})
            mul = await s.call_tool("call_tool", {"name": "remote:multiply", "args": {"a": 6, "b": 7}})
            tn = await s.call_tool("call_tool", {"name": "remote:transport_name", "args": {}})
            rev = await s.call_tool("call_tool", {"name": "remote:reverse_text", "args": {"text": "abc€"}})
            return found, mul, tn, rev
    found, mul, tn, rev = run_async(body)
    top = json.loads("".join(c.text for c in found.content))["tools"][0]
    assert top["name"] == "remote:reverse_text" and top["server"] == "remote"
    assert not mul.is_error and "".join(c.text for c in mul.content) == "42"
    assert "".join(c.text for c in tn.content) == transport
    assert "".join(c.text for c in rev.content) == "€cba"


def test_http_upstream_structured_content_passthrough(proxy, py_http_upstream):
    url = py_http_upstream("streamable-http")
    p = proxy(make_config([http_server("remote", url, "http")]))
    s = p.session()
    r = s.call_tool("remote:multiply", {"a": 3, "b": 5})
    assert r["result"]["structuredContent"] == {"result": 15}, r
    assert result_text(r["result"]) == "15"


def test_http_upstream_down_at_start_is_reported(proxy):
    # Nothing listens on this port: the server must not be "ready", and the error must say why.
    from e2e_support import free_port
    url = f"http://127.0.0.1:{free_port()}/mcp"
    p = proxy(make_config([http_server("gone", url, "http"), fixture_server("fixture")]), wait=["fixture"])
    from e2e_support import wait_until
    s = wait_until(lambda: (lambda x: x if x and x["state"] in ("failed", "restarting") and x["last_error"] else None)(
        p.server("gone")), 30, 0.2, "the unreachable server to report an error")
    assert s["state"] != "ready"
    session = p.session()
    r = session.call_tool("gone:anything", {})
    assert "error" in r or r.get("result", {}).get("isError"), r
    # The healthy server is unaffected.
    assert result_text(session.call_tool("fixture:echo", {"text": "ok"})["result"]) == "ok"
    found = session.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "echo", "limit": 5}})
    assert any(t["name"] == "fixture:echo" for t in tool_result_json(found["result"])["tools"])


@pytest.mark.parametrize("transport,protocol", [
    ("streamable-http", "http"),
    ("sse", "sse")])
def test_http_upstream_dies_mid_call(proxy, py_http_upstream, transport, protocol):
    import threading
    import time
    url = py_http_upstream(transport)
    p = proxy(make_config([http_server("remote", url, protocol)]))
    s = p.session()
    out = {}

    def call():
        t0 = time.monotonic()
        try:
            out["reply"] = s.call_tool("remote:wait_ms", {"ms": 30000}, timeout=90)
        except BaseException as exc:  # reported below
            out["exc"] = exc
        out["secs"] = time.monotonic() - t0
    th = threading.Thread(target=call)
    th.start()
    time.sleep(1.5)
    py_http_upstream.kill_all()
    th.join(30)
    assert not th.is_alive(), "the call hangs after its HTTP upstream died"
    assert "exc" not in out, out
    reply = out["reply"]
    assert "error" in reply or reply.get("result", {}).get("isError"), reply
    text = reply["error"]["message"] if "error" in reply else result_text(reply["result"])
    assert "remote" in text, text
    assert out["secs"] < 25, f"ended only after {out['secs']:.0f}s"
