"""One error table (docs/commands.md, "Errors"): CLI failures exit with the documented status, REST
errors carry the documented HTTP status and code name, MCP protocol faults the documented
JSON-RPC code; an upstream's own JSON-RPC error reaches the client byte for byte, and only a
real "method not found" code (not a message that mentions it) means "no tools"."""

from __future__ import annotations

import json
import re
import subprocess

from e2e_support import ROOT, bin_dir, fixture_server, make_config, python_server, wait_until

# An upstream speaking raw JSON-RPC lines, so the test controls the exact bytes it answers.
# argv[1]: what tools/list answers: "tools", or a raw error object to send as its error.
UPSTREAM = r'''
import sys
list_error = sys.argv[1]
CALL_ERROR = '{ "code" : 4242,"message":"quota \\u00e9xceeded",  "data":{"retry_after":[1,2.50]} }'
for line in sys.stdin:
    if not line.strip():
        continue
    import json
    msg = json.loads(line)
    mid, method = msg.get("id"), msg.get("method")
    def send(text):
        sys.stdout.write(text + "\n"); sys.stdout.flush()
    if mid is None:
        continue
    if method == "initialize":
        send(json.dumps({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": "2025-06-18",
             "capabilities": {"tools": {}}, "serverInfo": {"name": "raw", "version": "1"}}}))
    elif method == "tools/list" and list_error != "tools":
        send('{"jsonrpc":"2.0","id":%s,"error":%s}' % (json.dumps(mid), list_error))
    elif method == "tools/list":
        send(json.dumps({"jsonrpc": "2.0", "id": mid, "result": {"tools": [{"name": "charge",
             "description": "Charge an account.", "inputSchema": {"type": "object"},
             "annotations": {"readOnlyHint": True}}]}}))
    elif method == "tools/call":
        send('{"jsonrpc":"2.0","id":%s,"error":%s}' % (json.dumps(mid), CALL_ERROR))
    else:
        send(json.dumps({"jsonrpc": "2.0", "id": mid, "result": {}}))
'''


def documented() -> dict[str, dict[str, int]]:
    """The error table of docs/commands.md: code name -> {jsonrpc, http, exit}."""
    text = (ROOT / "docs" / "commands.md").read_text()
    lines = text.splitlines()
    start = lines.index("| code | JSON-RPC | HTTP | exit | when |")
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        m = re.match(r"\| `(\w+)` \| (-?\d+) \| (\d+) \| (\d+) \|", line)
        assert m, line
        table[m.group(1)] = {"jsonrpc": int(m.group(2)), "http": int(m.group(3)), "exit": int(m.group(4))}
    return table


CODES = documented()


def _raw_upstream(tmp_path, name: str, list_answer: str = "tools") -> dict:
    script = tmp_path / "raw_upstream.py"
    script.write_text(UPSTREAM)
    return python_server(name, [str(script), list_answer])


def _run(tmp_path, *args: str, config: dict) -> subprocess.CompletedProcess:
    cfg = tmp_path / "mcp_config.json"
    cfg.write_text(json.dumps(config))
    return subprocess.run([str(bin_dir() / "mcpproxy"), *args, "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_the_table_has_every_code_once():
    assert len(CODES) >= 18, CODES
    assert CODES["methodNotFound"]["jsonrpc"] == -32601 and CODES["parseError"]["jsonrpc"] == -32700


def test_cli_failures_exit_with_the_documented_status(tmp_path, binaries):
    # An invalid config stops `serve` before it listens.
    bad = _run(tmp_path, "serve", "--listen", "127.0.0.1:0", config={"mcpServers": [{"name": "bad name!", "command": "x"}]})
    assert bad.returncode == CODES["invalidConfig"]["exit"], bad
    assert "bad name!" in bad.stderr, bad.stderr
    # `doctor` of a server the config does not have.
    good = make_config([fixture_server("ok")])
    missing = _run(tmp_path, "doctor", "nosuch", config=good)
    assert missing.returncode == CODES["notFound"]["exit"], missing
    assert 'no server named "nosuch"' in missing.stdout, missing.stdout
    # Approving one tool needs the running proxy: there is none.
    alone = _run(tmp_path, "upstream", "approve", "ok", "--tool", "echo", config=good)
    assert alone.returncode == CODES["unavailable"]["exit"], alone
    assert "needs the running proxy" in alone.stdout, alone.stdout
    # A usage error stays ArgumentParser's, and is invalidArgument's status too.
    usage = _run(tmp_path, "serve", "--log-level", "loud", config=good)
    assert usage.returncode == CODES["invalidArgument"]["exit"] == 64, usage
    # Still: success is 0, and a check that found problems is 1 (not an error code).
    assert _run(tmp_path, "doctor", "ok", config=good).returncode == 0


def test_second_serve_on_a_data_dir_exits_conflict(proxy):
    first = proxy(make_config([fixture_server("fixture")]))
    second = proxy.create(make_config([fixture_server("fixture")]))
    i = second.argv.index("--data-dir")
    second.argv[i + 1] = str(first.data_dir)
    second.start()
    rc = second.proc.wait(30)
    assert rc == CODES["conflict"]["exit"], (rc, second.stderr())
    assert f"pid {first.pid}" in second.stderr(), second.stderr()


def test_rest_errors_and_the_cli_relaying_them(proxy):
    p = proxy.create(None)
    # The CLI finds the running proxy through the config's listen address.
    p.write_config(make_config([fixture_server("fixture")], listen=f"127.0.0.1:{p.port}"))
    p.argv[2:2] = ["--config", str(p.config_path)]
    p.start()
    p.wait_healthy()
    p.wait_ready()
    r = p.rest("GET", "/api/v1/servers/nosuch")
    assert r.status == CODES["notFound"]["http"], r
    assert r.json()["error"]["code"] == "notFound", r
    bad = p.rest("GET", "/api/v1/servers/fixture/logs?tail=lots")
    assert bad.status == CODES["invalidArgument"]["http"] and bad.json()["error"]["code"] == "invalidArgument", bad
    none = p.rest("GET", "/api/v1/servers", key="wrong")
    assert none.status == CODES["unauthorized"]["http"], none
    # The CLI relays the proxy's REST error with that error's exit status.
    out = p.cli("upstream", "approve", "nosuch")
    assert out.returncode == CODES["notFound"]["exit"], out
    assert out.stdout.startswith("error: ") and "nosuch" in out.stdout, out


def test_mcp_protocol_errors_carry_the_documented_codes(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    s = p.session()
    unknown = s.request("no/such/method")
    assert unknown["error"]["code"] == CODES["methodNotFound"]["jsonrpc"], unknown
    # Inside a session MCP answers (HTTP 200); refused before MCP (no session), the HTTP status
    # is the table's too.
    parse = s.post(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert parse.status == 200 and parse.json()["error"]["code"] == CODES["parseError"]["jsonrpc"], parse
    sid, s.session_id = s.session_id, None
    early = s.post(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert early.status == CODES["parseError"]["http"], early
    assert early.json()["error"]["code"] == CODES["parseError"]["jsonrpc"], early
    s.session_id = "not-a-session"
    gone = s.request_raw("tools/list")
    assert gone.status == CODES["unknownSession"]["http"], gone
    assert gone.json()["error"]["code"] == CODES["unknownSession"]["jsonrpc"], gone


def test_upstream_error_is_forwarded_byte_exact(proxy, tmp_path):
    p = proxy(make_config([_raw_upstream(tmp_path, "raw")]))
    s = p.session()
    r = s.post({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                "params": {"name": "call_tool", "arguments": {"name": "raw:charge", "args": {}}}})
    assert r.status == 200, r
    assert r.body == (b'{"jsonrpc":"2.0","id":41,"error":'
                      b'{ "code" : 4242,"message":"quota \\u00e9xceeded",  "data":{"retry_after":[1,2.50]} }}'), r
    # The activity log is written in batches, off the call's path.
    activity = wait_until(lambda: p.rest("GET", "/api/v1/activity?server=raw").json()["activity"], 10, what="the activity entry")
    assert [a["outcome"] for a in activity] == ["error"], activity


def test_only_the_method_not_found_code_means_no_tools(proxy, tmp_path):
    # -32601 from tools/list: a server without tools, ready.
    p = proxy(make_config([_raw_upstream(tmp_path, "bare", '{"code":-32601,"message":"no tools here"}')]))
    assert p.server("bare")["state"] == "ready", p.server("bare")
    assert p.server("bare")["tool_count"] == 0
    # Another code whose message mentions -32601 is a failed tools/list, not "no tools".
    q = proxy(make_config([_raw_upstream(tmp_path, "liar", '{"code":-32000,"message":"backend said -32601"}')]), wait=False)

    def failed():
        s = q.server("liar")
        return s if s and s["state"] in ("failed", "restarting") and "tools/list" in (s.get("last_error") or "") else None

    s = wait_until(failed, 30, what="liar to fail its tools/list")
    assert "backend said -32601 (code -32000)" in s["last_error"], s
