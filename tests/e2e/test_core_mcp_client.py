"""The gateway through the real MCP Python SDK client: initialize, tools/list, retrieve_tools,
call_tool, unknown tools (streamable HTTP at /mcp)."""

from __future__ import annotations

import json

import pytest

from e2e_support import (BUILTIN_TOOLS, SUPPORTED_PROTOCOL_VERSIONS, fixture_server, make_config,
                         mcp_client_session, result_text, run_async, time_server, tool_result_json)


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _structured(result):
    if getattr(result, "structured_content", None) is not None:
        return result.structured_content
    if getattr(result, "structuredContent", None) is not None:
        return result.structuredContent
    return None


@pytest.fixture
def fixture_and_time(proxy, python_bin):
    return proxy(make_config([fixture_server("fixture"), time_server("time")]))


def test_initialize_and_list_builtin_tools(fixture_and_time):
    p = fixture_and_time

    async def body():
        async with p.client() as s:
            init = s.initialize_result if hasattr(s, "initialize_result") else None
            tools = await s.list_tools()
            return init, tools
    init, tools = run_async(body)
    if init is not None:
        assert init.protocol_version in SUPPORTED_PROTOCOL_VERSIONS
        assert init.capabilities.tools is not None, "the gateway must announce the tools capability"
    names = {t.name for t in tools.tools}
    assert set(BUILTIN_TOOLS) <= names, f"built-in tools missing: {set(BUILTIN_TOOLS) - names}"
    # retrieve_tools routing mode: upstream tools are not listed directly.
    assert not any("__" in n for n in names), f"direct tools listed in retrieve_tools mode: {names}"
    for t in tools.tools:
        assert t.description, f"{t.name} has no description"
        schema = getattr(t, "input_schema", None) or getattr(t, "inputSchema", None)
        assert schema and schema.get("type") == "object", f"{t.name}: inputSchema {schema}"


def test_retrieve_tools_finds_time_tool(fixture_and_time):
    p = fixture_and_time

    async def body():
        async with p.client() as s:
            return await s.call_tool("retrieve_tools", {"query": "current time timezone", "limit": 5})
    result = run_async(body)
    assert not result.is_error, _text(result)
    from_text = json.loads(_text(result))
    structured = _structured(result)
    assert structured is not None, "retrieve_tools must return structuredContent"
    assert structured == from_text, "structuredContent and the JSON text must agree"
    tools = structured["tools"]
    assert 0 < len(tools) <= 5
    top = tools[0]
    assert top["name"] == "time:get_current_time", f"ranking: {[t['name'] for t in tools]}"
    assert top["server"] == "time"
    assert "time" in top["description"].lower()
    assert "timezone" in json.dumps(top["inputSchema"])
    scores = [t["score"] for t in tools]
    assert all(isinstance(s, (int, float)) for s in scores)
    assert scores == sorted(scores, reverse=True), f"results not ordered by score: {scores}"


@pytest.mark.parametrize("query,expected", [
    ("echo text back", "fixture:echo"),
    ("add two integers sum", "fixture:add"),
    ("environment variable value", "fixture:get_env"),
    ("convert time between timezones", "time:convert_time"),
])
def test_retrieve_tools_ranking(fixture_and_time, query, expected):
    s = fixture_and_time.session()
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": query, "limit": 3}})
    assert "result" in r, r
    tools = tool_result_json(r["result"])["tools"]
    assert tools and tools[0]["name"] == expected, f"{query!r} → {[t['name'] for t in tools]}"


def test_retrieve_tools_limit(fixture_and_time):
    s = fixture_and_time.session()
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "tool", "limit": 2}})
    tools = tool_result_json(r["result"])["tools"]
    assert len(tools) <= 2
    r = s.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "file", "limit": 20}})
    names = [t["name"] for t in tool_result_json(r["result"])["tools"]]
    assert {"fixture:read_file", "fixture:write_file"} <= set(names)


def test_call_tool_through_real_client(fixture_and_time):
    p = fixture_and_time

    async def body():
        async with p.client() as s:
            echo = await s.call_tool("call_tool", {"name": "fixture:echo", "args": {"text": "héllo wörld"}})
            add = await s.call_tool("call_tool", {"name": "fixture:add", "args": {"a": 2, "b": 40}})
            add_json = await s.call_tool("call_tool", {"name": "fixture:add", "args_json": '{"a": 1, "b": 2}'})
            now = await s.call_tool("call_tool", {"name": "time:get_current_time", "args": {"timezone": "UTC"}})
            return echo, add, add_json, now
    echo, add, add_json, now = run_async(body)
    assert _text(echo) == "héllo wörld" and not echo.is_error
    assert _text(add) == "42"
    assert _text(add_json) == "3"
    assert not now.is_error, _text(now)
    payload = json.loads(_text(now))
    assert payload["timezone"] == "UTC" and "datetime" in payload


def test_unknown_tool_error_lists_close_names(fixture_and_time):
    s = fixture_and_time.session()
    # Inside call_tool an unknown name is a tool result with isError (SEP-1303), so the model can
    # correct itself; the text names the closest tools.
    r = s.call_tool("fixture:ecko", {"text": "x"})
    assert r["result"].get("isError") is True, f"expected an isError result, got {r}"
    msg = result_text(r["result"])
    assert "fixture:ecko" in msg and "fixture:echo" in msg, msg
    r = s.call_tool("nosuchserver:echo", {})
    assert r["result"].get("isError") is True, r
    assert "nosuchserver" in result_text(r["result"])


def test_unknown_tool_via_real_client_is_a_readable_result(fixture_and_time):
    p = fixture_and_time

    async def body():
        async with p.client() as s:
            res = await s.call_tool("call_tool", {"name": "time:get_curent_time", "args": {}})
            assert getattr(res, "is_error", None) or getattr(res, "isError", None), res
            return "".join(c.text for c in res.content)
    message = run_async(body)
    assert "time:get_current_time" in message, message


def test_unknown_builtin_tool_is_an_error(fixture_and_time):
    s = fixture_and_time.session()
    r = s.request("tools/call", {"name": "no_such_builtin", "arguments": {}})
    assert "error" in r or r.get("result", {}).get("isError") is True, r
