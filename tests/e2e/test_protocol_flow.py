"""Messages about a request cross the gateway (issue 11): a client's progressToken reaches the
upstream and its progress comes back under the client's token; notifications/cancelled stops the
upstream call (the upstream is told, and sees its task cancelled); upstream log messages reach the
client with the server's name in `logger`. Real SDK server upstream; real SDK client over HTTP and
raw JSON lines over `serve --stdio`."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from e2e_support import SERVERS_DIR, bin_dir, client_callbacks, make_config, mcp_client_session, python_server, run_async, wait_until


def _py(name: str) -> dict:
    return python_server(name, [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", name, "--flow-tools"])


def test_progress_and_log_messages_reach_the_http_client(proxy):
    p = proxy(make_config([_py("docs")]))
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[tuple[str | None, object]] = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    async def on_log(params):
        logs.append((params.logger, params.data))

    async def body():
        import anyio
        async with mcp_client_session(p.mcp_url, token=p.api_key, logging_callback=on_log) as s:
            r = await s.call_tool("call_tool", {"name": "docs:count_with_progress", "args": {"steps": 4}},
                                  progress_callback=on_progress)
            # Log messages travel on the request's stream: give the last one a moment.
            for _ in range(50):
                if len(logs) >= 4:
                    break
                await anyio.sleep(0.1)
            return r
    r = run_async(body)
    assert not r.is_error, r
    assert "".join(c.text for c in r.content) == "counted to 4"
    assert [v for v, _, _ in progress] == [1, 2, 3, 4], progress
    assert all(t == 4 for _, t, _ in progress) and progress[-1][2] == "step 4", progress
    assert [d for _, d in logs[:4]] == ["counted 1", "counted 2", "counted 3", "counted 4"], logs
    assert all(lg == "docs:counter" for lg, _ in logs), logs


def test_cancel_over_http_stops_the_upstream_call(proxy, tmp_path):
    p = proxy(make_config([_py("docs")]))
    marker = tmp_path / "cancel-marker"
    s = p.session()
    out: dict = {}

    def call():
        t0 = time.monotonic()
        out["reply"] = s.post({"jsonrpc": "2.0", "id": 9001, "method": "tools/call", "params": {
            "name": "call_tool", "arguments": {"name": "docs:wait_for_cancel", "args": {"marker": str(marker)}}}},
            timeout=90)
        out["took"] = time.monotonic() - t0
    t = threading.Thread(target=call, daemon=True)
    t.start()
    time.sleep(1.5)  # the call is in flight upstream
    r = s.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9001, "reason": "test"}})
    assert r.status == 202, r
    t.join(20)
    assert not t.is_alive(), "the cancelled call did not end"
    assert out["took"] < 15, out
    # The open POST is ended with a "request cancelled" error (the client has stopped waiting).
    assert out["reply"].json()["error"]["code"] == -32800, out["reply"]
    wait_until(lambda: marker.exists() and marker.read_text() == "cancelled", 10, 0.1,
               "the upstream to see its task cancelled")
    # The call is recorded as cancelled, not as a failure or a timeout.
    def recorded():
        acts = p.rest("GET", "/api/v1/activity?server=docs").json()["activity"]
        return [a for a in acts if a.get("tool") == "wait_for_cancel"] or None
    acts = wait_until(recorded, 10, 0.2, "the activity record")
    assert acts[0]["outcome"] == "cancelled", acts
    # The session still works after a cancellation.
    reply = s.call_tool("docs:multiply", {"a": 6, "b": 7})
    assert "42" in json.dumps(reply), reply


def test_a_client_that_goes_away_cancels_its_streamed_call(proxy, tmp_path):
    """A POST answered as an event stream (the client accepts SSE and asked for progress) gets a
    keepalive comment every few seconds, so a client that closes its connection is noticed even
    while the call sends nothing, and the call is cancelled upstream."""
    import socket
    from urllib.parse import urlsplit
    p = proxy(make_config([_py("docs")]))
    marker = tmp_path / "gone-marker"
    s = p.session()
    wait_until(lambda: "42" in json.dumps(s.call_tool("docs:multiply", {"a": 6, "b": 7})), 30, 0.2, "docs ready")
    body = json.dumps({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
        "name": "call_tool", "arguments": {"name": "docs:wait_for_cancel", "args": {"marker": str(marker)}},
        "_meta": {"progressToken": "gone"}}}).encode()
    u = urlsplit(p.mcp_url)
    headers = {**s.headers("application/json, text/event-stream"), "Host": f"{u.hostname}:{u.port}",
               "Content-Length": str(len(body))}
    sock = socket.create_connection((u.hostname, u.port), timeout=10)
    sock.sendall((f"POST {u.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + body)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "the stream did not start"
    time.sleep(1.5)  # the call is in flight upstream
    sock.close()
    wait_until(lambda: marker.exists() and marker.read_text() == "cancelled", 30, 0.2,
               "the upstream to see the call of a departed client cancelled")


class _StdioClient:
    """`mcpproxy serve --stdio` spoken in raw JSON lines: every message it writes is kept in
    `lines`; `answer` (optional) is called with each server-to-client request and returns the
    result to send back."""

    def __init__(self, tmp_path, config: dict, capabilities: dict | None = None, answer=None):
        cfg = tmp_path / "cfg.json"
        cfg.write_text(json.dumps(config))
        self.proc = subprocess.Popen([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg),
                                      "--data-dir", str(tmp_path / "data")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / "err", "wb"),
                                     env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        self.lines: list[dict] = []
        self.lock = threading.Lock()
        self.answer = answer
        threading.Thread(target=self._read, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": capabilities or {}, "clientInfo": {"name": "t", "version": "1"}}})
        wait_until(lambda: self.reply(1), 20, 0.05, "initialize reply")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self) -> None:
        for raw in self.proc.stdout:
            m = json.loads(raw)
            with self.lock:
                self.lines.append(m)
            if self.answer and "method" in m and "id" in m:
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": self.answer(m)})

    def send(self, m) -> None:
        self.proc.stdin.write(json.dumps(m).encode() + b"\n")
        self.proc.stdin.flush()

    def reply(self, i):
        """The response to request `i` (not a request of the proxy's that reuses the number)."""
        with self.lock:
            return next((m for m in self.lines if m.get("id") == i and "method" not in m), None)

    def call(self, i: int, name: str, args: dict, meta: dict | None = None) -> None:
        params = {"name": "call_tool", "arguments": {"name": name, "args": args}}
        if meta:
            params["_meta"] = meta
        self.send({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params})

    def call_until_ok(self, name: str, args: dict, first_id: int = 100) -> dict:
        """Calls `name` until it answers without isError (the upstream may still be starting)."""
        n = [first_id]

        def answered():
            n[0] += 1
            self.call(n[0], name, args)
            r = wait_until(lambda: self.reply(n[0]), 30, 0.05, "a reply")
            return r if not r["result"].get("isError") else None
        return wait_until(answered, 40, 0.3, f"{name} to answer")

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def test_progress_and_cancel_over_stdio(tmp_path, binaries):
    marker = tmp_path / "stdio-marker"
    c = _StdioClient(tmp_path, make_config([_py("docs")]))
    try:
        c.call_until_ok("docs:multiply", {"a": 2, "b": 3})
        c.call(2, "docs:count_with_progress", {"steps": 3}, meta={"progressToken": "tok-7"})
        r = wait_until(lambda: c.reply(2), 30, 0.05, "the progress call's reply")
        assert not r["result"].get("isError"), r
        with c.lock:
            prog = [m["params"] for m in c.lines if m.get("method") == "notifications/progress"]
            logs = [m["params"] for m in c.lines if m.get("method") == "notifications/message"]
            order = [m.get("id") or m.get("method") for m in c.lines]
        assert [x["progressToken"] for x in prog] == ["tok-7"] * 3, prog
        assert [x["progress"] for x in prog] == [1, 2, 3], prog
        # Every progress notification came before the response.
        assert max(i for i, m in enumerate(order) if m == "notifications/progress") < order.index(2), order
        assert {x["logger"] for x in logs} == {"docs:counter"}, logs

        c.call(3, "docs:wait_for_cancel", {"marker": str(marker)})
        time.sleep(1.5)
        c.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3, "reason": "changed my mind"}})
        wait_until(lambda: marker.exists() and marker.read_text() == "cancelled", 10, 0.1,
                   "the upstream to see its task cancelled")
        c.send({"jsonrpc": "2.0", "id": 4, "method": "ping"})
        wait_until(lambda: c.reply(4), 10, 0.05, "ping reply")
        time.sleep(0.5)
        assert c.reply(3) is None, "a cancelled request got a response over stdio"
    finally:
        c.close()


def test_ten_megabyte_results_cross_from_every_upstream_transport(proxy, py_http_upstream):
    """Byte-exact over stdio, streamable HTTP and SSE upstreams; the time each took is printed
    (the comparison is in docs/benchmarks.md, not asserted)."""
    from e2e_support import http_server
    size = 10 << 20
    http_url = py_http_upstream("streamable-http", "bh", "--flow-tools")
    sse_url = py_http_upstream("sse", "bs", "--flow-tools")
    p = proxy(make_config([_py("bio"), http_server("bh", http_url, "http"), http_server("bs", sse_url, "sse")]))
    s = p.session()
    expected = ("0123456789abcdef" * (size // 16 + 1))[:size]
    took = {}
    for server in ("bio", "bh", "bs"):
        t0 = time.monotonic()
        r = s.call_tool(f"{server}:big_text", {"size": size}, timeout=120)
        took[server] = time.monotonic() - t0
        assert not r["result"].get("isError"), str(r)[:300]
        assert r["result"]["content"][0]["text"] == expected, server
    print(f"\n10 MB result: stdio {took['bio']:.2f} s, streamable HTTP {took['bh']:.2f} s, SSE {took['bs']:.2f} s")


def _sdk_client(p, **callbacks):
    """An initialized SDK ClientSession over streamable HTTP with the given callbacks (SDK 1.x or 2.x)."""
    return mcp_client_session(p.mcp_url, token=p.api_key, **callbacks)


def test_sampling_elicitation_and_roots_reach_the_calling_client_when_allowed(proxy):
    seen: dict = {}
    p = proxy(make_config([_py("docs") | {"allow_client_requests": ["sampling", "elicitation", "roots"]},
                           _py("plain")]))

    async def body():
        async with _sdk_client(p, **client_callbacks(seen)) as s:
            allowed = await s.call_tool("call_tool", {"name": "docs:ask_client", "args": {"question": "6 x 7?"}})
            refused = await s.call_tool("call_tool", {"name": "plain:sample_only", "args": {"question": "hi"}})
            return allowed, refused
    allowed, refused = run_async(body)
    text = "".join(c.text for c in allowed.content)
    assert not allowed.is_error, text
    assert text == "model: forty-two; confirmed: True; roots: file:///work/project", text
    assert seen == {"sampling": "6 x 7?", "elicitation": "Proceed?", "roots": True}, seen
    # A server without the grant gets an error it can read; the client is never asked.
    rtext = "".join(c.text for c in refused.content)
    assert rtext.startswith("refused:") and "allow_client_requests" in rtext, rtext


def test_sampling_over_stdio_front_end(tmp_path, binaries):
    def answer(request):  # as a client would
        assert request["method"] == "sampling/createMessage", request
        return {"role": "assistant", "content": {"type": "text", "text": "from stdio client"}, "model": "m"}
    c = _StdioClient(tmp_path, make_config([_py("docs") | {"allow_client_requests": ["sampling"]}]),
                     capabilities={"sampling": {}}, answer=answer)
    try:
        r = c.call_until_ok("docs:sample_only", {"question": "q"})
        assert r["result"]["content"][0]["text"] == "model: from stdio client", r
        with c.lock:
            asked = [m for m in c.lines if m.get("method") == "sampling/createMessage"]
        assert asked and asked[0]["params"]["messages"][0]["content"]["text"] == "q", asked
    finally:
        c.close()


def test_resource_subscriptions_are_federated(proxy):
    """resources/subscribe of a federated URI subscribes the upstream once; its
    notifications/resources/updated reaches the subscribed session with the federated URI;
    unsubscribe of the last session unsubscribes upstream."""
    from urllib.parse import quote
    p = proxy(make_config([_py("docs")]))
    updates: list[str] = []

    async def on_message(message):
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            updates.append(str(root.params.uri))

    uri = "mcpproxy://docs/" + quote("notes://item/7", safe="-._~")
    import importlib.metadata
    if importlib.metadata.version("mcp").startswith("1."):
        # SDK 1.x servers never declare resources.subscribe: the gateway says so instead of
        # subscribing to a server that did not offer it.
        async def refused():
            async with _sdk_client(p) as s:
                try:
                    await s.subscribe_resource(uri)
                except Exception as exc:  # noqa: BLE001 - McpError of either SDK
                    return str(exc)
                return "subscribed"
        assert "does not support subscriptions" in run_async(refused)
        return

    async def body():
        import anyio
        async with _sdk_client(p, message_handler=on_message) as s:
            caps = s.get_server_capabilities() if hasattr(s, "get_server_capabilities") else None
            await s.subscribe_resource(uri)
            r1 = await s.call_tool("call_tool", {"name": "docs:touch_note", "args": {"item_id": "7"}})
            for _ in range(50):
                if updates:
                    break
                await anyio.sleep(0.1)
            await s.unsubscribe_resource(uri)
            r2 = await s.call_tool("call_tool", {"name": "docs:touch_note", "args": {"item_id": "7"}})
            return caps, r1, r2
    caps, r1, r2 = run_async(body)
    assert "".join(c.text for c in r1.content) == "notified notes://item/7", r1
    assert updates == [uri], updates
    # After the last session unsubscribed, the upstream no longer has the subscription.
    assert "nobody subscribed" in "".join(c.text for c in r2.content), r2
