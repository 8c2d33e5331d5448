"""Sandbox mode end to end: a real PyPI server (mcp-server-time) and the project's fixture run
under the native sandbox behind /mcp, driven by the real MCP Python client. The sandboxed process
really runs as the unprivileged uid with no_new_privs, seccomp and its own network namespace, and
it cannot read the proxy's API key or a planted SSH key.

Needs: the distribution-Python venv with mcp-server-time that scripts/setup.sh creates under /opt
(a server dropped to its own unprivileged uid cannot enter /root, where the test venv's Python may live).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from e2e_support import fixture_server, free_port, make_config, reachable_fixture, run_async, wait_until

SANDBOX_VENV = Path(os.environ.get("MCPPROXY_SANDBOX_VENV", "/opt/mcpproxy-test/venv-sandbox"))
# sandbox.uid_range's default: every server gets its own uid from it.
UID_RANGE = range(1_900_000_000, 1_900_065_536)


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def test_pypi_server_answers_in_the_sandbox(proxy):
    python = SANDBOX_VENV / "bin" / "python"
    assert python.exists(), f"{python} missing: run scripts/setup.sh"
    server = {"name": "time", "command": str(python), "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
              "quarantined": False, "isolation": {"mode": "sandbox", "network_mode": "none"}}
    p = proxy(make_config([server]), wait=["time"])

    info = p.server("time")
    assert info["state"] == "ready"
    iso = info["isolation"]
    assert iso["mode"] == "sandbox" and iso["reason"] == "per-server mode"
    assert iso["enforcement"]["landlock"].startswith("abi ")
    assert iso["enforcement"]["not_enforced"] == "none"
    assert iso["enforcement"]["network"].startswith("none")

    # The server process itself: dropped uid, no_new_privs, seccomp filter, own session.
    status = _status(info["pid"])
    assert int(status["Uid"].split()[0]) in UID_RANGE, status["Uid"]
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert os.getsid(info["pid"]) == info["pid"]
    # Its own network namespace: not the proxy's.
    assert os.readlink(f"/proc/{info['pid']}/ns/net") != os.readlink(f"/proc/{p.pid}/ns/net")

    async def body():
        async with p.client() as s:
            found = await s.call_tool("retrieve_tools", {"query": "current time in a timezone", "limit": 3})
            called = await s.call_tool("call_tool", {"name": "time:get_current_time", "args": {"timezone": "Asia/Tokyo"}})
            return found, called
    found, called = run_async(body)
    assert "time:get_current_time" in _text(found)
    assert not called.is_error, _text(called)
    assert "Asia/Tokyo" in _text(called)


def test_sandboxed_server_cannot_read_secrets(proxy, tmp_path):
    fixture = reachable_fixture()
    work = Path("/tmp") / f"mcpx-e2e-work-{os.getpid()}"
    work.mkdir(mode=0o777, exist_ok=True)
    work.chmod(0o777)
    # A planted key that file permissions alone would let anyone read: only the sandbox stops it.
    secret_dir = Path("/tmp") / f"mcpx-e2e-secret-{os.getpid()}" / ".ssh"
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret_dir.parent.chmod(0o755)
    secret_dir.chmod(0o755)
    (secret_dir / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY----- planted\n")
    (secret_dir / "id_rsa").chmod(0o644)

    server = fixture_server("box", isolation={"mode": "sandbox", "network_mode": "none"}, working_dir=str(work))
    server["command"] = fixture
    p = proxy(make_config([server]), wait=["box"])
    api_key_file = Path(p.data_dir) / "api_key"
    if not api_key_file.exists():  # the harness passes the key by env; plant a file for the test
        api_key_file.write_text("not-for-servers\n")
    api_key_file.chmod(0o644)

    async def body():
        async with p.client() as s:
            key = await s.call_tool("call_tool", {"name": "box:read_file", "args": {"path": str(api_key_file)}})
            ssh = await s.call_tool("call_tool", {"name": "box:read_file", "args": {"path": str(secret_dir / "id_rsa")}})
            usr = await s.call_tool("call_tool", {"name": "box:read_file", "args": {"path": "/usr/lib/os-release"}})
            wrote = await s.call_tool("call_tool", {"name": "box:write_file", "args": {"path": str(work / "ok.txt"), "content": "fine"}})
            escape = await s.call_tool("call_tool", {"name": "box:write_file", "args": {"path": "/tmp/mcpx-escaped.txt", "content": "x"}})
            who = await s.call_tool("call_tool", {"name": "box:whoami", "args": {}})
            return key, ssh, usr, wrote, escape, who
    key, ssh, usr, wrote, escape, who = run_async(body)
    assert key.is_error and "Permission denied" in _text(key), _text(key)
    assert ssh.is_error and "planted" not in _text(ssh), _text(ssh)
    assert not usr.is_error and "ID=" in _text(usr)
    assert not wrote.is_error and (work / "ok.txt").read_text() == "fine"
    assert escape.is_error and not Path("/tmp/mcpx-escaped.txt").exists()
    uid = re.search(r"uid=(\d+)", _text(who))
    assert uid and int(uid.group(1)) in UID_RANGE, _text(who)


def _cgroup_dirs(leaf_prefix: str) -> list[Path]:
    roots = [Path("/sys/fs/cgroup/mcpproxy")] + [Path(f"/sys/fs/cgroup/{c}/mcpproxy") for c in ("memory", "cpu", "pids")]
    return [d for r in roots if r.is_dir() for d in r.iterdir() if d.name.startswith(leaf_prefix)]


def test_limits_are_reported_per_server_and_cgroups_removed_on_stop(proxy, tmp_path):
    """Issue 9: each server its own uid, default cgroup limits, a bounded home, unix sockets
    denied, the proxy's own port dropped from allow_tcp_connect, the cgroup gone after a stop."""
    fixture = reachable_fixture()
    port = free_port()

    def server(name, **iso):
        s = fixture_server(name, isolation={"mode": "sandbox", **iso})
        s["command"] = fixture
        return s

    cfg = make_config([server("sba"), server("sbb", network_mode="none"), server("sbc", allow_tcp_connect=[port, 443])])
    p = proxy(cfg, wait=["sba", "sbb", "sbc"], port=port)
    ec = p.server("sbc")["isolation"]["enforcement"]
    assert ec["tcp_connect"] == "only ports 443", ec
    assert ec["proxy_port"].startswith("unreachable"), ec
    assert f"allow_tcp_connect lists {port}, the proxy's own listen port; dropped" in p.all_logs()
    a, b = p.server("sba"), p.server("sbb")
    ea, eb = a["isolation"]["enforcement"], b["isolation"]["enforcement"]
    assert ea["uid"] != eb["uid"] and "own uid" in ea["uid"], (ea["uid"], eb["uid"])
    assert _status(a["pid"])["Uid"].split()[0] != _status(b["pid"])["Uid"].split()[0]
    for e in (ea, eb):
        assert e["memory"] == "2g (cgroup, default)", e
        assert e["pids"].startswith("256 (cgroup pids.max"), e
        assert e["unix_sockets"].startswith("denied"), e
        assert "private tmpfs" in e["home"], e
        assert e["not_enforced"] == "none", e
    assert ea["proxy_port"].startswith("reachable"), ea
    assert eb["proxy_port"] == "unreachable (no network)", eb
    leaves = _cgroup_dirs("sba-")
    assert leaves, "no cgroup for the running server"

    r = p.rest("POST", "/api/v1/servers/sba/disable")
    assert r.status == 200, r
    wait_until(lambda: not _cgroup_dirs("sba-"), 15, 0.1, "the stopped server's cgroups to be removed")
    assert _cgroup_dirs("sbb-"), "the other server's cgroup must stay"
