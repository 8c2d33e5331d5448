"""Config: both `mcpServers` forms, JSON comments, hot reload (add, remove, unchanged servers keep
running, invalid edits keep the running config), first run, MCPPROXY_CONFIG, the API key file."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from e2e_support import (ProcId, fixture_server, load_jsonc, make_config, proc_stat, result_text,
                         wait_until)


@pytest.mark.parametrize("form", ["list", "object"])
def test_both_mcpservers_forms(proxy, form):
    cfg = make_config([fixture_server("alpha"), fixture_server("beta", "--page-size", "3")], form=form)
    p = proxy(cfg)
    servers = {s["name"]: s for s in p.servers()}
    assert set(servers) == {"alpha", "beta"}
    for s in servers.values():
        assert s["state"] == "ready" and s["enabled"] is True and s["protocol"] == "stdio"
        assert s["tool_count"] == 12, f"{s['name']}: {s}"  # beta pages tools/list 3 at a time
        assert s["pid"] and proc_stat(s["pid"]), s
    session = p.session()
    assert result_text(session.call_tool("beta:add", {"a": 1, "b": 1})["result"]) == "2"
    assert result_text(session.call_tool("alpha:echo", {"text": "a"})["result"]) == "a"


def test_config_with_comments(proxy):
    body = json.dumps(make_config([fixture_server("fixture")]), indent=2)
    text = "// a comment line\n" + body.replace('"mcpServers"', '/* block */ "mcpServers"', 1)
    p = proxy(text)
    assert p.server("fixture")["state"] == "ready"


def test_disabled_server_is_not_started(proxy):
    p = proxy(make_config([fixture_server("on"), fixture_server("off", enabled=False)]), wait=["on"])
    off = p.server("off")
    assert off["enabled"] is False and off["state"] == "disabled" and not off["pid"], off
    r = p.session().call_tool("off:echo", {"text": "x"})
    assert "error" in r or r["result"].get("isError"), r


def _pid(p, name):
    s = p.server(name)
    return s["pid"] if s else None


def test_hot_reload_adds_and_removes_a_server(proxy):
    p = proxy(make_config([fixture_server("keep")]))
    keep_pid = _pid(p, "keep")

    p.write_config(make_config([fixture_server("keep"), fixture_server("added")]))
    p.wait_ready(["keep", "added"], timeout=20)
    added = p.server("added")
    added_proc = ProcId(added["pid"], proc_stat(added["pid"])[2], "")
    assert _pid(p, "keep") == keep_pid, "an unchanged server must not be restarted by a reload"
    session = p.session()
    assert result_text(session.call_tool("added:echo", {"text": "new"})["result"]) == "new"

    p.write_config(make_config([fixture_server("keep")]))
    wait_until(lambda: p.server("added") is None, 20, 0.1, "the removed server to disappear")
    wait_until(lambda: not added_proc.alive(), 10, 0.1, "the removed server's process to exit")
    assert _pid(p, "keep") == keep_pid
    r = session.call_tool("added:echo", {"text": "x"})
    assert r["result"].get("isError") is True, r
    # A session opened before the reload keeps working.
    assert result_text(session.call_tool("keep:echo", {"text": "still"})["result"]) == "still"


def test_hot_reload_restarts_only_changed_server(proxy):
    p = proxy(make_config([fixture_server("a"), fixture_server("b")]))
    a_pid, b_pid = _pid(p, "a"), _pid(p, "b")
    p.write_config(make_config([fixture_server("a"), fixture_server("b", env={"CHANGED": "yes"})]))
    wait_until(lambda: (lambda s: s and s["state"] == "ready" and s["pid"] not in (None, b_pid))(p.server("b")),
               20, 0.1, "server b to restart with its new config")
    assert _pid(p, "a") == a_pid
    r = p.session().call_tool("b:get_env", {"name": "CHANGED"})
    assert result_text(r["result"]) == "yes"


def test_touching_config_keeps_servers(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    pid = _pid(p, "fixture")
    now = time.time()
    os.utime(p.config_path, (now + 5, now + 5))
    time.sleep(2.5)  # give a reload the chance to (wrongly) restart the server
    s = p.server("fixture")
    assert s["pid"] == pid and s["state"] == "ready"


def test_invalid_edit_keeps_running_config(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    pid = _pid(p, "fixture")
    p.write_config('{"mcpServers": [ {"name": "broken", ')  # truncated JSON
    time.sleep(2.5)
    assert p.running()
    assert [s["name"] for s in p.servers()] == ["fixture"] and _pid(p, "fixture") == pid
    wait_until(lambda: str(p.config_path) in p.all_logs() and "broken" not in [s["name"] for s in p.servers()],
               10, 0.2, "the invalid config to be logged with its path")
    # Semantically invalid (unknown routing mode) is rejected too.
    p.write_config({"routing_mode": "sideways", "mcpServers": [fixture_server("fixture"), fixture_server("x")]})
    time.sleep(2.5)
    assert [s["name"] for s in p.servers()] == ["fixture"]
    # A later valid edit applies.
    p.write_config(make_config([fixture_server("fixture"), fixture_server("fixed")]))
    p.wait_ready(["fixture", "fixed"], timeout=20)
    assert _pid(p, "fixture") == pid


def test_invalid_config_at_startup_fails_with_path(proxy):
    p = proxy.create('{"mcpServers": [{"name": "bad name!", "command": "x"}]}').start()
    rc = p.proc.wait(30)
    assert rc != 0
    err = p.stderr()
    assert str(p.config_path) in err and "bad name!" in err, err


def test_first_run_writes_default_config(proxy):
    p = proxy.create(None, use_config_flag=False)
    p.argv = [a for a in p.argv]  # serve --listen ... --data-dir ...: no --config, no MCPPROXY_CONFIG
    p.start()
    p.wait_healthy()
    default = p.home / ".mcpproxy" / "mcp_config.json"
    wait_until(default.is_file, 10, 0.1, f"{default} to be written")
    assert str(default) in p.stderr(), p.stderr()
    text = default.read_text()
    assert "//" in text, "the default config is meant to be commented"
    cfg = load_jsonc(default)
    assert "mcpServers" in cfg
    assert p.rest("GET", "/api/v1/servers").status == 200
    mode = stat.S_IMODE(default.stat().st_mode)
    assert mode & 0o022 == 0, f"config must not be group/world writable: {oct(mode)}"


def test_mcpproxy_config_env_var(proxy, tmp_path):
    cfg_path = tmp_path / "elsewhere" / "cfg.json"
    cfg_path.parent.mkdir()
    cfg_path.write_text(json.dumps(make_config([fixture_server("fromenv")])))
    p = proxy.create(None, use_config_flag=False, env={"MCPPROXY_CONFIG": str(cfg_path)}).start()
    p.wait_healthy()
    p.wait_ready(["fromenv"])
    assert not (p.home / ".mcpproxy" / "mcp_config.json").exists()


def test_generated_api_key_file(proxy):
    p = proxy.create(make_config([fixture_server("fixture")]), api_key=None).start()
    p.wait_healthy()
    key_file = p.data_dir / "api_key"
    wait_until(key_file.is_file, 10, 0.1, "the api_key file")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32, "a generated key must be long"
    assert p.rest("GET", "/api/v1/servers", key=key).status == 200
    assert p.rest("GET", "/api/v1/servers", key=None).status == 401
    assert key not in p.all_logs(), "the API key must not be logged"
    # Restart with the same data dir: the same key is reused.
    p.stop()
    q = proxy.create(make_config([fixture_server("fixture")]), api_key=None)
    q.data_dir = p.data_dir
    q.argv[q.argv.index("--data-dir") + 1] = str(p.data_dir)
    q.start()
    q.wait_healthy()
    assert q.rest("GET", "/api/v1/servers", key=key).status == 200


def test_env_key_is_not_logged(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    p.rest("GET", "/api/v1/servers")
    p.rest("GET", "/api/v1/servers", key="wrong-" + p.api_key[:6])
    assert p.api_key not in p.all_logs()
    logs = p.data_dir / "logs"
    assert (logs / "main.log").is_file(), list(logs.iterdir()) if logs.exists() else "no logs dir"
    assert (logs / "server-fixture.log").is_file(), list(logs.iterdir())


def test_removing_a_server_ends_its_inflight_call(proxy):
    import threading
    p = proxy(make_config([fixture_server("keep"), fixture_server("doomed")]))
    s = p.session()
    out = {}

    def call():
        t0 = time.monotonic()
        try:
            out["reply"] = s.call_tool("doomed:sleep", {"ms": 30000}, timeout=60)
        except BaseException as exc:  # reported below
            out["exc"] = exc
        out["secs"] = time.monotonic() - t0
    th = threading.Thread(target=call)
    th.start()
    time.sleep(1.0)
    p.write_config(make_config([fixture_server("keep")]))
    th.join(40)
    assert not th.is_alive(), "the in-flight call to a removed server hangs"
    assert "exc" not in out, out
    assert "error" in out["reply"], out["reply"]
    assert "doomed" in out["reply"]["error"]["message"], out["reply"]
    assert out["secs"] < 25, f"the call ended only after {out['secs']:.0f}s"


def test_deleted_config_file_keeps_running(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    pid = _pid(p, "fixture")
    p.config_path.unlink()
    time.sleep(2.5)
    assert p.running() and _pid(p, "fixture") == pid
    assert result_text(p.session().call_tool("fixture:echo", {"text": "alive"})["result"]) == "alive"
    p.write_config(make_config([fixture_server("fixture"), fixture_server("back")]))
    p.wait_ready(["fixture", "back"], timeout=20)


def _start_on_busy_port(proxy):
    first = proxy(make_config([fixture_server("fixture")]))
    second = proxy.create(make_config([fixture_server("fixture")]), port=first.port).start()
    rc = second.proc.wait(30)
    return first, second, rc


def test_port_in_use_exits_cleanly(proxy):
    first, second, rc = _start_on_busy_port(proxy)
    assert rc != 0
    assert "in use" in second.stderr().lower(), second.stderr()
    left = second.finish(leftover_timeout=5)
    assert not left, f"the failed proxy left processes: {left}"
    assert first.server("fixture")["state"] == "ready"


def test_port_in_use_error_names_the_address(proxy):
    first, second, rc = _start_on_busy_port(proxy)
    assert f"127.0.0.1:{first.port}" in second.stderr(), second.stderr()
