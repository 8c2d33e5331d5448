"""Upstream process lifecycle: death mid-call, crash, restart with backoff, and no process
outliving the proxy on SIGTERM, SIGINT or SIGKILL (also servers that ignore EOF and SIGTERM,
and their own children)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from e2e_support import (proc_cmdline, SERVERS_DIR, descendants, fixture_server, kill_all, make_config, proc_stat,
                         python_server, result_text, wait_gone, wait_until)


def _ready_again(p, name, old_pid, min_restarts=1):
    def check():
        s = p.server(name)
        if s and s["state"] == "ready" and s["pid"] and s["pid"] != old_pid and s["restarts"] >= min_restarts:
            return s
        return None
    return wait_until(check, 30, 0.1, f"{name} to be restarted and ready")


def test_upstream_killed_mid_call(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    before = p.server("fixture")
    assert before["restarts"] == 0
    pid = before["pid"]
    session = p.session()
    outcome = {}

    def call():
        t0 = time.monotonic()
        try:
            outcome["reply"] = session.call_tool("fixture:sleep", {"ms": 20000}, timeout=60)
        except BaseException as exc:  # reported below, with the HTTP-level failure
            outcome["exception"] = exc
        outcome["secs"] = time.monotonic() - t0
    th = threading.Thread(target=call)
    th.start()
    time.sleep(1.0)  # the call is in flight
    assert th.is_alive(), f"the sleep call returned early: {outcome}"
    os.kill(pid, signal.SIGKILL)
    th.join(30)
    assert not th.is_alive(), "the call did not end after its upstream died"
    assert "exception" not in outcome, f"the in-flight call failed at the HTTP level: {outcome['exception']!r}"
    reply = outcome["reply"]
    assert outcome["secs"] < 15, "the call must fail when the upstream dies, not at the call timeout"
    assert "error" in reply, f"expected a JSON-RPC error, got {reply}"
    msg = reply["error"]["message"]
    assert "fixture" in msg, msg
    assert "9" in msg or "KILL" in msg.upper(), f"the error should give the exit status (signal 9): {msg}"

    after = _ready_again(p, "fixture", pid)
    assert after["restarts"] >= 1
    assert result_text(session.call_tool("fixture:echo", {"text": "back"})["result"]) == "back"


def test_crash_tool_gives_error_then_restart(proxy):
    p = proxy(make_config([fixture_server("fixture")]))
    pid = p.server("fixture")["pid"]
    session = p.session()
    reply = session.call_tool("fixture:crash", {"code": 7}, via="call_tool_destructive")
    assert "error" in reply, reply
    msg = reply["error"]["message"]
    assert "fixture" in msg and "7" in msg, f"error should name the server and exit status 7: {msg}"
    wait_until(lambda: proc_stat(pid) is None or proc_stat(pid)[1] == "Z", 10, 0.1, "the crashed process to be gone")
    after = _ready_again(p, "fixture", pid)
    assert after["restarts"] == 1, after
    assert result_text(session.call_tool("fixture:add", {"a": 1, "b": 2})["result"]) == "3"
    log = p.rest("GET", "/api/v1/servers/fixture/logs?tail=200").json()["lines"]
    main = p.all_logs()
    assert "7" in main and "fixture" in main, "the exit should be logged"
    assert isinstance(log, list)


def test_repeated_crashes_back_off(proxy):
    """Restarts use backoff (1 s doubling): three crashes in a row take at least 1 + 2 s of waiting."""
    p = proxy(make_config([fixture_server("fixture")]))
    session = p.session()
    t0 = time.monotonic()
    for n in range(1, 4):
        pid = p.server("fixture")["pid"]
        session.call_tool("fixture:crash", {"code": 1}, via="call_tool_destructive")
        _ready_again(p, "fixture", pid, min_restarts=n)
    elapsed = time.monotonic() - t0
    assert elapsed >= 2.5, f"three crash/restart cycles took {elapsed:.2f}s: no backoff between restarts"
    assert p.server("fixture")["restarts"] == 3


def test_server_that_fails_to_start_is_reported(proxy, tmp_path):
    missing = tmp_path / "does-not-exist"
    p = proxy(make_config([fixture_server("fixture"),
                           {"name": "ghost", "command": str(missing), "protocol": "stdio", "quarantined": False,
                            "isolation": {"mode": "none"}}]), wait=["fixture"])
    s = wait_until(lambda: (lambda x: x if x and x["last_error"] else None)(p.server("ghost")), 30, 0.2,
                   "ghost to report its error")
    assert s["state"] in ("failed", "restarting"), s
    assert "does-not-exist" in s["last_error"] or "No such file" in s["last_error"], s


def _stubborn(name, *flags):
    return python_server(name, [str(SERVERS_DIR / "stubborn_server.py"), *flags])


def _tree(p):
    procs = descendants(p.pid)
    assert procs, "the proxy has no child processes"
    return procs


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_leaves_no_child(proxy, sig):
    p = proxy(make_config([fixture_server("fixture"), _stubborn("stubborn", "--ignore-eof")]))
    p.session().call_tool("fixture:echo", {"text": "warm"})
    tree = _tree(p)
    assert any("mcpproxy-fixture" in x.cmdline for x in tree), tree
    p.send_signal(sig)
    rc = p.proc.wait(30)
    assert rc == 0, f"graceful stop should exit 0, got {rc}; stderr:\n{p.stderr()[-2000:]}"
    left = wait_gone(tree, 2)
    kill_all(left)
    assert not left, f"processes left after {sig.name}: {left}"


def test_sigterm_stops_a_server_that_ignores_sigterm(proxy):
    p = proxy(make_config([_stubborn("stubborn", "--ignore-eof", "--ignore-sigterm")]))
    tree = _tree(p)
    p.send_signal(signal.SIGTERM)
    p.proc.wait(40)  # the ladder must end with SIGKILL for this one
    left = wait_gone(tree, 2)
    kill_all(left)
    assert not left, f"processes left: {left}"


def test_sigkill_of_proxy_leaves_no_child(proxy):
    p = proxy(make_config([fixture_server("fixture"), _stubborn("stubborn", "--ignore-eof", "--ignore-sigterm")]))
    tree = _tree(p)
    p.send_signal(signal.SIGKILL)
    p.proc.wait(10)
    left = wait_gone(tree, 3)
    kill_all(left)
    assert not left, f"children outlived a SIGKILLed proxy: {left}"


def test_sigkill_of_proxy_leaves_no_grandchild(proxy):
    """A server that starts its own child (like npx → node): the whole tree must go."""
    p = proxy(make_config([_stubborn("stubborn", "--ignore-eof", "--grandchild")]))
    p.session().call_tool("stubborn:pids", {})
    # Found on the host's process tree: the server may see other pids (its own PID namespace).
    tree = wait_until(lambda: (lambda t: t if any("sleep 600" in proc_cmdline(x.pid) for x in t) else None)(_tree(p)),
                      10, 0.1, "the grandchild to appear under the proxy")
    p.send_signal(signal.SIGKILL)
    p.proc.wait(10)
    left = wait_gone(tree, 3)
    kill_all(left)
    assert not left, f"processes outlived a SIGKILLed proxy: {left}"


def test_sigterm_of_proxy_leaves_no_grandchild(proxy):
    p = proxy(make_config([_stubborn("stubborn", "--grandchild")]))
    p.session().call_tool("stubborn:pids", {})
    tree = _tree(p)
    p.send_signal(signal.SIGTERM)
    p.proc.wait(30)
    left = wait_gone(tree, 2)
    kill_all(left)
    assert not left, f"processes left after SIGTERM: {left}"


def test_proxy_env_does_not_leak_to_servers(proxy):
    canary = "e2e-canary-" + os.urandom(4).hex()
    p = proxy(make_config([fixture_server("fixture", env={"GIVEN": "configured-value"})]),
              env={"E2E_HOST_SECRET": canary})
    s = p.session()
    r = s.call_tool("fixture:get_env", {"name": "E2E_HOST_SECRET"})
    assert "result" in r, r
    assert result_text(r["result"]) == "(unset)"
    assert result_text(s.call_tool("fixture:get_env", {"name": "MCPPROXY_API_KEY"})["result"]) == "(unset)"
    assert result_text(s.call_tool("fixture:get_env", {"name": "GIVEN"})["result"]) == "configured-value"
    names = result_text(s.call_tool("fixture:list_env", {})["result"]).split("\n")
    assert "E2E_HOST_SECRET" not in names and "MCPPROXY_API_KEY" not in names
