"""The REST API under /api/v1: authentication (three key forms), server list and fields,
tools, logs, enable/disable/restart, errors."""

from __future__ import annotations

import pytest

from e2e_support import fixture_server, http, make_config, proc_stat, result_text, wait_until

SERVER_FIELDS = {"name", "enabled", "state", "protocol", "isolation", "pid", "container_id", "tool_count",
                 "last_error", "restarts"}
STATES = {"disabled", "starting", "ready", "restarting", "failed", "stopped"}


@pytest.fixture
def p(proxy):
    return proxy(make_config([fixture_server("fixture", "--stderr-noise"), fixture_server("other")]))


@pytest.mark.parametrize("auth", ["header", "bearer", "query"])
def test_key_forms(p, auth):
    r = p.rest("GET", "/api/v1/servers", auth=auth)
    assert r.status == 200, r
    assert {s["name"] for s in r.json()["servers"]} == {"fixture", "other"}


@pytest.mark.parametrize("auth,key", [("header", None)] + [(a, k) for a in ("header", "bearer", "query")
                                                                for k in ("wrong-key", "")])
def test_missing_or_wrong_key_is_401(p, auth, key):
    r = p.rest("GET", "/api/v1/servers", key=key, auth=auth)
    assert r.status == 401, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    err = r.json()["error"]
    assert err["code"] == "unauthorized" and err["message"], err
    assert p.api_key not in r.text


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/status"), ("GET", "/api/v1/servers/fixture/tools"),
    ("GET", "/api/v1/servers/fixture/logs?tail=5"), ("POST", "/api/v1/servers/fixture/restart"),
    ("POST", "/api/v1/servers/fixture/disable"), ("POST", "/api/v1/servers/fixture/enable"),
])
def test_every_endpoint_needs_the_key(p, method, path):
    r = p.rest(method, path, key=None)
    assert r.status == 401, f"{method} {path} without key: {r!r}"
    assert p.server("fixture")["enabled"] is True


def test_healthz_needs_no_key(p):
    r = http("GET", f"{p.base_url}/healthz")
    assert r.status == 200 and r.json()["status"] == "ok"


def test_status(p):
    r = p.rest("GET", "/api/v1/status")
    assert r.status == 200, r
    assert isinstance(r.json(), dict) and r.json()


def test_servers_fields(p):
    servers = p.servers()
    for s in servers:
        assert SERVER_FIELDS <= set(s), f"missing fields {SERVER_FIELDS - set(s)} in {s}"
        assert s["state"] in STATES
        assert s["state"] == "ready" and s["enabled"] is True and s["protocol"] == "stdio"
        assert s["isolation"]["mode"] == "none" and s["isolation"]["reason"], s["isolation"]
        assert isinstance(s["pid"], int) and proc_stat(s["pid"]), s
        assert s["container_id"] in (None, "")
        assert s["tool_count"] == 12
        assert s["restarts"] == 0


def test_server_tools(p):
    r = p.rest("GET", "/api/v1/servers/fixture/tools")
    assert r.status == 200, r
    body = r.json()
    assert body["server"] == "fixture"
    tools = {t["name"]: t for t in body["tools"]}
    assert len(tools) == 12 and "echo" in tools and "raw_result" in tools
    assert tools["echo"]["description"] == "Echo the given text back unchanged."
    assert tools["echo"]["inputSchema"]["required"] == ["text"]


def test_server_logs_tail(p):
    s = p.session()
    for i in range(5):
        s.call_tool("fixture:echo", {"text": f"line {i}"})

    def lines():
        r = p.rest("GET", "/api/v1/servers/fixture/logs?tail=3")
        assert r.status == 200, r
        body = r.json()
        assert body["server"] == "fixture"
        return body["lines"] if len(body["lines"]) == 3 else None
    got = wait_until(lines, 10, 0.2, "3 log lines")
    assert all(isinstance(x, str) for x in got)
    assert any("request" in x for x in got), got  # the fixture's --stderr-noise lines
    r = p.rest("GET", "/api/v1/servers/fixture/logs?tail=1000")
    assert len(r.json()["lines"]) >= 5


def test_unknown_server_is_404(p):
    for method, path in [("GET", "/api/v1/servers/nope/tools"), ("GET", "/api/v1/servers/nope/logs"),
                         ("POST", "/api/v1/servers/nope/restart"), ("POST", "/api/v1/servers/nope/enable")]:
        r = p.rest(method, path)
        assert r.status == 404, f"{method} {path}: {r!r}"
        assert "nope" in r.json()["error"]["message"]


def test_unknown_route_is_404(p):
    assert p.rest("GET", "/api/v1/nothing-here").status == 404


def test_disable_enable(p):
    pid = p.server("fixture")["pid"]
    r = p.rest("POST", "/api/v1/servers/fixture/disable")
    assert r.status == 200, r
    wait_until(lambda: p.server("fixture")["state"] == "disabled", 15, 0.1, "fixture disabled")
    s = p.server("fixture")
    assert s["enabled"] is False and not s["pid"]
    wait_until(lambda: proc_stat(pid) is None or proc_stat(pid)[1] == "Z", 10, 0.1, "the process to exit")
    session = p.session()
    r = session.call_tool("fixture:echo", {"text": "x"})
    assert "error" in r or r["result"].get("isError"), r
    assert result_text(session.call_tool("other:echo", {"text": "y"})["result"]) == "y"

    r = p.rest("POST", "/api/v1/servers/fixture/enable")
    assert r.status == 200, r
    p.wait_ready(["fixture"], timeout=20)
    assert result_text(session.call_tool("fixture:echo", {"text": "z"})["result"]) == "z"


def test_restart(p):
    pid = p.server("fixture")["pid"]
    other_pid = p.server("other")["pid"]
    r = p.rest("POST", "/api/v1/servers/fixture/restart")
    assert r.status == 200, r
    s = wait_until(lambda: (lambda x: x if x["state"] == "ready" and x["pid"] != pid else None)(p.server("fixture")),
                   20, 0.1, "fixture restarted")
    assert s["pid"] != pid
    assert p.server("other")["pid"] == other_pid


def test_mcp_endpoint_needs_no_key(p):
    s = p.session()  # no key sent at all
    assert result_text(s.call_tool("fixture:echo", {"text": "open"})["result"]) == "open"
