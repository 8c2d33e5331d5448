"""MCP 2026-07-28 through the gateway (issue 11 item 6): the official SDK 2.3 client in its default
'auto' mode sends `server/discover` first; the gateway answers it, so the client negotiates
2026-07-28 and then speaks sessionless requests (the `_meta` envelope and the `Mcp-*` headers).
Tools, the built-in `retrieve_tools`/`call_tool`, resources and prompts work over the HTTP and the
stdio front end; the raw wire is checked too (headers, -32022 with `supported`, -32020)."""

from __future__ import annotations

import json

from e2e_support import (SERVERS_DIR, bin_dir, client_callbacks, fixture_server, http, make_config, python_server, run_async,
                         wait_until)

MODERN = "2026-07-28"
HANDSHAKE = ["2025-03-26", "2025-06-18", "2025-11-25"]



def _py(name: str) -> dict:
    return python_server(name, [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", name])


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def _exercise(client) -> dict:
    """Everything the test asserts on, read through `client` (connected to the gateway)."""
    out: dict = {"version": client.protocol_version}
    # The upstream's tools come up after the gateway: search until it is there.
    import anyio
    for _ in range(100):
        found = await client.call_tool("retrieve_tools", {"query": "reverse the characters of a text"})
        names = [t["name"] for t in (found.structured_content or {}).get("tools", [])]
        if "docs:reverse_text" in names:
            break
        await anyio.sleep(0.2)
    out["found"] = names
    out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
    out["reversed"] = _text(await client.call_tool("call_tool", {"name": "docs:reverse_text", "args": {"text": "stressed"}}))
    out["unknown"] = await client.call_tool("call_tool", {"name": "docs:no_such_tool", "args": {}})
    resources = (await client.list_resources()).resources
    out["resources"] = sorted(str(r.uri) for r in resources)
    out["templates"] = sorted(t.uri_template for t in (await client.list_resource_templates()).resource_templates)
    readme = next(str(r.uri) for r in resources if str(r.uri).endswith("readme"))
    out["readme"] = [c.text for c in (await client.read_resource(readme)).contents]
    out["prompts"] = sorted(p.name for p in (await client.list_prompts()).prompts)
    prompt = await client.get_prompt("docs:review_code", {"code": "x = 1", "language": "python"})
    out["prompt"] = [m.content.text for m in prompt.messages]
    return out


def _check(out: dict) -> None:
    assert out["version"] == MODERN, out
    assert "docs:reverse_text" in out["found"], out
    assert {"retrieve_tools", "call_tool"} <= set(out["tools"]), out
    assert out["reversed"] == "desserts", out
    # A model-readable refusal stays a tool result on the modern path too.
    assert out["unknown"].is_error, out
    assert out["resources"] == ["mcpproxy://docs/notes%3A%2F%2Freadme"], out
    assert out["templates"] == ["mcpproxy://docs/notes%3A%2F%2Fitem%2F{item_id}"], out
    assert out["readme"] == ["readme of docs"], out
    assert out["prompts"] == ["docs:review_code"], out
    assert out["prompt"] == ["Review this python code from docs:\nx = 1"], out


def test_sdk_client_negotiates_2026_over_http(proxy):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    p = proxy(make_config([_py("docs")]))

    async def body():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {p.api_key}"}) as hc:
            async with Client(streamable_http_client(p.mcp_url, http_client=hc)) as client:
                assert client.session.discover_result is not None
                assert client.session.initialize_result is None
                return await _exercise(client)
    _check(run_async(body))


def test_sdk_client_negotiates_2026_over_stdio(tmp_path, binaries):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([_py("docs")])))
    params = StdioServerParameters(
        command=str(bin_dir() / "mcpproxy"),
        args=["serve", "--stdio", "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        env={"HOME": str(tmp_path), "MCPPROXY_API_KEY": "stdio-test-key"})

    async def body():
        async with Client(params) as client:
            assert client.session.discover_result is not None
            return await _exercise(client)
    _check(run_async(body))


def test_legacy_mode_still_uses_the_handshake(proxy):
    """The same SDK forced to 'legacy' gets a session via initialize, as before."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    p = proxy(make_config([fixture_server("fx")]))

    async def body():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {p.api_key}"}) as hc:
            async with Client(streamable_http_client(p.mcp_url, http_client=hc), mode="legacy") as client:
                return client.protocol_version, sorted(t.name for t in (await client.list_tools()).tools)
    version, tools = run_async(body)
    assert version == "2025-11-25"
    assert "retrieve_tools" in tools


def _envelope(version: str = MODERN) -> dict:
    return {"io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-e2e", "version": "1"}}


def _post(p, method: str, params: dict, headers: dict | None = None, token: str | None = "default"):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        h["Authorization"] = f"Bearer {p.api_key if token == 'default' else token}"
    h.update(headers or {})
    return http("POST", p.mcp_url, {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, h)


def test_raw_server_discover_and_refusals(proxy):
    p = proxy(make_config([fixture_server("fx")]))
    meta = {"_meta": _envelope()}
    ok = _post(p, "server/discover", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "server/discover"})
    assert ok.status == 200, ok
    assert "mcp-session-id" not in ok.headers, ok
    r = ok.json()["result"]
    assert r["supportedVersions"] == HANDSHAKE + [MODERN], r
    assert r["resultType"] == "complete" and r["ttlMs"] == 0 and r["cacheScope"] == "private", r
    assert set(r["capabilities"]) == {"tools", "resources", "prompts", "completions"}, r
    assert r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpproxy", r

    # An unsupported version: -32022 naming every version the gateway speaks.
    bad = _post(p, "server/discover", {"_meta": _envelope("2099-01-01")},
                {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "server/discover"})
    assert bad.status == 400, bad
    err = bad.json()["error"]
    assert err["code"] == -32022, err
    assert err["data"] == {"supported": HANDSHAKE + [MODERN], "requested": "2099-01-01"}, err

    # Headers that disagree with the body: -32020.
    mism = _post(p, "tools/list", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call"})
    assert mism.status == 400 and mism.json()["error"]["code"] == -32020, mism
    name = _post(p, "tools/call", {**meta, "name": "retrieve_tools", "arguments": {"query": "x"}},
                 {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "call_tool"})
    assert name.status == 400 and name.json()["error"]["code"] == -32020, name
    # No envelope: -32602.
    bare = _post(p, "tools/list", {}, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"})
    assert bare.status == 400 and bare.json()["error"]["code"] == -32602, bare

    # A sessionless request works, with the fields the 2026 schema requires.
    tl = _post(p, "tools/list", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"})
    assert tl.status == 200, tl
    res = tl.json()["result"]
    assert res["resultType"] == "complete" and res["ttlMs"] == 0 and res["cacheScope"] == "private", res
    assert "retrieve_tools" in [t["name"] for t in res["tools"]], res
    call = _post(p, "tools/call", {**meta, "name": "retrieve_tools", "arguments": {"query": "echo"}},
                 {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "retrieve_tools"})
    assert call.status == 200 and call.json()["result"]["resultType"] == "complete", call

    # Authentication applies exactly as on the session path.
    anon = _post(p, "server/discover", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "server/discover"},
                 token=None)
    assert anon.status == 401, anon
    wrong = _post(p, "tools/list", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"},
                  token="not-a-key")
    assert wrong.status == 401, wrong

    # The handshake-era path is unchanged: an unknown header version on a non-modern body is -32600.
    legacy = _post(p, "tools/list", {}, {"MCP-Protocol-Version": "2024-01-01"})
    assert legacy.status == 400 and legacy.json()["error"]["code"] == -32600, legacy


def test_agent_token_scope_applies_to_sessionless_requests(proxy):
    p = proxy(make_config([fixture_server("a"), fixture_server("b")]))
    token = p.create_token("only-a", "--servers", "a")
    meta = {"_meta": _envelope()}
    hdr = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "retrieve_tools"}

    def search():
        r = _post(p, "tools/call", {**meta, "name": "retrieve_tools", "arguments": {"query": "echo", "limit": 50}},
                  hdr, token=token)
        assert r.status == 200, r
        names = [t["name"] for t in r.json()["result"]["structuredContent"]["tools"]]
        return names if any(n.startswith("a:") for n in names) else None
    names = wait_until(search, 30, 0.3, "server a's tools")
    assert names and all(n.startswith("a:") for n in names), names
    # Write/destructive built-ins stay hidden below the token's intent ceiling (read).
    tl = _post(p, "tools/list", meta, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}, token=token)
    tools = [t["name"] for t in tl.json()["result"]["tools"]]
    assert "call_tool_destructive" not in tools and "upstream_servers" not in tools, tools
    # A tool of server b, outside the token's scope, is refused as a readable tool result.
    other = _post(p, "tools/call", {**meta, "name": "call_tool", "arguments": {"name": "b:echo", "args": {}}},
                  {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "call_tool"}, token=token)
    assert other.status == 200, other
    assert other.json()["result"]["isError"] is True, other


def test_sampling_elicitation_and_roots_reach_a_sessionless_client_as_input_required(proxy):
    """SEP-2322: the SDK 2.3 client in 'auto' mode has no session to receive requests on. The
    upstream's sampling, elicitation and roots requests (asked one after the other during one
    tool call) come back as `input_required` results; the client's driver answers each and
    retries with the requestState, and the upstream's call completes with the client's answers.
    A server without the grant is still refused; a forged or foreign requestState is refused."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    def flow(name: str) -> dict:
        return python_server(name, [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", name, "--flow-tools"])
    p = proxy(make_config([flow("docs") | {"allow_client_requests": ["sampling", "elicitation", "roots"]}, flow("plain")]))
    seen: dict = {}

    async def body():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {p.api_key}"}) as hc:
            async with Client(streamable_http_client(p.mcp_url, http_client=hc), **client_callbacks(seen)) as client:
                assert client.protocol_version == MODERN
                import anyio
                for _ in range(100):
                    found = await client.call_tool("retrieve_tools", {"query": "ask the client"})
                    if "docs:ask_client" in [t["name"] for t in (found.structured_content or {}).get("tools", [])]:
                        break
                    await anyio.sleep(0.2)
                allowed = await client.call_tool("call_tool", {"name": "docs:ask_client", "args": {"question": "6 x 7?"}})
                refused = await client.call_tool("call_tool", {"name": "plain:sample_only", "args": {"question": "hi"}})
                return allowed, refused
    allowed, refused = run_async(body)
    assert not allowed.is_error, _text(allowed)
    assert _text(allowed) == "model: forty-two; confirmed: True; roots: file:///work/project", _text(allowed)
    assert seen == {"sampling": "6 x 7?", "elicitation": "Proceed?", "roots": True}, seen
    assert _text(refused).startswith("refused:") and "allow_client_requests" in _text(refused), _text(refused)

    # The raw wire: the first answer is input_required with the upstream's request; a retry
    # with another credential, another tool or a made-up state is refused; the owner's retry
    # gets the next question.
    caps = {"sampling": {}, "elicitation": {}, "roots": {}}

    def post(params: dict, token: str, rid: int) -> dict:
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {
            **params, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                "io.modelcontextprotocol/clientCapabilities": caps}}}
        name = params.get("name", "")
        r = http("POST", p.mcp_url, json.dumps(body).encode(), {
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name}, timeout=60)
        assert r.status == 200, (r.status, r.text)
        text = r.text
        if text.lstrip().startswith("event:") or text.lstrip().startswith("data:"):
            text = [l[5:] for l in text.splitlines() if l.startswith("data:")][-1]
        return json.loads(text)

    call = {"name": "call_tool", "arguments": {"name": "docs:ask_client", "args": {"question": "raw?"}}}
    first = post(call, p.api_key, 1)["result"]
    assert first["resultType"] == "input_required", first
    [(key, question)] = list(first["inputRequests"].items())
    assert question["method"] == "sampling/createMessage", question
    assert question["params"]["messages"][0]["content"]["text"] == "raw?", question
    state = first["requestState"]
    assert len(state) > 40, state
    answer = {"role": "assistant", "content": {"type": "text", "text": "raw answer"}, "model": "m"}
    token = p.create_token("other-agent", "--intent", "write")
    foreign = post({**call, "inputResponses": {key: answer}, "requestState": state}, token, 2)
    assert foreign["error"]["code"] == -32602 and "requestState" in foreign["error"]["message"], foreign
    other_tool = {"name": "call_tool", "arguments": {"name": "docs:reverse_text", "args": {"text": "x"}}}
    mismatch = post({**other_tool, "inputResponses": {key: answer}, "requestState": state}, p.api_key, 3)
    assert "error" in mismatch, mismatch
    forged = post({**call, "inputResponses": {key: answer}, "requestState": "mcpx-" + "0" * 64}, p.api_key, 4)
    assert "error" in forged, forged
    second = post({**call, "inputResponses": {key: answer}, "requestState": state}, p.api_key, 5)["result"]
    assert second["resultType"] == "input_required", second
    assert [q["method"] for q in second["inputRequests"].values()] == ["elicitation/create"], second


def test_input_required_over_the_stdio_front_end(tmp_path, binaries):
    """The same multi round-trip through `serve --stdio` with the SDK 2.3 client in 'auto' mode."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    server = python_server("docs", [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", "docs", "--flow-tools"])
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(make_config([server | {"allow_client_requests": ["sampling", "elicitation", "roots"]}],
                                          routing_mode="direct")))
    params = StdioServerParameters(
        command=str(bin_dir() / "mcpproxy"),
        args=["serve", "--stdio", "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        env={"HOME": str(tmp_path), "MCPPROXY_API_KEY": "stdio-test-key"})
    seen: dict = {}

    async def body():
        async with Client(params, **client_callbacks(seen)) as client:
            assert client.protocol_version == MODERN
            import anyio
            for _ in range(100):
                if "docs__ask_client" in [t.name for t in (await client.list_tools()).tools]:
                    break
                await anyio.sleep(0.2)
            return await client.call_tool("docs__ask_client", {"question": "over stdio?"})
    result = run_async(body)
    assert not result.is_error, _text(result)
    assert _text(result) == "model: forty-two; confirmed: True; roots: file:///work/project", _text(result)
    assert seen == {"sampling": "over stdio?", "elicitation": "Proceed?", "roots": True}, seen


def test_a_question_is_never_put_to_another_credential_holder(proxy):
    """Upstream sessions are shared and an upstream's request does not say which call asks it.
    Token A parks an interactive call whose question it does not answer; token B, with a
    session that declared sampling, then calls a tool on the same server that asks too: B's
    question must not reach A (nor A's reach B), so it is refused upstream while another
    credential holder has a call in flight there; A's pending question is still its own."""
    def flow(name: str) -> dict:
        return python_server(name, [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", name, "--flow-tools"])
    p = proxy(make_config([flow("docs") | {"allow_client_requests": ["sampling", "elicitation", "roots"]}]))
    # The flow tools carry no annotations, so MCP counts them as destructive.
    a = p.create_token("agent-a", "--intent", "destructive")
    b = p.create_token("agent-b", "--intent", "destructive")
    caps = {"sampling": {}, "elicitation": {}, "roots": {}}
    call = {"name": "call_tool", "arguments": {"name": "docs:ask_client", "args": {"question": "for A only"}}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        **call, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": caps}}}
    hdr = {"Authorization": f"Bearer {a}", "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "call_tool"}

    def post(message: dict) -> dict:
        r = http("POST", p.mcp_url, json.dumps(message).encode(), hdr, timeout=60)
        assert r.status == 200, (r.status, r.text)
        text = r.text
        if "data:" in text:
            text = [l[5:] for l in text.splitlines() if l.startswith("data:")][-1]
        return json.loads(text)

    def first():
        res = post(body).get("result", {})
        return res if res.get("resultType") == "input_required" else None
    parked = wait_until(first, 30, 0.3, "A's interactive call to ask its question")
    [(key, question)] = list(parked["inputRequests"].items())
    assert question["params"]["messages"][0]["content"]["text"] == "for A only", question

    seen: dict = {}
    try:
        import mcp.types as types
    except ImportError:  # pragma: no cover
        import mcp_types as types

    async def sampling(context, params):
        seen["b"] = params.messages[0].content.text
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="B's answer"), model="m")

    async def as_b():
        from e2e_support import mcp_client_session
        async with mcp_client_session(p.mcp_url, token=b, sampling_callback=sampling) as s:
            return await s.call_tool("call_tool", {"name": "docs:sample_only", "args": {"question": "for B only"}})
    result = run_async(as_b)
    text = _text(result)
    assert text.startswith("refused:") and "different credentials" in text, text
    assert "b" not in seen, seen
    # A's retry still gets A's own question, and answering it completes A's call.
    answer = {"role": "assistant", "content": {"type": "text", "text": "A's answer"}, "model": "m"}
    retry = {**body, "id": 2, "params": {**body["params"], "inputResponses": {key: answer}, "requestState": parked["requestState"]}}
    nxt = post(retry)["result"]
    assert nxt["resultType"] == "input_required", nxt
    assert [q["method"] for q in nxt["inputRequests"].values()] == ["elicitation/create"], nxt
