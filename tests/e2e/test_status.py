"""Issue 15, item 5: `mcpproxy status`, a compact live table of the running proxy's servers
(state, approval, isolation, calls/s, errors, CPU, memory, pids) from the REST API. The real CLI
against a real proxy with a sandboxed and an unconfined server, while a client makes calls."""

from __future__ import annotations

import json
import threading
import time

from container_backends import IMAGE, container_backend  # noqa: F401 (the fixture)
from e2e_support import fixture_server, make_config, reachable_fixture, result_text, wait_until


def _calls_in_background(session, tool, seconds):
    stop = time.monotonic() + seconds

    def run():
        i = 0
        while time.monotonic() < stop:
            session.call_tool(tool, {"text": f"x{i}"})
            i += 1
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_status_json_shows_rates_and_resource_use(proxy):
    sb = fixture_server("sb", isolation={"mode": "sandbox"})
    sb["command"] = reachable_fixture()
    q = fixture_server("held", quarantined=True)
    p = proxy(make_config([fixture_server("fx"), sb, q]))
    s = p.session()
    assert result_text(s.call_tool("sb:echo", {"text": "hi"})["result"]) == "hi"
    # An error and a refusal, counted since start.
    assert s.call_tool("fx:raw_result", {"json": json.dumps({"content": [], "isError": True})})["result"]["isError"]
    assert s.call_tool("fx:no_such_tool")["result"]["isError"]

    worker = _calls_in_background(p.session(), "fx:echo", 4)
    r = p.cli("status", "--json", "--interval", "1.5")
    worker.join()
    assert r.returncode == 0, r
    out = json.loads(r.stdout)
    assert out["proxy"]["servers_total"] == 3
    rows = {row["name"]: row for row in out["servers"]}
    assert set(rows) == {"fx", "sb", "held"}
    fx, sbr, held = rows["fx"], rows["sb"], rows["held"]
    assert fx["state"] == "ready" and fx["isolation"] == "none" and fx["approval"] == "approved"
    assert fx["calls_per_second"] > 1, fx      # the background client was calling during the interval
    assert fx["errors"] == 1 and fx["refused"] == 1, fx
    assert fx["memory_bytes"] > 0 and fx["cpu_percent"] is not None, fx
    assert sbr["isolation"] == "sandbox" and sbr["memory_bytes"] > 0 and sbr["pids"] >= 1, sbr
    assert sbr["calls_per_second"] == 0, sbr
    assert held["approval"] == "quarantined", held


def test_status_watch_refreshes_a_table(proxy):
    p = proxy(make_config([fixture_server("fx")]))
    r = p.cli("status", "--watch", "--count", "2", "--interval", "0.3")
    assert r.returncode == 0, r
    frames = [line for line in r.stdout.splitlines() if line.startswith("SERVER")]
    assert len(frames) == 2, r.stdout
    header = frames[0].split()
    assert header == ["SERVER", "STATE", "APPROVAL", "ISOLATION", "CALLS/S", "ERRORS", "REFUSED", "CPU%", "MEMORY", "PIDS"]
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("fx ")]
    assert len(rows) == 2 and rows[0][1:4] == ["ready", "approved", "none"], r.stdout
    assert "mcpproxy" in r.stdout.splitlines()[0] and "1/1 servers ready" in r.stdout
    # Not a terminal: no screen-clearing escapes in the output.
    assert "\x1b[" not in r.stdout


def test_status_without_a_running_proxy_says_so(proxy):
    p = proxy(make_config([fixture_server("fx")]))
    p.stop()
    r = p.cli("status")
    assert r.returncode != 0
    assert "not answering" in r.stdout + r.stderr, r
    bad = p.cli("status", "--interval", "0")
    assert bad.returncode != 0 and "--interval" in bad.stderr, bad


def test_container_servers_are_measured_from_their_cgroup(proxy, container_backend):
    """Mode docker on every engine and runtime: memory and pids come from the container's own
    cgroup (looked up once through the engine's inspect), not from the engine's client process."""
    server = {"name": "box", "command": "/fixture", "args": ["--name", "box"], "quarantined": False,
              "isolation": {"mode": "docker", "image": IMAGE, "network_mode": "none"}}
    p = proxy(make_config([server], docker_isolation={"mode": "docker", "timeout": "60s", **container_backend.settings()}),
              wait=False)
    wait_until(lambda: (p.server("box") or {}).get("state") == "ready", 120, 0.3, "box ready")
    stats = p.server("box")["stats"]
    assert stats.get("memory_bytes", 0) > 0, stats
    assert stats.get("pids", 0) >= 1, stats
    assert "cpu_seconds" in stats, stats
    r = p.cli("status", "--json", "--interval", "0.5")
    assert r.returncode == 0, r
    row = json.loads(r.stdout)["servers"][0]
    assert row["isolation"] == "docker" and row["memory_bytes"] > 0, row
