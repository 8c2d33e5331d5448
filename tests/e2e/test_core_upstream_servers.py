"""The `upstream_servers` built-in tool: list, add, remove, enable, disable, restart; changes
persist to the config file."""

from __future__ import annotations

import pytest

from e2e_support import (bin_dir, config_servers, fixture_server, make_config, proc_stat, result_text,
                         tool_result_json, wait_until)


def _op(session, **arguments):
    reply = session.request("tools/call", {"name": "upstream_servers", "arguments": arguments})
    assert "result" in reply, reply
    return reply["result"]


@pytest.mark.parametrize("form", ["list", "object"])
def test_add_and_remove_persist(proxy, form):
    p = proxy(make_config([fixture_server("fixture")], form=form))
    s = p.session()

    listed = _op(s, operation="list")
    assert not listed.get("isError"), listed
    assert "fixture" in str(tool_result_json(listed) if listed.get("structuredContent") else result_text(listed))

    added = _op(s, operation="add", name="extra", command=str(bin_dir() / "mcpproxy-fixture"),
                args=["--name", "extra"], env={"EXTRA_VAR": "42"}, protocol="stdio")
    assert not added.get("isError"), added
    # Added over MCP: awaiting a person's approval, kept out of the config file, nothing runs.
    assert tool_result_json(added)["state"] == "awaiting_approval", added
    assert "extra" not in config_servers(p.read_config())
    assert p.server("extra")["state"] == "awaiting_approval"
    held = s.call_tool("extra:get_env", {"name": "EXTRA_VAR"})
    assert held["result"]["isError"] and "approv" in result_text(held["result"]), held

    # First approval: written to the config (form kept), started quarantined.
    first = p.rest("POST", "/api/v1/servers/extra/approve")
    assert first.status == 200, first
    servers = config_servers(p.read_config())
    assert "extra" in servers and "fixture" in servers, servers
    assert servers["extra"]["command"].endswith("mcpproxy-fixture")
    assert servers["extra"]["args"] == ["--name", "extra"]
    assert servers["extra"].get("env") == {"EXTRA_VAR": "42"}
    assert isinstance(p.read_config()["mcpServers"], dict if form == "object" else list), "form must be kept"
    p.wait_ready(["fixture", "extra"], timeout=20)
    held = s.call_tool("extra:get_env", {"name": "EXTRA_VAR"})
    assert held["result"]["isError"] and "quarantined" in result_text(held["result"]), held
    # Second approval releases its tools.
    approved = p.rest("POST", "/api/v1/servers/extra/unquarantine")
    assert approved.status == 200, approved
    wait_until(lambda: all(t.get("status", "available") == "available"
                           for t in p.rest("GET", "/api/v1/servers/extra/tools").json()["tools"]),
               20, 0.1, "extra's tools to be available after approval")
    p.wait_ready(["fixture", "extra"], timeout=20)
    r = s.call_tool("extra:get_env", {"name": "EXTRA_VAR"})
    assert "result" in r, f"{r}\nconfig entry: {config_servers(p.read_config())['extra']}\ntools: {p.rest('GET', '/api/v1/servers/extra/tools').text[:600]}"
    assert result_text(r["result"]) == "42"
    extra_pid = p.server("extra")["pid"]

    removed = _op(s, operation="remove", name="extra")
    assert not removed.get("isError"), removed
    assert "extra" not in config_servers(p.read_config())
    wait_until(lambda: p.server("extra") is None, 15, 0.1, "extra to be gone from /api/v1/servers")
    wait_until(lambda: proc_stat(extra_pid) is None or proc_stat(extra_pid)[1] == "Z", 10, 0.1, "extra to exit")
    assert p.server("fixture")["state"] == "ready"


def test_add_duplicate_and_remove_unknown_are_errors(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    s = p.session()
    before = p.config_path.read_text()
    dup = s.request("tools/call", {"name": "upstream_servers", "arguments": {
        "operation": "add", "name": "fixture", "command": "/bin/true"}})
    assert "error" in dup or dup["result"].get("isError"), dup
    gone = s.request("tools/call", {"name": "upstream_servers", "arguments": {"operation": "remove", "name": "nope"}})
    assert "error" in gone or gone["result"].get("isError"), gone
    bad = s.request("tools/call", {"name": "upstream_servers", "arguments": {
        "operation": "add", "name": "bad__name", "command": "/bin/true"}})
    assert "error" in bad or bad["result"].get("isError"), bad
    assert p.config_path.read_text() == before, "failed operations must not touch the config file"


def test_disable_enable_restart_via_tool(proxy):
    p = proxy(make_config([fixture_server("fixture"), fixture_server("other")]))
    s = p.session()
    pid = p.server("fixture")["pid"]

    r = _op(s, operation="disable", name="fixture")
    assert not r.get("isError"), r
    wait_until(lambda: p.server("fixture")["state"] == "disabled", 15, 0.1, "fixture disabled")
    entry = config_servers(p.read_config())["fixture"]
    assert entry.get("enabled") is False or entry.get("disabled") is True, entry

    r = _op(s, operation="enable", name="fixture")
    assert not r.get("isError"), r
    p.wait_ready(["fixture"], timeout=20)
    entry = config_servers(p.read_config())["fixture"]
    assert entry.get("enabled", True) is True and not entry.get("disabled"), entry

    pid2 = p.server("fixture")["pid"]
    assert pid2 != pid
    r = _op(s, operation="restart", name="fixture")
    assert not r.get("isError"), r
    wait_until(lambda: (lambda x: x["state"] == "ready" and x["pid"] not in (pid, pid2))(p.server("fixture")),
               20, 0.1, "fixture restarted")
    assert result_text(s.call_tool("fixture:echo", {"text": "ok"})["result"]) == "ok"
