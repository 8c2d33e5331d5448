"""Reliability under faults (issue 10, with issue 11's busy-server rule and issue 16's last_error
rules): a lost or full stderr, wedged stdio and HTTP upstreams, over-long lines, concurrent
lifecycle operations, crash-loop accounting, list_changed floods and a fixture under concurrency.
Every test drives the real binary and real upstream processes."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from e2e_support import (descendants, fixture_server as _fixture_server, http_server, make_config, result_text,
                         wait_until)


def fixture_server(name, *args, **kw):
    """The fixture with its fault tools (close_stdout, overlong, block, flood)."""
    return _fixture_server(name, "--fault-tools", *args, **kw)


def _rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _restarted(p, name, old_pid, timeout=30):
    def check():
        s = p.server(name)
        if s and s["state"] == "ready" and s["pid"] and s["pid"] != old_pid:
            return s
        return None
    return wait_until(check, timeout, 0.1, f"{name} to be restarted and ready")


def _call_in_thread(session, name, args, timeout=120):
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            out["reply"] = session.call_tool(name, args, timeout=timeout)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out["exception"] = exc
        out["secs"] = time.monotonic() - t0
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


# ---------------------------------------------------------------------------------------------
# Case 5: a lost or full stderr must not kill or stall the proxy


def _config_with_unknown_keys(n_keys: int, servers):
    """A config whose top level has `n_keys` long unknown keys: each load logs one warning per
    key to stderr (about 250 bytes each)."""
    cfg = make_config(servers)
    for i in range(n_keys):
        cfg[f"x_unknown_setting_{i:05d}_" + "z" * 180] = i
    return cfg


def test_closed_stderr_does_not_kill_the_proxy(proxy):
    """`mcpproxy serve 2>&1 | head -1`: the reader goes away after one line; later log lines
    meet EPIPE and are dropped, the proxy keeps serving."""
    p = proxy.create(make_config([fixture_server("a")]))
    r, w = os.pipe()
    p.start(stderr=w)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        first = reader.readline()
    assert first, "the proxy wrote nothing to stderr"
    # The read end is closed now: every later stderr write gets EPIPE.
    p.wait_healthy()
    p.wait_ready(["a"])
    for i in range(3):
        # Each reload logs a warning per unknown key and "server added" to stderr.
        p.write_config(_config_with_unknown_keys(5, [fixture_server("a"), fixture_server(f"b{i}")]))
        wait_until(lambda: (p.server(f"b{i}") or {}).get("state") == "ready", 30, 0.1, f"b{i} ready after reload")
        assert p.running(), f"mcpproxy died after its stderr reader went away (exit {p.proc.returncode})"
    s = p.session()
    assert result_text(s.call_tool("a:echo", {"text": "still here"})["result"]) == "still here"
    assert p.running()


def test_full_stderr_pipe_does_not_block_the_proxy(proxy):
    """stderr is a pipe nobody reads: after 64 KiB the kernel blocks the writer. Start-up logs
    ~250 KiB of warnings; the proxy must come up and serve anyway, dropping what does not fit."""
    p = proxy.create(_config_with_unknown_keys(1000, [fixture_server("a")]))
    r, w = os.pipe()
    try:
        p.start(stderr=w)
        os.close(w)
        w = -1
        p.wait_healthy(timeout=60)
        p.wait_ready(["a"], timeout=60)
        s = p.session()
        assert result_text(s.call_tool("a:echo", {"text": "x"})["result"]) == "x"
        # A reload logs another ~250 KiB; the new server must still come up promptly.
        p.write_config(_config_with_unknown_keys(1000, [fixture_server("a"), fixture_server("b")]))
        wait_until(lambda: (p.server("b") or {}).get("state") == "ready", 60, 0.1, "b ready after reload")
        assert p.running()
        # The drops are said on stderr once it drains again.
        drained = b""
        os.set_blocking(r, False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"dropped" not in drained:
            try:
                chunk = os.read(r, 1 << 20)
                drained += chunk
            except BlockingIOError:
                time.sleep(0.05)
        assert b"log line(s) were dropped" in drained
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)


# ---------------------------------------------------------------------------------------------
# Case 1: wedged stdio upstream, over-long line; issue 11: busy is not dead


def test_stdout_eof_fails_calls_at_once_and_restarts(proxy):
    p = proxy(make_config([fixture_server("w")], call_tool_timeout="60s"))
    pid = p.server("w")["pid"]
    s = p.session()
    th, out = _call_in_thread(s, "w:sleep", {"ms": 30000})
    time.sleep(0.5)
    t0 = time.monotonic()
    reply = s.call_tool("w:close_stdout", {}, timeout=70)
    took = time.monotonic() - t0
    assert took < 10, f"a call to a server that closed its stdout waited {took:.1f}s (call timeout 60s)"
    assert "error" in reply, reply
    assert "closed its stdout" in reply["error"]["message"], reply
    th.join(15)
    assert not th.is_alive(), "the call in flight was not failed when stdout closed"
    assert "closed its stdout" in out["reply"]["error"]["message"], out
    after = _restarted(p, "w", pid)
    assert after["restarts"] == 1
    log = p.main_log()
    assert "closed its stdout" in log
    assert "signal 9" not in log, "the proxy's own kill must not be reported as the failure"
    assert result_text(s.call_tool("w:echo", {"text": "ok"})["result"]) == "ok"


def test_overlong_line_is_a_crash_logged_with_the_limit(proxy):
    p = proxy(make_config([fixture_server("big")], call_tool_timeout="60s"))
    pid = p.server("big")["pid"]
    s = p.session()
    t0 = time.monotonic()
    reply = s.call_tool("big:overlong", {"bytes": (64 << 20) + (1 << 20)}, timeout=90)
    assert time.monotonic() - t0 < 45
    assert "error" in reply, str(reply)[:300]
    msg = reply["error"]["message"]
    assert "67108864-byte limit" in msg, msg
    _restarted(p, "big", pid)
    assert "67108864-byte limit" in p.main_log()
    assert result_text(s.call_tool("big:echo", {"text": "ok"})["result"]) == "ok"


def test_busy_server_is_not_restarted_for_missed_pings(proxy):
    """Pings every 0.3 s, two misses allowed: a call that blocks the server's only loop for 4 s
    makes it miss ~12 pings, but a call is in flight and the pipe is open: busy, not dead."""
    cfg = make_config([fixture_server("busy")], supervision={"ping_interval": "300ms", "ping_misses": 2})
    p = proxy(cfg)
    pid = p.server("busy")["pid"]
    s = p.session()
    reply = s.call_tool("busy:block", {"ms": 4000}, timeout=60)
    assert result_text(reply["result"]) == "unblocked", reply
    after = p.server("busy")
    assert after["pid"] == pid and after["restarts"] == 0, after


def test_wedged_server_without_calls_is_restarted_after_missed_pings(proxy):
    """The counterpart: once the blocked call timed out, nothing is in flight; missed pings count."""
    cfg = make_config([fixture_server("hung")], call_tool_timeout="1s",
                      supervision={"ping_interval": "300ms", "ping_misses": 2})
    p = proxy(cfg)
    pid = p.server("hung")["pid"]
    s = p.session()
    reply = s.call_tool("hung:block", {"ms": 60000}, timeout=30)
    assert "error" in reply, reply
    after = _restarted(p, "hung", pid, timeout=30)
    assert "missed" in (after["last_error"] or "") or "missed 2 pings" in p.main_log(), after


# ---------------------------------------------------------------------------------------------
# Case 2: wedged HTTP upstream


def test_http_timeouts_release_connections_and_report_unresponsive(proxy, py_http_upstream):
    url = py_http_upstream("streamable-http")
    p = proxy(make_config([http_server("slow", url)], call_tool_timeout="1s"))
    s = p.session()

    def stalled(_):
        return s.call_tool("slow:wait_ms", {"ms": 600000}, timeout=30)
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(stalled, range(12)))
    for r in replies:
        assert "error" in r and "did not answer" in r["error"]["message"], r
    st = p.server("slow")
    assert st["state"] == "unresponsive", st
    assert "timed out" in (st["last_error"] or ""), st
    # More stalled replies than the connection pool holds: a fast call must still get through.
    t0 = time.monotonic()
    ok = s.call_tool("slow:multiply", {"a": 6, "b": 7}, timeout=30)
    assert result_text(ok["result"]) == "42", ok
    assert time.monotonic() - t0 < 5
    st = wait_until(lambda: (lambda x: x if x["state"] == "ready" else None)(p.server("slow")), 10, 0.1,
                    "slow back to ready")
    assert st["last_error"] is None, st


# ---------------------------------------------------------------------------------------------
# Case 4 (and issue 16): crash-loop accounting, first cause kept, last_error cleared


def test_startup_timeout_is_reported_as_such_and_crash_loop_ends_failed(proxy):
    slow = fixture_server("slow", "--startup-delay-ms", "5000", timeout="1s")
    p = proxy(make_config([slow], supervision={"max_failed_starts": 2}), wait=False)

    def failed():
        s = p.server("slow")
        return s if s and s["state"] == "failed" else None
    st = wait_until(failed, 30, 0.1, "slow to end failed after 2 failed starts")
    err = st["last_error"] or ""
    assert "did not complete initialize within 1 s" in err, err
    assert "143" not in err and "exit status" not in err, err
    assert "2 failed starts" in err, err
    log = p.main_log()
    assert log.count("restarting in") == 1, "one failure must schedule one restart"
    assert "exit status 143" not in log
    # A config change retries it; a fixed config recovers it and clears last_error.
    p.write_config(make_config([fixture_server("slow", timeout="10s")], supervision={"max_failed_starts": 2}))
    st = wait_until(lambda: (lambda x: x if x and x["state"] == "ready" else None)(p.server("slow")), 30, 0.1,
                    "slow ready after the config fix")
    assert st["last_error"] is None, st


def test_manual_restart_retries_a_failed_server(proxy, tmp_path):
    flag = tmp_path / "may-start"
    # A shell wrapper that fails until the flag file exists.
    script = tmp_path / "gate.sh"
    fixture = fixture_server("g")["command"]
    script.write_text(f"#!/bin/sh\n[ -e {flag} ] || exit 7\nexec {fixture} --name g\n")
    script.chmod(0o755)
    entry = {"name": "g", "command": str(script), "protocol": "stdio", "quarantined": False,
             "isolation": {"mode": "none"}}
    p = proxy(make_config([entry], supervision={"max_failed_starts": 2}), wait=False)
    st = wait_until(lambda: (lambda x: x if x and x["state"] == "failed" else None)(p.server("g")), 30, 0.1, "g failed")
    assert "exit status 7" in st["last_error"], st
    flag.write_text("")
    assert p.rest("POST", "/api/v1/servers/g/restart").status == 200
    st = wait_until(lambda: (lambda x: x if x and x["state"] == "ready" else None)(p.server("g")), 30, 0.1, "g ready")
    assert st["last_error"] is None


# ---------------------------------------------------------------------------------------------
# Case 3: concurrent enable/disable/restart


def _fixture_children(p):
    return {d.pid for d in descendants(p.pid) if "mcpproxy-fixture" in d.cmdline}


def test_concurrent_lifecycle_operations_leave_one_child_per_running_server(proxy):
    names = [f"s{i:02d}" for i in range(12)]
    p = proxy(make_config([fixture_server(n) for n in names]))
    rng = random.Random(10)
    ops = [(rng.choice(names), rng.choice(["enable", "disable", "restart"])) for _ in range(540)]
    failures = []

    def run(op):
        name, verb = op
        r = p.rest("POST", f"/api/v1/servers/{name}/{verb}", timeout=120)
        if r.status != 200:
            failures.append((name, verb, r.status, r.text[:200]))
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(run, ops))
    assert not failures, failures[:5]
    cfg = {s["name"]: s for s in p.read_config()["mcpServers"]}

    def settled():
        servers = {s["name"]: s for s in p.servers()}
        for n in names:
            want = "ready" if cfg[n].get("enabled", True) else "disabled"
            if servers[n]["state"] != want:
                return None
        return servers
    servers = wait_until(settled, 90, 0.2, "every server to match its config (ready or disabled)")
    reported = {s["pid"] for s in servers.values() if s["state"] == "ready"}
    assert None not in reported
    # Children that are still being stopped may linger for the stop ladder; then none may remain.
    live = wait_until(lambda: (lambda c: c if c == reported else None)(_fixture_children(p)), 20, 0.2,
                      f"live fixture children to equal the reported pids {sorted(reported)}")
    assert live == reported
    s = p.session()
    for n, srv in servers.items():
        if srv["state"] == "ready":
            assert result_text(s.call_tool(f"{n}:echo", {"text": n})["result"]) == n


# ---------------------------------------------------------------------------------------------
# Case 6: list_changed flood


def test_list_changed_flood_is_coalesced(proxy):
    p = proxy(make_config([fixture_server("fl")]))
    s = p.session()
    rss_before = _rss_kb(p.pid)
    t0 = time.monotonic()
    reply = s.call_tool("fl:flood", {"count": 20000}, timeout=120)
    assert result_text(reply["result"]) == "sent 20000", reply
    # REST stays responsive during and after the flood.
    r = p.rest("GET", "/api/v1/servers", timeout=10)
    assert r.status == 200
    time.sleep(2)
    server_log = (p.data_dir / "logs" / "server-fl.log").read_text()
    relists = server_log.count("tools changed:")
    assert relists <= 50, f"{relists} re-lists for one flood (at most one running and one pending)"
    assert time.monotonic() - t0 < 60
    assert result_text(s.call_tool("fl:echo", {"text": "after"})["result"]) == "after"
    rss_flood = _rss_kb(p.pid)
    # Bounded memory after a burst of large results too (16 sessions x 6 results of 2 MB).
    def burst(i):
        sess = p.session()
        for _ in range(6):
            r = sess.call_tool("fl:big", {"bytes": 2 << 20}, timeout=120)
            assert len(result_text(r["result"])) == 2 << 20
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(burst, range(16)))
    rss_burst = _rss_kb(p.pid)
    print(f"\nRSS {rss_before} KiB before, {rss_flood} after 20000 list_changed, {rss_burst} after 96 concurrent 2 MB results")
    assert rss_flood <= rss_before + 30 * 1024, (rss_before, rss_flood)
    assert rss_burst <= rss_before + 60 * 1024, (rss_before, rss_flood, rss_burst)


# ---------------------------------------------------------------------------------------------
# Case 9: the fixture itself under concurrency


def test_fixture_survives_ten_concurrent_sleeps(proxy):
    p = proxy(make_config([fixture_server("z")], call_tool_timeout="60s"))
    pid = p.server("z")["pid"]
    s = p.session()
    durations = [5000 + (i * 1500) for i in range(10)]  # 5 .. 18.5 s
    t0 = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda ms: s.call_tool("z:sleep", {"ms": ms}, timeout=90), durations))
    took = time.monotonic() - t0
    for r in replies:
        assert result_text(r["result"]) == "slept", r
    # Overlapping sleeps: the whole batch takes about the longest one, not their sum.
    assert took < 2 * max(durations) / 1000, took
    after = p.server("z")
    assert after["pid"] == pid and after["restarts"] == 0, after


# ---------------------------------------------------------------------------------------------
# Case 8 (smaller): one proxy per data dir; runtime dirs of dead instances cleaned at start


def test_second_proxy_on_the_same_data_dir_fails_naming_the_first(proxy):
    first = proxy(make_config([fixture_server("a")]))
    second = proxy.create(make_config([fixture_server("a")]))
    i = second.argv.index("--data-dir")
    second.argv[i + 1] = str(first.data_dir)
    second.start()
    code = second.proc.wait(30)
    assert code != 0
    err = second.stderr()
    assert f"pid {first.pid}" in err and "in use" in err, err
    assert first.running()
    assert first.server("a")["state"] == "ready"


def test_runtime_dirs_of_dead_instances_are_removed_at_start(proxy):
    base = "/run/mcpproxy"
    if os.geteuid() != 0:
        # Unprivileged proxies keep their runtime files under their own data dir.
        p = proxy(make_config([fixture_server("a")]))
        assert (p.data_dir / "run").is_dir()
        return
    first = proxy(make_config([fixture_server("a")]))

    def owned_by(pid):
        # Other proxies may run on this machine: find ours by the pid in its instance lock.
        for d in os.listdir(base):
            try:
                if open(os.path.join(base, d, ".instance.lock")).read().strip() == str(pid):
                    return os.path.join(base, d)
            except OSError:
                pass
        return None
    stale = owned_by(first.pid)
    assert stale, f"no runtime dir under {base} holds pid {first.pid}"
    first.send_signal(9)
    first.proc.wait(10)
    assert os.path.isdir(stale), "a SIGKILLed proxy cannot clean up after itself"
    proxy(make_config([fixture_server("a")]))
    assert not os.path.exists(stale), f"{stale} of a dead instance survived the next start"


def test_idle_and_half_sent_client_connections_are_closed(proxy):
    import socket
    p = proxy(make_config([fixture_server("a")], client_idle_timeout="2s"))
    socks = []
    for i in range(200):
        c = socket.create_connection(("127.0.0.1", p.port), timeout=30)
        if i % 2:
            c.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        else:
            c.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0")
        socks.append(c)
    t0 = time.monotonic()
    for c in socks:
        try:
            data = c.recv(4096)
        except (ConnectionResetError, TimeoutError, socket.timeout) as exc:
            data = repr(exc).encode()
        assert not data.startswith(b"TimeoutError"), "a half-sent connection was held open"
        c.close()
    assert time.monotonic() - t0 < 20
    # The proxy still serves.
    s = p.session()
    assert result_text(s.call_tool("a:echo", {"text": "x"})["result"]) == "x"


def test_oversized_body_is_drained_and_answered_413(proxy):
    import socket
    p = proxy(make_config([fixture_server("a")], max_request_body="1m"))
    body = b"{" + b" " * (16 << 20) + b"}"
    c = socket.create_connection(("127.0.0.1", p.port), timeout=20)
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{p.port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nAuthorization: Bearer {p.api_key}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    c.sendall(head)
    c.sendall(body)  # blocks for good if the proxy stops reading
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = c.recv(65536)
        if not chunk:
            break
        reply += chunk
    c.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


# ---------------------------------------------------------------------------------------------
# Case 7: many servers


def test_many_servers_start_in_bounded_waves_without_a_thread_per_child(proxy):
    n = 100
    names = [f"m{i:03d}" for i in range(n)]
    t0 = time.monotonic()
    p = proxy(make_config([_fixture_server(x) for x in names]), ready_timeout=180)
    took = time.monotonic() - t0
    servers = p.servers()
    assert sum(1 for s in servers if s["state"] == "ready") == n
    threads = len(os.listdir(f"/proc/{p.pid}/task"))
    fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    print(f"\n{n} servers ready in {took:.1f}s; proxy threads {threads}, fds {fds}")
    # No thread per child (the exit of every child is watched by one reaper thread); per child
    # only its pipes (stdin, stdout, stderr), a pidfd and its log file.
    assert threads < 64, f"{threads} threads for {n} servers"
    assert fds < 64 + 6 * n, f"{fds} descriptors for {n} servers"
    s = p.session()
    found = s.call_tool("m042:echo", {"text": "hi"})
    assert result_text(found["result"]) == "hi"


# ---------------------------------------------------------------------------------------------
# State database problems after start-up: shown on the console and in /healthz, calls unaffected


def test_full_disk_under_the_state_db_is_reported_on_console_and_healthz(proxy, tmp_path):
    from e2e_support import http
    p = proxy.create(make_config([fixture_server("d")], log_call_arguments=True))
    p.data_dir.mkdir(parents=True, exist_ok=True)
    # A small private filesystem for the data dir, so "disk full" is real and touches nothing else.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(p.data_dir)], check=True)
    try:
        p.start()
        p.wait_healthy()
        p.wait_ready(["d"])
        body = http("GET", f"{p.base_url}/healthz").json()
        assert body["status"] == "ok" and body["state_db"]["status"] == "ok", body

        filler = p.data_dir / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
                    f.flush()
            except OSError:
                pass
        s = p.session()
        # Each call's arguments (64 KB, logged in full) must be appended to the activity log.
        big = "y" * 60000
        for _ in range(8):
            assert result_text(s.call_tool("d:echo", {"text": big})["result"]) == big  # calls still work

        def degraded():
            b = http("GET", f"{p.base_url}/healthz").json()
            return b if b["status"] == "degraded" else None
        body = wait_until(degraded, 20, 0.2, "/healthz to report the state database failing")
        assert body["state_db"]["status"] == "failing" and body["state_db"]["failed_writes"] >= 1, body
        assert "full" in body["state_db"]["error"].lower(), body
        assert str(p.data_dir) not in json.dumps(body), body  # a public route names no path
        wait_until(lambda: "the state database cannot be written" in p.stderr(), 10, 0.1, "console line")
        assert p.stderr().count("the state database cannot be written") == 1  # once, not per call

        filler.unlink()
        assert result_text(s.call_tool("d:echo", {"text": "after"})["result"]) == "after"
        body = wait_until(lambda: (lambda b: b if b["status"] == "ok" else None)(http("GET", f"{p.base_url}/healthz").json()),
                          20, 0.2, "/healthz ok again")
        assert body["state_db"]["status"] == "ok" and body["state_db"]["failed_writes"] >= 1, body
        wait_until(lambda: "the state database can be written again" in p.stderr(), 10, 0.1, "recovery line")
    finally:
        p.finish()
        subprocess.run(["umount", "-l", str(p.data_dir)], check=False)


def test_corrupt_state_db_stops_start_up_with_its_reason_on_the_console(proxy):
    p = proxy.create(make_config([fixture_server("c")]))
    p.data_dir.mkdir(parents=True, exist_ok=True)
    (p.data_dir / "mcpproxy.db").write_bytes(b"this is not a database" * 100)
    p.start()
    rc = p.proc.wait(timeout=30)
    assert rc != 0
    err = p.stderr()
    assert "mcpproxy.db" in err and "corrupt" in err and "untouched" in err, err
    assert (p.data_dir / "mcpproxy.db").read_bytes() == b"this is not a database" * 100  # never reset
