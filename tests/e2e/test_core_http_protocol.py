"""The /mcp endpoint at the HTTP level: sessions (missing 400, unknown 404, DELETE), the Origin
check, JSON-RPC errors (-32700, -32600, -32601), the body limit (413)."""

from __future__ import annotations

import json

import pytest

from e2e_support import MCP_ACCEPT, RawSession, fixture_server, http, make_config, result_text


@pytest.fixture
def p(proxy):
    return proxy(make_config([fixture_server("fixture")]))


def _post(p, body, session=None, headers=None):
    h = {"Content-Type": "application/json", "Accept": MCP_ACCEPT, "Authorization": f"Bearer {p.api_key}", **(headers or {})}
    if session:
        h["Mcp-Session-Id"] = session
    return http("POST", p.mcp_url, body, h)


LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def test_initialize_returns_session_id(p):
    s = p.session()
    assert len(s.session_id) >= 16
    s2 = p.session()
    assert s2.session_id != s.session_id


def test_missing_session_is_400(p):
    r = _post(p, LIST)
    assert r.status == 400, r


def test_unknown_session_is_404(p):
    r = _post(p, LIST, session="0123456789abcdef0123456789abcdef")
    assert r.status == 404, r


def test_delete_ends_session(p):
    s = p.session()
    assert "result" in s.request("tools/list")
    r = s.delete()
    assert r.status in (200, 204), r
    r = s.request_raw("tools/list")
    assert r.status == 404, r
    # Other sessions are unaffected.
    assert "result" in p.session().request("tools/list")


def test_delete_unknown_session_is_404(p):
    r = http("DELETE", p.mcp_url, None, {"Mcp-Session-Id": "feedfacefeedfacefeedfacefeedface",
                                         "Authorization": f"Bearer {p.api_key}"})
    assert r.status == 404, r


@pytest.mark.parametrize("origin", ["http://evil.example", "https://attacker.test:8443", "null",
                                    "http://localhost.evil.example", "http://localhost@evil.example",
                                    "http://evil.example#localhost", "http://127.0.0.1.nip.io"])
def test_foreign_origin_is_403(p, origin):
    r = http("POST", p.mcp_url, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
        {"Accept": MCP_ACCEPT, "Origin": origin})
    assert r.status == 403, f"Origin {origin}: {r!r}"
    assert "mcp-session-id" not in r.headers
    s = p.session()
    r = http("POST", p.mcp_url, LIST, {"Accept": MCP_ACCEPT, "Content-Type": "application/json",
                                       "Mcp-Session-Id": s.session_id, "Origin": origin})
    assert r.status == 403, f"Origin {origin} on an existing session: {r!r}"


@pytest.mark.parametrize("origin", ["http://localhost", "http://localhost:3000", "http://127.0.0.1:5173",
                                    "http://[::1]:3000"])
def test_local_origin_is_allowed(p, origin):
    s = RawSession(p.mcp_url, token=p.api_key, headers={"Origin": origin}).initialize()
    assert "result" in s.request("tools/list")


def test_allowed_origins_config(proxy):
    q = proxy(make_config([fixture_server("fixture")], allowed_origins=["https://app.example"]))
    s = RawSession(q.mcp_url, token=q.api_key, headers={"Origin": "https://app.example"}).initialize()
    assert "result" in s.request("tools/list")
    r = http("POST", q.mcp_url, LIST, {"Accept": MCP_ACCEPT, "Content-Type": "application/json",
                                       "Origin": "https://other.example"})
    assert r.status == 403


@pytest.mark.parametrize("body", [b"{not json", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"',
                                  b"\xff\xfe garbage"])
def test_malformed_json_is_parse_error(p, body):
    s = p.session()
    r = _post(p, body, session=s.session_id)
    assert r.status in (200, 400), r
    msg = r.json()
    assert msg["error"]["code"] == -32700, msg
    assert msg["id"] is None


def test_malformed_json_without_session_is_parse_error(p):
    r = _post(p, b"{{{")
    assert r.status in (200, 400), r
    assert r.json()["error"]["code"] == -32700


@pytest.mark.parametrize("message", [
    {"jsonrpc": "1.0", "id": 5, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 5},
    {"jsonrpc": "2.0", "id": 5, "method": 42},
    {"jsonrpc": "2.0", "id": {"x": 1}, "method": "tools/list"},
    "just a string",
    17,
])
def test_invalid_request(p, message):
    s = p.session()
    r = _post(p, json.dumps(message), session=s.session_id)
    assert r.status in (200, 400), r
    msg = r.json()
    assert msg["error"]["code"] == -32600, msg


def test_unknown_method(p):
    s = p.session()
    r = s.request_raw("no/such/method", {})
    assert r.status == 200, r
    msg = r.json()
    assert msg["error"]["code"] == -32601 and msg["id"] == 1, msg
    assert "no/such/method" in msg["error"]["message"]


def test_tools_call_with_bad_params(p):
    s = p.session()
    r = s.request("tools/call", {"name": "call_tool", "arguments": {"args": {}}})  # no "name"
    assert ("error" in r and r["error"]["code"] == -32602) or r.get("result", {}).get("isError"), r


def test_body_over_limit_is_413(p):
    s = p.session()
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "call_tool", "arguments": {"name": "fixture:echo", "args": {"text": "x" * (4 * 1024 * 1024 + 10)}}}})
    r = _post(p, big, session=s.session_id)
    assert r.status == 413, r
    # The session still works afterwards.
    assert result_text(s.call_tool("fixture:echo", {"text": "after"})["result"]) == "after"


def test_body_just_under_limit_is_accepted(p):
    s = p.session()
    envelope = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "call_tool", "arguments": {"name": "fixture:echo", "args": {"text": ""}}}})
    text = "y" * (4 * 1024 * 1024 - len(envelope) - 64)
    body = envelope.replace('"text": ""', json.dumps({"text": text})[1:-1])
    assert len(body) < 4 * 1024 * 1024
    r = _post(p, body, session=s.session_id)
    assert r.status == 200, r
    assert result_text(r.json()["result"]) == text


def test_configured_body_limit(proxy):
    q = proxy(make_config([fixture_server("fixture")], max_request_body="64k"))
    s = q.session()
    assert result_text(s.call_tool("fixture:echo", {"text": "z" * 60_000})["result"]) == "z" * 60_000
    r = _post(q, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "call_tool", "arguments": {"name": "fixture:echo", "args": {"text": "z" * 70_000}}}}),
        session=s.session_id)
    assert r.status == 413, r


def test_notification_is_accepted_with_202(p):
    s = p.session()
    r = s.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 123}})
    assert r.status == 202, r
    assert r.body == b""


def test_get_without_session_is_rejected(p):
    r = http("GET", p.mcp_url, None, {"Accept": "text/event-stream", "Authorization": f"Bearer {p.api_key}"})
    assert r.status in (400, 405), r

