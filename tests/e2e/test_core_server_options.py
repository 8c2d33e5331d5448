"""Per-server and global options seen end to end: call timeout, working_dir, env values never
logged or served by the REST API."""

from __future__ import annotations

import time

from e2e_support import fixture_server, make_config, result_text, wait_until


def test_call_timeout(proxy):
    p = proxy(make_config([fixture_server("fixture")], call_tool_timeout="1s"))
    s = p.session()
    t0 = time.monotonic()
    r = s.call_tool("fixture:sleep", {"ms": 4000})
    elapsed = time.monotonic() - t0
    assert "error" in r, r
    assert r["error"]["code"] == -32001, r
    assert "fixture" in r["error"]["message"], r
    assert elapsed < 3.5, f"the call was not cut at the 1 s timeout ({elapsed:.1f}s)"
    # The upstream stays usable (its late reply to the timed-out call is dropped).
    time.sleep(3.5)
    assert result_text(s.call_tool("fixture:echo", {"text": "still here"})["result"]) == "still here"
    assert p.server("fixture")["restarts"] == 0


def test_working_dir(proxy, tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "hello.txt").write_text("from the working dir")
    p = proxy(make_config([fixture_server("fixture", working_dir=str(wd))]))
    r = p.session().call_tool("fixture:read_file", {"path": "hello.txt"})
    assert result_text(r["result"]) == "from the working dir"


def test_env_values_are_not_logged_or_served(proxy):
    secret = "tok-" + "9f8e7d6c5b4a" * 3
    p = proxy(make_config([fixture_server("fixture", "--stderr-noise", env={"API_TOKEN": secret})]))
    s = p.session()
    assert result_text(s.call_tool("fixture:get_env", {"name": "API_TOKEN"})["result"]) == secret
    p.rest("POST", "/api/v1/servers/fixture/restart")
    wait_until(lambda: p.server("fixture")["state"] == "ready", 20, 0.1, "restart")
    served = "".join(p.rest("GET", path).text for path in (
        "/api/v1/servers", "/api/v1/servers/fixture", "/api/v1/servers/fixture/diagnostics",
        "/api/v1/servers/fixture/logs?tail=1000", "/api/v1/status"))
    assert secret not in served, "an env value was served by the REST API"
    logs = p.all_logs() + "".join(f.read_text(errors="replace") for f in (p.data_dir / "logs").glob("*.log"))
    assert secret not in logs, "an env value was logged"
    assert "API_TOKEN" in served, "diagnostics list the env keys (docs/commands.md), without values"
