"""call_tool passes the upstream's result through byte-exact (raw HTTP, exact bytes compared),
large results, protocol versions, and JSON vs SSE replies."""

from __future__ import annotations

import json

import pytest

from e2e_support import SUPPORTED_PROTOCOL_VERSIONS, RawSession, fixture_server, make_config, result_text

RAW_RESULTS = {
    "numbers": '{"content":[{"type":"text","text":"n"}],"structuredContent":'
               '{"one":1.0,"u64max":18446744073709551615,"negzero":-0.0,"exp":1E+2,"small":5e-324,'
               '"big":123456789012345678901234567890}}',
    "strings": '{"content":[{"type":"text","text":"data:,hello"},'
               '{"type":"text","text":"caf\\u00e9 \\ud83d\\ude00 \\u2028 \\/ \\"q\\" \\t"}],"isError":false}',
    "raw-unicode": '{"content":[{"type":"text","text":"café 😀 \u2028 line"}]}',
    "nulls-and-empties": '{"content":[],"structuredContent":{"description":null,"a":[],"o":{},"t":true,"f":false}}',
    "key-order": '{"z":1,"content":[{"text":"x","type":"text"}],"a":2,"_meta":{"k":"v"}}',
    "whitespace": '{ "content" : [ { "type" : "text" , "text" : "spaced" } ] }',
}




@pytest.fixture
def fixture_proxy(proxy):
    return proxy(make_config([fixture_server("fixture")]))


@pytest.mark.parametrize("case", sorted(RAW_RESULTS))
def test_call_tool_result_is_byte_exact(fixture_proxy, case):
    raw = RAW_RESULTS[case]
    s = fixture_proxy.session()
    r = s.request_raw("tools/call", {"name": "call_tool",
                                     "arguments": {"name": "fixture:raw_result", "args": {"json": raw}}})
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert raw.encode() in r.body, (
        f"upstream result not passed through byte-exact.\nsent by upstream: {raw}\ngot body: {r.text}")
    msg = json.loads(r.body)
    assert msg["result"] == json.loads(raw)
    assert msg["jsonrpc"] == "2.0" and msg["id"] == 1


def test_byte_exact_in_a_pipeline_of_calls(fixture_proxy):
    """Many different results on one session: ids and bodies must never be mixed up."""
    s = fixture_proxy.session()
    for i in range(40):
        raw = '{"content":[{"type":"text","text":"call %d"}],"structuredContent":{"n":%d.0}}' % (i, i)
        r = s.request_raw("tools/call", {"name": "call_tool",
                                         "arguments": {"name": "fixture:raw_result", "args": {"json": raw}}})
        assert raw.encode() in r.body, r.text


@pytest.mark.parametrize("size", [100_000, 1_500_000])
def test_large_result(fixture_proxy, size):
    s = fixture_proxy.session()
    r = s.call_tool("fixture:big", {"bytes": size})
    assert "result" in r, str(r)[:500]
    assert result_text(r["result"]) == "x" * size


def test_large_arguments(fixture_proxy):
    text = "é" * 300_000  # 600 kB of UTF-8, under the 4 MiB body limit
    s = fixture_proxy.session()
    r = s.call_tool("fixture:echo", {"text": text})
    assert result_text(r["result"]) == text


@pytest.mark.parametrize("version", SUPPORTED_PROTOCOL_VERSIONS)
def test_protocol_versions(fixture_proxy, version):
    s = RawSession(fixture_proxy.mcp_url, token=fixture_proxy.api_key, protocol_version=version).initialize()
    assert s.initialize_result["protocolVersion"] == version
    assert "tools" in s.initialize_result["capabilities"]
    assert s.initialize_result["serverInfo"]["name"]
    r = s.call_tool("fixture:add", {"a": 20, "b": 22})
    assert result_text(r["result"]) == "42"


def test_unsupported_protocol_version_is_negotiated_down(fixture_proxy):
    s = RawSession(fixture_proxy.mcp_url, token=fixture_proxy.api_key, protocol_version="2024-01-01")
    r = s.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-01-01", "capabilities": {}, "clientInfo": {"name": "old", "version": "0"}}})
    # The spec: the server answers with a version it supports (the client may then disconnect).
    assert r.status == 200, r
    assert r.json()["result"]["protocolVersion"] in SUPPORTED_PROTOCOL_VERSIONS


def test_sse_reply_when_client_accepts_only_event_stream(fixture_proxy):
    s = fixture_proxy.session()
    msg = {"jsonrpc": "2.0", "id": 99, "method": "tools/call",
           "params": {"name": "call_tool", "arguments": {"name": "fixture:echo", "args": {"text": "via sse"}}}}
    r = s.post(msg, accept="text/event-stream")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/event-stream"), r.headers
    reply = r.json()
    assert reply["id"] == 99 and result_text(reply["result"]) == "via sse"
    # And JSON when JSON is accepted.
    r = s.post(msg, accept="application/json, text/event-stream")
    assert r.headers["content-type"].startswith("application/json"), r.headers


def test_ping(fixture_proxy):
    s = fixture_proxy.session()
    r = s.request("ping")
    assert r.get("result") == {}, r


@pytest.mark.parametrize("raw_id", ['"req-\\u03b1 x"', '"with \\"quotes\\""', "0", "-1", "9007199254740993", '""'])
def test_client_id_comes_back_byte_exact(fixture_proxy, raw_id):
    s = fixture_proxy.session()
    body = ('{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"call_tool",'
            '"arguments":{"name":"fixture:echo","args":{"text":"id"}}}}' % raw_id)
    r = s.post(body)
    assert r.status == 200, r
    assert b'"id":' + raw_id.encode() + b"," in r.body or b'"id":' + raw_id.encode() + b"}" in r.body, r.text
    assert result_text(r.json()["result"]) == "id"


def test_batch(fixture_proxy):
    s = fixture_proxy.session()
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"},
             {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}},
             {"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": {
                 "name": "call_tool", "arguments": {"name": "fixture:add", "args": {"a": 1, "b": 2}}}}]
    r = s.post(batch)
    assert r.status == 200, r
    replies = {m["id"]: m for m in r.json()}
    assert set(replies) == {1, "two"}, r.text  # no reply to the notification
    assert replies[1]["result"] == {}
    assert result_text(replies["two"]["result"]) == "3"
