"""Secrets encrypted at rest, end to end: `mcpproxy secret set` (value on stdin) stores a value
that a `${secret:NAME}` reference in a server's env / HTTP headers / url hands to the server at
launch, and that appears nowhere else: not in the config, the database file, the logs, REST
answers, `doctor --json`, `upstream list --json`, the activity log, or any process's command line.
Real proxy binary, real fixture server (isolation none, sandbox, and docker on every container
backend: docker and podman, with runc and gVisor's runsc), a real HTTP upstream.

Docker mode: the value travels in a file on a read-only tmpfs mount that the static launcher
(the container's entrypoint) turns into the server's environment; the proxy deletes the file once
the server has started. The tests also grep `docker inspect` / `podman inspect` and the host
secret directory.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as pysecrets
import shutil
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from container_backends import IMAGE, container_backend  # noqa: F401 (the fixture)
from e2e_support import (bin_dir, fixture_server, make_config, reachable_fixture, result_text, run_async, wait_until)


def _value(tag: str) -> str:
    """A value that cannot appear by chance anywhere."""
    return f"s3cr3t-{tag}-{pysecrets.token_hex(12)}"


def _set_secret(p, name: str, value: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(bin_dir() / "mcpproxy"), "secret", "set", name, *extra, "--data-dir", str(p.data_dir)],
                       env={**p.env, **(env or {})}, input=value + "\n", capture_output=True, text=True, timeout=60)
    return r


def _get_env(p, server: str, var: str) -> str:
    async def body():
        async with p.client() as s:
            return await s.call_tool("call_tool", {"name": f"{server}:get_env", "args": {"name": var}})
    return "".join(getattr(c, "text", "") for c in run_async(body).content)


def _all_files(root: Path) -> list[Path]:
    return [f for f in root.rglob("*") if f.is_file()]


def _assert_nowhere(p, value: str, extra_texts: dict[str, str] | None = None) -> None:
    """The value is in no file of the proxy's work dir (config, database and WAL, key-less data,
    every log), no REST answer, no CLI JSON, no process's command line, no activity record."""
    needle = value.encode()
    places: dict[str, bytes] = {}
    for f in _all_files(p.workdir):
        try:
            places[str(f)] = f.read_bytes()
        except OSError:
            pass
    assert str(p.config_path) in places and str(p.data_dir / "mcpproxy.db") in places
    assert any("/logs/" in k for k in places), "the server and main logs were checked"
    for path in ["/api/v1/servers", "/api/v1/status", "/api/v1/activity", "/api/v1/secrets", "/api/v1/tokens"]:
        r = p.rest("GET", path)
        assert r.status == 200, (path, r)
        places[path] = r.body
    for s in p.servers():
        for sub in ("", "/diagnostics", "/tools", "/logs?tail=500", "/security"):
            r = p.rest("GET", f"/api/v1/servers/{s['name']}{sub}")
            places[f"/api/v1/servers/{s['name']}{sub}"] = r.body
    for args in (["doctor", "--json"], ["upstream", "list", "--json"], ["secret", "list", "--json"], ["status", "--json"]):
        r = p.cli(*args)
        places[" ".join(args)] = (r.stdout + r.stderr).encode()
    # Every process's argv (what `ps` shows).
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            places[f"/proc/{pid}/cmdline"] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            pass
    places["ps"] = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True).stdout
    # The proxy's own environment never holds it (only the server's does).
    places[f"/proc/{p.pid}/environ"] = Path(f"/proc/{p.pid}/environ").read_bytes()
    for k, v in (extra_texts or {}).items():
        places[k] = v.encode()
    leaks = [k for k, v in places.items() if needle in v]
    assert not leaks, f"the secret value leaked into: {leaks}"


def test_cli_secret_reaches_the_server_and_nothing_else(proxy):
    value = _value("env")
    cfg = make_config([fixture_server("fx", env={"GH_TOKEN": "${secret:gh}", "MIXED": "a-${secret:gh}-${secret:other}-$${secret:gh}"})])
    p = proxy.create(cfg)
    # No proxy yet: the CLI writes the database directly.
    r = _set_secret(p, "gh", value)
    assert r.returncode == 0, r
    assert value not in r.stdout + r.stderr
    assert _set_secret(p, "other", "o2").returncode == 0
    key = p.data_dir / "master.key"
    assert key.stat().st_mode & 0o777 == 0o600
    p.start()
    p.wait_healthy()
    p.wait_ready(["fx"])
    assert _get_env(p, "fx", "GH_TOKEN") == value
    assert _get_env(p, "fx", "MIXED") == f"a-{value}-o2-${{secret:gh}}"
    fx = p.server("fx")
    # The listing shows the reference only.
    listed = p.cli("secret", "list", "--json")
    assert listed.returncode == 0, listed
    names = [s["name"] for s in json.loads(listed.stdout)["secrets"]]
    assert names == ["gh", "other"]
    rest = p.rest("GET", "/api/v1/secrets").json()
    assert [s["name"] for s in rest["secrets"]] == ["gh", "other"]
    # The server's environment really holds it (the one place it must be): /proc of its pid.
    assert value.encode() in Path(f"/proc/{fx['pid']}/environ").read_bytes()
    _assert_nowhere(p, value)


def test_secret_set_restarts_servers_that_use_it(proxy):
    cfg = make_config([fixture_server("fx", env={"T": "${secret:tok}"}), fixture_server("plain")])
    p = proxy.create(cfg)
    assert _set_secret(p, "tok", "first").returncode == 0
    p.start()
    p.wait_healthy()
    p.wait_ready()
    plain_pid = p.server("plain")["pid"]
    old = p.server("fx")["pid"]
    assert _get_env(p, "fx", "T") == "first"
    second = _value("second")
    assert _set_secret(p, "tok", second).returncode == 0
    wait_until(lambda: p.server("fx")["pid"] not in (None, old) and p.server("fx")["state"] == "ready", 30,
               what="fx restarted with the new secret")
    p.wait_ready(["fx"])
    assert _get_env(p, "fx", "T") == second
    assert p.server("plain")["pid"] == plain_pid, "a server that does not use the secret keeps running"
    # Through REST too (admin): set, list, delete; no answer echoes the value.
    third = _value("rest")
    r = p.rest("PUT", "/api/v1/secrets/tok", body={"value": third})
    assert r.status == 200 and third.encode() not in r.body, r
    wait_until(lambda: p.server("fx")["state"] == "ready" and _get_env(p, "fx", "T") == third, 30, what="REST set applied")
    assert p.rest("PUT", "/api/v1/secrets/tok", key="wrong", body={"value": "x"}).status == 401
    assert p.rest("DELETE", "/api/v1/secrets/nope").status == 404
    assert p.rest("PUT", "/api/v1/secrets/bad%20name", body={"value": "x"}).status == 400
    _assert_nowhere(p, second)
    _assert_nowhere(p, third)


def test_missing_secret_is_a_clear_start_error(proxy):
    p = proxy(make_config([fixture_server("needs", env={"API_KEY": "${secret:absent_key}"}), fixture_server("ok")]), wait=["ok"])
    wait_until(lambda: p.server("needs")["state"] == "failed", 30, what="needs to fail")
    err = p.server("needs")["last_error"]
    assert 'server "needs"' in err and "env.API_KEY" in err and "${secret:absent_key}" in err, err
    assert "mcpproxy secret set absent_key" in err
    assert "${secret:absent_key}" in p.stderr()
    # Setting it starts the server (it uses the secret: restarted).
    assert _set_secret(p, "absent_key", "now-here").returncode == 0
    wait_until(lambda: p.server("needs")["state"] == "ready", 30, what="needs to start once its secret exists")
    assert _get_env(p, "needs", "API_KEY") == "now-here"


def test_sandbox_mode_gets_the_secret(proxy, tmp_path):
    fixture = reachable_fixture()
    value = _value("sbx")
    server = fixture_server("sbx", env={"SBX_TOKEN": "${secret:sbx}"}, isolation={"mode": "sandbox", "network_mode": "none"})
    server["command"] = str(fixture)
    p = proxy.create(make_config([server]))
    assert _set_secret(p, "sbx", value).returncode == 0
    p.start()
    p.wait_healthy()
    p.wait_ready(["sbx"])
    info = p.server("sbx")
    assert info["isolation"]["mode"] == "sandbox"
    assert _get_env(p, "sbx", "SBX_TOKEN") == value
    # The launcher hands it over at exec time (environment, not argv): the server process (the
    # launcher's pid after exec) holds it in its environment; no argv or log does.
    environ = Path(f"/proc/{info['pid']}/environ").read_bytes()
    assert f"SBX_TOKEN={value}".encode() in environ.split(b"\0")
    assert value.encode() not in Path(f"/proc/{info['pid']}/cmdline").read_bytes()
    _assert_nowhere(p, value)


class _HeaderRecorder(BaseHTTPRequestHandler):
    """A minimal streamable-HTTP MCP server that records each request's path and Authorization."""
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *a):  # quiet
        pass

    def _reply(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.seen.append((self.path, self.headers.get("Authorization")))
        msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if "id" not in msg:
            return self._reply(202)
        m = msg.get("method")
        if m == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "hdr", "version": "1"}}
        elif m == "tools/list":
            result = {"tools": [{"name": "pong", "description": "Answer pong.", "inputSchema": {"type": "object"},
                                 "annotations": {"readOnlyHint": True}}]}
        elif m == "tools/call":
            result = {"content": [{"type": "text", "text": "pong"}]}
        else:
            result = {}
        self._reply(200, {"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def do_GET(self):
        self._reply(405)

    def do_DELETE(self):
        self._reply(200)


def test_http_upstream_header_and_url_secrets(proxy):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    _HeaderRecorder.seen = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        token, path = _value("hdr"), "p" + pysecrets.token_hex(10)
        url = f"http://127.0.0.1:{srv.server_address[1]}/${{secret:mcp_path}}/mcp"
        server = {"name": "remote", "url": url, "protocol": "http", "quarantined": False,
                  "headers": {"Authorization": "Bearer ${secret:remote_token}"}}
        p = proxy.create(make_config([server]))
        assert _set_secret(p, "remote_token", token).returncode == 0
        assert _set_secret(p, "mcp_path", path).returncode == 0
        p.start()
        p.wait_healthy()
        p.wait_ready(["remote"])

        async def body():
            async with p.client() as s:
                return await s.call_tool("call_tool", {"name": "remote:pong", "args": {}})
        assert "pong" in "".join(getattr(c, "text", "") for c in run_async(body).content)
        assert _HeaderRecorder.seen, "the upstream was called"
        assert all(a == f"Bearer {token}" for _, a in _HeaderRecorder.seen), _HeaderRecorder.seen
        assert all(pth == f"/{path}/mcp" for pth, _ in _HeaderRecorder.seen), _HeaderRecorder.seen
        # REST shows the reference, not the value.
        assert "${secret:mcp_path}" in p.server("remote")["url"]
        _assert_nowhere(p, token)
        _assert_nowhere(p, path)
    finally:
        srv.shutdown()


def test_rotate_key_keeps_values_and_wrong_master_key_is_clear(proxy):
    p = proxy.create(make_config([fixture_server("fx", env={"T": "${secret:rot}"})]))
    value = _value("rot")
    assert _set_secret(p, "rot", value).returncode == 0
    key_before = (p.data_dir / "master.key").read_text()
    r = p.cli("secret", "rotate-key")
    assert r.returncode == 0, r
    assert "re-encrypted 1 secret" in r.stdout
    assert (p.data_dir / "master.key").read_text() != key_before
    assert (p.data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    assert not (p.data_dir / "master.key.new").exists()
    p.start()
    p.wait_healthy()
    p.wait_ready(["fx"])
    assert _get_env(p, "fx", "T") == value
    p.stop()

    # A master key from the environment that is not the one the secret was stored with.
    wrong = base64.b64encode(os.urandom(32)).decode()
    p2 = proxy.create(make_config([fixture_server("fx", env={"T": "${secret:rot}"})]), env={"MCPPROXY_MASTER_KEY": wrong})
    shutil.copytree(p.data_dir, p2.data_dir, dirs_exist_ok=True)
    for f in ("mcpproxy.lock",):
        (p2.data_dir / f).unlink(missing_ok=True)
    p2.start()
    p2.wait_healthy()
    wait_until(lambda: p2.server("fx")["state"] == "failed", 30, what="fx to fail under the wrong key")
    err = p2.server("fx")["last_error"]
    assert 'secret "rot" was encrypted with another master key' in err, err
    # Malformed keys: clear CLI errors.
    r = _set_secret(p2, "x", "v", env={"MCPPROXY_MASTER_KEY": "short"})
    assert r.returncode != 0 and "MCPPROXY_MASTER_KEY" in r.stderr and "32" in r.stderr, r
    # A key file others can read is refused, with the fix.
    (p.data_dir / "master.key").chmod(0o644)
    r = _set_secret(p, "y", "v")
    assert r.returncode != 0 and "chmod 600" in r.stderr, r
    (p.data_dir / "master.key").chmod(0o600)
    # Never from argv: `secret set NAME VALUE` is refused by the parser.
    r = subprocess.run([str(bin_dir() / "mcpproxy"), "secret", "set", "z", "value-in-argv", "--data-dir", str(p.data_dir)],
                       env=p.env, input="", capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


def test_the_leak_search_finds_a_plain_value(proxy):
    """The search above is not vacuous: a value written in the config as plain text (no reference)
    is found (in the config file, at least)."""
    value = _value("plain")
    p = proxy(make_config([fixture_server("fx", env={"T": value})]), wait=["fx"])
    try:
        _assert_nowhere(p, value)
    except AssertionError as e:
        assert "mcp_config.json" in str(e), e
    else:
        raise AssertionError("the leak search missed a plain value in the config")


def _call(p, server: str, tool: str, args: dict) -> str:
    async def body():
        async with p.client() as s:
            return await s.call_tool("call_tool", {"name": f"{server}:{tool}", "args": args})
    return "".join(getattr(c, "text", "") for c in run_async(body).content)


def _secret_mount(cb, server: str) -> tuple[str, dict, str]:
    """The container of `server`: its id, its inspect document, and the host directory mounted
    at the secret path."""
    ids = cb.managed_containers(server=server)
    assert len(ids) == 1, ids
    info = cb.inspect(ids[0])
    sources = [m["Source"] for m in info["Mounts"] if m["Destination"] == "/run/mcpproxy/secrets"]
    assert len(sources) == 1, info["Mounts"]
    return ids[0], info, sources[0]


def test_docker_server_gets_the_secret_through_a_removed_file(proxy, container_backend):
    cb = container_backend
    value = _value(f"dk-{cb.id}")
    multi = f"first line\nsecond {pysecrets.token_hex(8)}"
    server = {"name": "dsec", "command": "/fixture", "args": ["--name", "dsec"], "quarantined": False,
              "env": {"DS_TOKEN": "${secret:ds}", "DS_MULTI": "${secret:dsmulti}", "DS_PLAIN": "plain-visible"},
              "isolation": {"mode": "docker", "image": IMAGE, "network_mode": "none"}}
    p = proxy.create(make_config([server], docker_isolation={"mode": "docker", "timeout": "60s", **cb.settings()}))
    assert _set_secret(p, "ds", value).returncode == 0
    assert _set_secret(p, "dsmulti", multi).returncode == 0
    p.start()
    p.wait_healthy()
    p.wait_ready(["dsec"], timeout=120)
    info = p.server("dsec")
    assert info["isolation"]["mode"] == "docker"
    # The server's environment holds the values (multi-line kept), and the plain variable as before.
    assert _get_env(p, "dsec", "DS_TOKEN") == value
    assert _get_env(p, "dsec", "DS_MULTI") == multi
    assert _get_env(p, "dsec", "DS_PLAIN") == "plain-visible"
    assert _call(p, "dsec", "whoami", {}).startswith("uid=65534 gid=65534")

    cid, inspected, host_dir = _secret_mount(cb, "dsec")
    config = inspected["Config"]
    assert config["Entrypoint"] in (["/run/mcpproxy/launch"], "/run/mcpproxy/launch"), config["Entrypoint"]
    # Both mounts are read-only.
    mounts = {m["Destination"]: m for m in inspected["Mounts"]}
    assert mounts["/run/mcpproxy/secrets"]["RW"] is False and mounts["/run/mcpproxy/launch"]["RW"] is False
    assert any(e.startswith("DS_PLAIN=") for e in config["Env"])
    assert not any(e.startswith(("DS_TOKEN=", "DS_MULTI=")) for e in config["Env"])
    # After start the host directory is empty (the file was deleted once initialize was answered)
    # and the file is gone inside the container too.
    wait_until(lambda: os.path.isdir(host_dir) and os.listdir(host_dir) == [], 30, what="the secret file to be removed")
    st = os.stat(host_dir)
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == 65534, (oct(st.st_mode), st.st_uid)
    inside = _call(p, "dsec", "read_file", {"path": "/run/mcpproxy/secrets/env"})
    assert "No such file" in inside, inside
    wrote = _call(p, "dsec", "write_file", {"path": "/run/mcpproxy/secrets/env", "content": "x"})
    assert "Read-only file system" in wrote or "Permission denied" in wrote, wrote
    base = os.path.dirname(host_dir)
    base_texts = {}
    for root, _dirs, files in os.walk(base):
        for f in files:
            try:
                base_texts[os.path.join(root, f)] = Path(root, f).read_text(errors="replace")
            except OSError:
                pass
    inspect_text = cb.cli("inspect", cid).stdout
    # What MCP clients can list: the tools, the server listing (upstream_servers), retrieve_tools.
    mcp = p.session()
    mcp_texts = {
        "MCP tools/list": json.dumps(mcp.request("tools/list")),
        "MCP upstream_servers list": json.dumps(mcp.request("tools/call", {"name": "upstream_servers", "arguments": {"operation": "list"}})),
        "MCP retrieve_tools": json.dumps(mcp.request("tools/call", {"name": "retrieve_tools", "arguments": {"query": "environment variable"}})),
    }
    assert "dsec" in mcp_texts["MCP upstream_servers list"], mcp_texts["MCP upstream_servers list"][:500]
    # Where the value must be: the server process's own environment (what root on the host can
    # read; docs/security.md). Under runc the server is a host process; under gVisor it lives
    # inside the sandbox kernel and its environment is not in any host /proc.
    if not cb.gvisor:
        host_pids = [pid for pid in filter(str.isdigit, os.listdir("/proc"))
                     if (lambda c: c.startswith(b"/fixture\0--name\0dsec"))(Path(f"/proc/{pid}/cmdline").read_bytes() if os.path.exists(f"/proc/{pid}/cmdline") else b"")]
        assert host_pids, "the containerized server is visible as a host process"
        assert any(value.encode() in Path(f"/proc/{pid}/environ").read_bytes() for pid in host_pids)
    for v in (value, multi):
        _assert_nowhere(p, v, {f"{cb.engine} inspect": inspect_text, **base_texts, **mcp_texts})

    # A crash restarts the server in a new container with a new file, removed again; the old
    # container's directory is gone.
    try:
        _call(p, "dsec", "crash", {"code": 3})
    except Exception:
        pass
    wait_until(lambda: (cb.managed_containers(server="dsec") or [cid])[0] != cid and p.server("dsec")["state"] == "ready",
               120, what="dsec restarted in a new container")
    assert _get_env(p, "dsec", "DS_TOKEN") == value
    _, _, new_dir = _secret_mount(cb, "dsec")
    assert new_dir != host_dir and not os.path.exists(host_dir)
    wait_until(lambda: os.listdir(new_dir) == [], 30, what="the new secret file to be removed")
    p.stop()
    assert not os.path.exists(new_dir), "the secret directory is removed when the container stops"
    assert cb.managed_containers(server="dsec") == []


def test_docker_secret_launcher_keeps_the_image_entrypoint(proxy, container_backend, tmp_path):
    """An image with an ENTRYPOINT: `docker run IMAGE cmd` runs `ENTRYPOINT cmd`; with the launcher
    as entrypoint the proxy puts the image's entrypoint after the launcher's `--`, so the same
    command line results (here `/fixture --name epfix`; without it, `epfix` would not be found)."""
    cb = container_backend
    tag = f"mcpproxy-fixture-ep:dsec{os.getpid()}"
    (tmp_path / "Dockerfile").write_text(f'FROM {IMAGE}\nENTRYPOINT ["/fixture", "--name"]\n')
    cb.cli("build", "-q", "-t", tag, str(tmp_path))
    try:
        value = _value(f"ep-{cb.id}")
        server = {"name": "epfix", "command": "epfix", "quarantined": False, "env": {"EP_TOKEN": "${secret:ep}"},
                  "isolation": {"mode": "docker", "image": tag, "network_mode": "none"}}
        p = proxy.create(make_config([server], docker_isolation={"mode": "docker", "timeout": "60s", **cb.settings()}))
        assert _set_secret(p, "ep", value).returncode == 0
        p.start()
        p.wait_healthy()
        p.wait_ready(["epfix"], timeout=120)
        assert _get_env(p, "epfix", "EP_TOKEN") == value
        cid, inspected, _ = _secret_mount(cb, "epfix")
        args = inspected["Args"] if cb.engine == "docker" else inspected["Config"]["Cmd"]
        assert args == ["--env-file", "/run/mcpproxy/secrets/env", "--", "/fixture", "--name", "epfix"], args
        _assert_nowhere(p, value, {f"{cb.engine} inspect": cb.cli("inspect", cid).stdout})
        p.stop()
    finally:
        cb.cli("rmi", "-f", tag, check=False)


def test_docker_secret_directory_of_a_killed_proxy_is_removed_at_next_start(proxy, container_backend):
    """SIGKILL leaves the proxy no chance to clean up: the next proxy's start-up removes the
    secret directories whose proxy pid is dead (orphan cleanup), and its own server works."""
    cb = container_backend
    server = {"name": "orph", "command": "/fixture", "args": ["--name", "orph"], "quarantined": False,
              "env": {"O_TOKEN": "${secret:orph}"}, "isolation": {"mode": "docker", "image": IMAGE, "network_mode": "none"}}
    cfg = make_config([server], docker_isolation={"mode": "docker", "timeout": "60s", **cb.settings()})
    p1 = proxy.create(cfg)
    assert _set_secret(p1, "orph", "first-value").returncode == 0
    p1.start()
    p1.wait_healthy()
    p1.wait_ready(["orph"], timeout=120)
    _, _, old_dir = _secret_mount(cb, "orph")
    assert os.path.isdir(old_dir)
    p1.send_signal(signal.SIGKILL)
    p1.proc.wait(timeout=30)
    assert os.path.isdir(old_dir), "a killed proxy cannot remove it itself"
    p2 = proxy.create(cfg)
    assert _set_secret(p2, "orph", "second-value").returncode == 0
    p2.start()
    p2.wait_healthy()
    p2.wait_ready(["orph"], timeout=120)
    assert not os.path.exists(old_dir), "the orphaned secret directory was removed at start"
    assert _get_env(p2, "orph", "O_TOKEN") == "second-value"
    assert "removed the secret directory" in p2.all_logs()
