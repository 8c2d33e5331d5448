"""The authenticated front door (docs/security.md): every /mcp request carries a credential, agent
tokens are scoped to servers and an intent ceiling on every path, sessions belong to the identity
that made them, nothing added over MCP runs before a person approves it, and a hostile upstream
calling the gateway's own /mcp gets nowhere."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from http.client import HTTPSConnection
from pathlib import Path

import pytest

from e2e_support import (MCP_ACCEPT, SERVERS_DIR, RawSession, bin_dir, config_servers, fixture_server, free_port,
                         http, make_config, python_server, result_text, run_async, tool_result_json, wait_until)

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}}
SANDBOX_VENV = Path(os.environ.get("MCPPROXY_SANDBOX_VENV", "/opt/mcpproxy-test/venv-sandbox"))


def _post(url: str, headers: dict[str, str] | None = None, body: dict = INIT):
    return http("POST", url, body, {"Content-Type": "application/json", "Accept": MCP_ACCEPT, **(headers or {})})


def _err(result) -> bool:
    """isError of an SDK CallToolResult (SDK 2.x: is_error; 1.x: isError)."""
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def _is_error(reply: dict) -> str:
    """The text of an isError tool result (fails when the reply is anything else)."""
    assert "result" in reply, f"expected an isError result, got {reply}"
    assert reply["result"].get("isError") is True, f"expected isError, got {reply}"
    return result_text(reply["result"])


# --------------------------------------------------------------------------------------------
# Credentials


def test_no_or_bad_credential_is_401_with_challenge(proxy):
    p = proxy(make_config([fixture_server("a")]))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + p.api_key},
                    {"X-API-Key": "nope"}, {"Authorization": f"Bearer {p.api_key}x"}):
        r = _post(p.mcp_url, headers)
        assert r.status == 401, (headers, r)
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers
        assert p.api_key not in r.text
    for method in ("GET", "DELETE"):
        r = http(method, p.mcp_url, None, {"Accept": "text/event-stream", "Mcp-Session-Id": "x"})
        assert r.status == 401, (method, r)
    # Both admin spellings work.
    assert _post(p.mcp_url, {"Authorization": f"Bearer {p.api_key}"}).status == 200
    assert _post(p.mcp_url, {"X-API-Key": p.api_key}).status == 200
    # REST: no key is 401 as before.
    assert p.rest("GET", "/api/v1/servers", key=None).status == 401
    # Keys never reach the logs.
    assert p.api_key not in p.all_logs()


def test_agent_token_lifecycle_cli_and_rest(proxy):
    p = proxy(make_config([fixture_server("a")]))
    token = p.create_token("ci-bot", "--servers", "a")
    s = p.session(token=token)
    assert "result" in s.call_tool("a:echo", {"text": "hi"})

    # Stored as a hash only: the value is in no listing and not in the database file.
    listed = p.rest("GET", "/api/v1/tokens").json()["tokens"]
    assert [t["name"] for t in listed] == ["ci-bot"], listed
    assert token not in json.dumps(listed)
    db = b"".join(f.read_bytes() for f in p.data_dir.rglob("*") if f.is_file())
    assert token.encode() not in db
    cli_list = p.cli("token", "list", "--json")
    assert cli_list.returncode == 0 and token not in cli_list.stdout and "ci-bot" in cli_list.stdout

    # An agent token is not an admin key: REST refuses it with 403 (valid credential, wrong route).
    r = p.rest("GET", "/api/v1/servers", key=token, auth="bearer")
    assert r.status == 403, r

    # Revoked by the CLI while the proxy runs: refused within a couple of seconds, session too.
    assert p.cli("token", "revoke", "ci-bot").returncode == 0
    wait_until(lambda: _post(p.mcp_url, {"Authorization": f"Bearer {token}"}).status == 401, 5, 0.1,
               "the revoked token to be refused")
    assert s.request_raw("tools/list").status == 401

    # REST-created token with a one-second lifetime: works, then expires.
    made = p.rest("POST", "/api/v1/tokens", body={"name": "short", "expires": 1, "intent": "read"})
    assert made.status == 200, made
    short = made.json()["token"]
    assert short.startswith("mcpx_")
    # (It may already be expired on a slow machine; what matters is that it ends refused.)
    wait_until(lambda: _post(p.mcp_url, {"Authorization": f"Bearer {short}"}).status == 401, 5, 0.2,
               "the expired token to be refused")
    assert p.rest("DELETE", "/api/v1/tokens/short").status == 200
    assert p.rest("DELETE", "/api/v1/tokens/short").status == 404
    # Bad input is refused with a reason.
    assert p.cli("token", "create", "x", "--intent", "root").returncode != 0
    assert p.cli("token", "create", "x", "--expires", "soon").returncode != 0
    assert p.rest("POST", "/api/v1/tokens", body={"servers": ["a"]}).status == 400
    assert token not in p.all_logs() and short not in p.all_logs()


def test_token_limited_to_one_server_sees_and_calls_nothing_else(proxy):
    p = proxy(make_config([fixture_server("a"), fixture_server("b")]))
    token = p.create_token("only-a", "--servers", "a", "--intent", "destructive")

    async def body():
        async with p.client(token=token) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "upstream_servers" not in names, names
            found = await s.call_tool("retrieve_tools", {"query": "echo file env add"})
            text = "".join(c.text for c in found.content)
            assert "a:echo" in text and "b:" not in text, text
            ok = await s.call_tool("call_tool", {"name": "a:echo", "args": {"text": "x"}})
            assert not _err(ok) and ok.content[0].text == "x"
            for via in ("call_tool", "call_tool_read", "call_tool_write", "call_tool_destructive"):
                r = await s.call_tool(via, {"name": "b:echo", "args": {"text": "x"}})
                assert _err(r), (via, r)
                msg = "".join(c.text for c in r.content)
                # Refused the same way as a name that does not exist, hinting only at a's tools.
                assert "b:get_env" not in msg and "b:read_file" not in msg, msg
            typo = await s.call_tool("call_tool", {"name": "b:ech", "args": {}})
            assert _err(typo) and "b:echo" not in "".join(c.text for c in typo.content)
    run_async(body)

    # The same refusal for a server that exists and one that does not (no existence oracle).
    raw = p.session(token=token)
    out_of_scope = _is_error(raw.call_tool("b:echo", {"text": "x"}))
    missing = _is_error(raw.call_tool("zz:echo", {"text": "x"}))
    assert out_of_scope.replace("b:echo", "zz:echo") == missing, (out_of_scope, missing)

    # Session reuse: a session belongs to the identity that created it.
    admin = p.session()
    stolen = RawSession(p.mcp_url, token=token)
    stolen.session_id = admin.session_id
    assert stolen.request_raw("tools/list").status == 404
    mine = RawSession(p.mcp_url, token=p.api_key)
    mine.session_id = raw.session_id
    assert mine.request_raw("tools/list").status == 404
    assert admin.request("tools/list")["result"]["tools"]
    assert len(admin.session_id) >= 32 and len(raw.session_id) >= 32


def test_direct_mode_lists_and_routes_only_the_tokens_servers(proxy):
    p = proxy(make_config([fixture_server("a"), fixture_server("b")], routing_mode="direct"))
    token = p.create_token("only-a", "--servers", "a", "--intent", "destructive")
    s = p.session(token=token)
    names = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "a__echo" in names and not any(n.startswith("b__") for n in names), names
    r = s.request("tools/call", {"name": "b__echo", "arguments": {"text": "x"}})
    assert "error" in r or r["result"].get("isError"), r
    assert "b__get_env" not in json.dumps(r)
    ok = s.request("tools/call", {"name": "a__echo", "arguments": {"text": "x"}})
    assert result_text(ok["result"]) == "x"
    admin = {t["name"] for t in p.session().request("tools/list")["result"]["tools"]}
    assert "b__echo" in admin


def test_intent_ceiling_of_a_read_only_token(proxy, tmp_path):
    p = proxy(make_config([fixture_server("a")]))
    token = p.create_token("reader", "--servers", "a")  # default intent: read
    s = p.session(token=token)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    msg = _is_error(s.call_tool("a:write_file", {"path": str(victim), "content": "gone"}))
    assert "intent" in msg.lower() or "read" in msg.lower(), msg
    # The routing tools above its ceiling are not even listed for it.
    listed = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "call_tool_read" in listed and not listed & {"call_tool_write", "call_tool_destructive"}, listed
    for via in ("call_tool_destructive", "call_tool_write"):
        r = s.call_tool("a:write_file", {"path": str(victim), "content": "gone"}, via=via)
        assert "error" in r or r["result"].get("isError"), r
    assert victim.read_text() == "keep"
    pid = p.server("a")["pid"]
    _is_error(s.call_tool("a:crash", {"code": 3}))
    assert p.server("a")["pid"] == pid, "a refused destructive call must not reach the server"
    assert result_text(s.call_tool("a:echo", {"text": "ok"}, via="call_tool_read")["result"]) == "ok"
    # The activity log names the caller of every call.
    wait_until(lambda: any(a.get("caller") == "token:reader" and a["tool"] == "echo"
                           for a in p.rest("GET", "/api/v1/activity?server=a").json()["activity"]),
               10, 0.1, "the call in the activity log with its caller")


# --------------------------------------------------------------------------------------------
# No process before a person says so


def _marker_server(name: str, marker: Path) -> dict:
    fixture = bin_dir() / "mcpproxy-fixture"
    return {"name": name, "command": "/bin/sh",
            "args": ["-c", f"touch {marker}; exec {fixture} --name {name}"], "protocol": "stdio"}


def test_server_added_over_mcp_has_no_process_until_approved(proxy, tmp_path):
    p = proxy(make_config([fixture_server("a")]))
    marker = tmp_path / "started"
    s = p.session()
    entry = _marker_server("evil", marker)
    added = s.request("tools/call", {"name": "upstream_servers", "arguments": {
        "operation": "add", "name": "evil", "command": entry["command"], "args": entry["args"],
        "isolation": {"mode": "none"}, "quarantined": False}})
    assert not added["result"].get("isError"), added
    assert tool_result_json(added["result"])["state"] == "awaiting_approval"
    listed = p.server("evil")
    assert listed["state"] == "awaiting_approval" and not listed.get("pid"), listed
    assert "evil" not in config_servers(p.read_config()), "an MCP addition must not become a config entry"

    # A reload of the config file does not start it either, nor does a restart request.
    p.write_config(make_config([fixture_server("a")]) | {"routing_mode": "retrieve_tools"})
    time.sleep(1.5)
    p.rest("POST", "/api/v1/servers/evil/restart")
    p.rest("POST", "/api/v1/servers/evil/enable")
    time.sleep(1.0)
    assert not marker.exists(), "a server added over MCP ran before approval"
    r = s.call_tool("evil:echo", {"text": "x"})
    assert "result" in r and r["result"]["isError"], r

    # A token without the upstream_servers permission cannot even see the tool.
    tok = p.create_token("agent", "--intent", "destructive")
    ts = p.session(token=tok)
    assert "upstream_servers" not in {t["name"] for t in ts.request("tools/list")["result"]["tools"]}
    r = ts.request("tools/call", {"name": "upstream_servers", "arguments": {"operation": "add", "name": "x", "command": "/bin/true"}})
    assert "error" in r or r["result"].get("isError"), r
    assert p.server("x") is None

    # First approval: it starts, quarantined (tools held). Second: its tools are released.
    r = p.rest("POST", "/api/v1/servers/evil/approve")
    assert r.status == 200, r
    wait_until(marker.exists, 15, 0.1, "the approved server to start")
    wait_until(lambda: (p.server("evil") or {}).get("state") == "ready", 20, 0.1, "evil to be ready")
    held = s.call_tool("evil:echo", {"text": "x"})
    assert held["result"]["isError"] and "approv" in result_text(held["result"]).lower(), held
    assert "evil" in config_servers(p.read_config())
    assert p.rest("POST", "/api/v1/servers/evil/approve").status == 200
    wait_until(lambda: "result" in (r := s.call_tool("evil:echo", {"text": "x"})) and not r["result"].get("isError"),
               15, 0.2, "evil's tools to be released by the second approval")


def test_rejecting_a_pending_server_removes_it(proxy, tmp_path):
    p = proxy(make_config([fixture_server("a")]))
    marker = tmp_path / "started"
    e = _marker_server("evil", marker)
    s = p.session()
    s.request("tools/call", {"name": "upstream_servers", "arguments": {"operation": "add", "name": "evil",
                                                                        "command": e["command"], "args": e["args"]}})
    assert p.server("evil")["state"] == "awaiting_approval"
    assert p.rest("DELETE", "/api/v1/servers/evil").status == 200
    assert p.server("evil") is None
    # It stays gone after a proxy restart (the state lives in the database).
    p.stop()
    p.proc = None
    p.start().wait_healthy()
    p.wait_ready(["a"])
    assert p.server("evil") is None and not marker.exists()


# --------------------------------------------------------------------------------------------
# Hostile upstreams calling the gateway


def _attack_requests(p, caller: str, via: RawSession, marker: Path) -> list[dict]:
    """Has the hostile upstream `caller` POST to the gateway's /mcp: initialize, then a tools/call of
    upstream_servers add with a shell command. Returns what the upstream saw."""
    seen = []
    evil_add = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "upstream_servers", "arguments": {
        "operation": "add", "name": "pwn", "command": "/bin/sh", "args": ["-c", f"touch {marker}"]}}}
    for body in (INIT, evil_add):
        r = via.call_tool(f"{caller}:http_request", {"url": p.mcp_url, "method": "POST", "body": json.dumps(body),
                                                     "headers": {"Content-Type": "application/json", "Accept": MCP_ACCEPT}})
        assert "result" in r and not r["result"].get("isError"), r
        seen.append(tool_result_json(r["result"]))
    return seen


def test_unconfined_upstream_calling_mcp_gets_401_and_starts_nothing(proxy, tmp_path):
    p = proxy(make_config([python_server("caller", [str(SERVERS_DIR / "http_caller.py")])]))
    marker = tmp_path / "pwned"
    seen = _attack_requests(p, "caller", p.session(), marker)
    for out in seen:
        assert out["status"] == 401, out
    time.sleep(1.0)
    assert not marker.exists()
    assert p.server("pwn") is None


def test_sandboxed_upstream_calling_mcp_gets_nowhere(proxy, tmp_path):
    python = SANDBOX_VENV / "bin" / "python"
    assert python.exists(), f"{python} missing: run scripts/setup.sh"
    d = Path("/tmp") / f"mcpx-e2e-auth-{os.getpid()}"
    d.mkdir(mode=0o755, exist_ok=True)
    script = d / "http_caller.py"
    shutil.copy2(SERVERS_DIR / "http_caller.py", script)
    script.chmod(0o644)
    marker = tmp_path / "pwned"
    port = free_port()
    for network in ({"network_mode": "none"}, {"allow_tcp_connect": [port]}):
        server = {"name": "caller", "command": str(python), "args": [str(script)], "quarantined": False,
                  "isolation": {"mode": "sandbox", "read_paths": [str(d)], **network}}
        p = proxy(make_config([server]), port=port)
        seen = _attack_requests(p, "caller", p.session(), marker)
        for out in seen:
            # Either the sandbox keeps it off the gateway's port, or the front door refuses it.
            assert out.get("status") in (None, 401), (network, out)
        time.sleep(1.0)
        assert not marker.exists(), network
        assert p.server("pwn") is None
        p.finish()
        port = free_port()


# --------------------------------------------------------------------------------------------
# Front-door hygiene


def test_host_header_is_checked(proxy):
    p = proxy(make_config([fixture_server("a")], allowed_hosts=["mcp.internal"]))
    auth = {"Authorization": f"Bearer {p.api_key}"}
    for host in ("evil.example", "evil.example:%d" % p.port, "127.0.0.2.nip.io"):
        r = _post(p.mcp_url, {**auth, "Host": host})
        assert r.status == 403, (host, r)
        assert p.rest("GET", "/api/v1/servers").status == 200
        assert http("GET", f"{p.base_url}/api/v1/servers", None, {"X-API-Key": p.api_key, "Host": host}).status == 403
    for host in (f"127.0.0.1:{p.port}", f"localhost:{p.port}", "mcp.internal", f"[::1]:{p.port}"):
        assert _post(p.mcp_url, {**auth, "Host": host}).status == 200, host


def test_mcp_auth_none_is_loopback_only_and_warned(proxy):
    p = proxy(make_config([fixture_server("a")], mcp_auth="none"))
    r = _post(p.mcp_url)
    assert r.status == 200, r
    s = RawSession(p.mcp_url).initialize()
    assert result_text(s.call_tool("a:echo", {"text": "open"})["result"]) == "open"
    assert "upstream_servers" not in {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "mcp_auth" in p.stderr() and "warn" in p.stderr().lower()

    bad = proxy.create(make_config([fixture_server("a")], mcp_auth="none"))
    bad.argv[bad.argv.index("--listen") + 1] = f"0.0.0.0:{bad.port}"
    bad.start()
    assert bad.proc.wait(20) != 0
    assert "mcp_auth" in bad.stderr() and "loopback" in bad.stderr(), bad.stderr()


def _make_cert(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_non_loopback_listen_needs_tls_unless_plaintext_is_allowed(proxy, tmp_path):
    plain = proxy.create(make_config([fixture_server("a")]))
    plain.argv[plain.argv.index("--listen") + 1] = f"0.0.0.0:{plain.port}"
    plain.start()
    assert plain.proc.wait(20) != 0
    assert "tls" in plain.stderr().lower(), plain.stderr()

    allowed = proxy(make_config([fixture_server("a")], allow_plaintext=True, allowed_hosts=["127.0.0.1"]), wait=False)
    # (started on loopback by the harness; the warning names the opt-out only when it matters)
    assert allowed.running()

    cert, key = _make_cert(tmp_path)
    tls = proxy.create(make_config([fixture_server("a")], tls_cert=str(cert), tls_key=str(key), allowed_hosts=["127.0.0.1"]))
    tls.argv[tls.argv.index("--listen") + 1] = f"0.0.0.0:{tls.port}"
    tls.start()
    ctx = ssl.create_default_context(cafile=str(cert))

    def up() -> bool:
        assert tls.running(), tls.stderr()
        try:
            c = HTTPSConnection("127.0.0.1", tls.port, context=ctx, timeout=3)
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        except OSError:
            return False
    wait_until(up, 30, 0.1, "the TLS listener")
    c = HTTPSConnection("127.0.0.1", tls.port, context=ctx, timeout=10)
    c.request("POST", "/mcp", json.dumps(INIT), {"Content-Type": "application/json", "Accept": MCP_ACCEPT})
    assert c.getresponse().status == 401
    c = HTTPSConnection("127.0.0.1", tls.port, context=ctx, timeout=10)
    c.request("POST", "/mcp", json.dumps(INIT), {"Content-Type": "application/json", "Accept": MCP_ACCEPT,
                                                 "Authorization": f"Bearer {tls.api_key}"})
    assert c.getresponse().status == 200
    # Plain HTTP on the TLS port gets no MCP answer.
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            data = sock.recv(100)
        except OSError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200"), data


def test_upstream_url_credentials_are_redacted(proxy):
    url = "http://user:s3cr3tpw@127.0.0.1:9/mcp?token=tok-abcdef123456"
    p = proxy(make_config([fixture_server("a"), {"name": "remote", "url": url, "protocol": "http", "quarantined": False}]),
              wait=["a"])
    time.sleep(1.0)
    listing = p.rest("GET", "/api/v1/servers").text + p.rest("GET", "/api/v1/servers/remote").text
    listed = p.session().request("tools/call", {"name": "upstream_servers", "arguments": {"operation": "list"}})
    logs = "".join(f.read_text(errors="replace") for f in (p.data_dir / "logs").glob("*.log"))
    everything = listing + json.dumps(listed) + p.all_logs() + logs
    assert "s3cr3tpw" not in everything and "tok-abcdef123456" not in everything
    assert "127.0.0.1:9" in listing, "the redacted URL is still shown"


# --------------------------------------------------------------------------------------------
# stdio front end


def test_stdio_with_token_file_is_scoped(tmp_path, binaries):
    cfg = tmp_path / "mcp_config.json"
    cfg.write_text(json.dumps(make_config([fixture_server("a"), fixture_server("b")])))
    data = tmp_path / "data"
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MCPPROXY_API_KEY": "k-stdio"}
    made = subprocess.run([str(bin_dir() / "mcpproxy"), "token", "create", "stdio-a", "--servers", "a",
                           "--config", str(cfg), "--data-dir", str(data)], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made
    tok_file = tmp_path / "token"
    tok_file.write_text(made.stdout.strip() + "\n")
    tok_file.chmod(0o600)

    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
    params = StdioServerParameters(command=str(bin_dir() / "mcpproxy"), env=env, args=[
        "serve", "--stdio", "--config", str(cfg), "--data-dir", str(data), "--token-file", str(tok_file)])

    async def body():
        with open(tmp_path / "stderr", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    deadline = time.monotonic() + 30
                    while True:
                        r = await s.call_tool("call_tool", {"name": "a:echo", "args": {"text": "x"}})
                        if not _err(r) or time.monotonic() > deadline:
                            break
                        time.sleep(0.2)
                    assert not _err(r), r
                    b = await s.call_tool("call_tool", {"name": "b:echo", "args": {"text": "x"}})
                    assert _err(b)
                    found = await s.call_tool("retrieve_tools", {"query": "echo"})
                    assert "b:" not in "".join(c.text for c in found.content)
    run_async(body)
    bad = tmp_path / "bad-token"
    bad.write_text("mcpx_not-a-token\n")
    out = subprocess.run([str(bin_dir() / "mcpproxy"), "serve", "--stdio", "--config", str(cfg), "--data-dir", str(data),
                          "--token-file", str(bad)], env=env, input="", capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "token" in out.stderr.lower(), out


def test_raw_line_breaks_in_a_clients_json_cannot_smuggle_a_message_upstream(proxy, tmp_path):
    """JSON allows line breaks between tokens, and a stdio upstream reads one message per line.
    A read-only token sends `echo` arguments whose JSON holds a raw line break and, on the next
    line, a whole `tools/call` of `write_file` (a tool it may not call): the upstream must see one
    message, the echo, and nothing is written. The same for a client's answer on the
    2026-07-28 path goes through the same writer."""
    p = proxy(make_config([fixture_server("fx")]))
    token = p.create_token("reader", "--servers", "fx", "--intent", "read")
    s = p.session(token=token)
    wait_until(lambda: not s.call_tool("fx:echo", {"text": "warm"})["result"].get("isError"), 30, 0.2, "fx ready")
    target = tmp_path / "smuggled.txt"
    smuggled = json.dumps({"jsonrpc": "2.0", "id": "smuggled", "method": "tools/call",
                           "params": {"name": "write_file", "arguments": {"path": str(target), "content": "pwned"}}})
    for brk in ("\n", "\r\n", "\r"):
        body = ('{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"call_tool","arguments":'
                '{"name":"fx:echo","args":{"text":"still one message","x":' + brk + smuggled + brk + '}}}}').encode()
        r = s.post(body)
        assert r.status == 200, r
        text = r.text
        if "data:" in text:
            text = [l[5:] for l in text.splitlines() if l.startswith("data:")][-1]
        reply = json.loads(text)
        assert reply.get("result", {}).get("isError") is not True, reply
        assert result_text(reply["result"]) == "still one message", reply
    time.sleep(0.5)
    assert not target.exists(), "a message smuggled through a raw line break reached the upstream"
