"""End-to-end: docker isolation through the real `mcpproxy serve` binary and the real engine.

A fixture stdio server (the static fixture in the locally built mcpproxy-fixture:test image)
runs in docker mode behind /mcp. The tests check tool calls through the gateway, the hardening
docker inspect shows, that env values appear neither in ps nor in the logs, OOM diagnosis in
/api/v1/servers, that SIGTERM of the proxy leaves no managed container, that a SIGKILL followed
by a restart leaves no orphan, and that a refused option fails with its reason.

Needs: `swift build` (the binary in .build/debug), dockerd and the image (scripts/setup.sh).
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("MCPPROXY_BIN", os.path.join(ROOT, ".build", "debug", "mcpproxy"))
IMAGE = "mcpproxy-fixture:test"
API_KEY = "e2e-docker-" + uuid.uuid4().hex


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def managed_containers(instance=None, server=None):
    flt = ["--filter", "label=mcpproxy.managed=true"]
    if instance:
        flt += ["--filter", f"label=mcpproxy.instance={instance}"]
    if server:
        flt += ["--filter", f"label=mcpproxy.server={server}"]
    out = docker("ps", "-a", "-q", "--no-trunc", *flt).stdout
    return [x for x in out.split() if x]


class Proxy:
    """One `mcpproxy serve` process with its own config and data dir."""

    def __init__(self, tmp_path, servers):
        self.dir = tmp_path / f"proxy-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir()
        self.port = free_port()
        self.config = self.dir / "mcp_config.json"
        self.config.write_text(json.dumps({
            "listen": f"127.0.0.1:{self.port}",
            "routing_mode": "direct",
            "docker_isolation": {"mode": "docker", "timeout": "60s"},
            "mcpServers": servers,
        }))
        self.proc = None
        self.session = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "LANG")}
        env["MCPPROXY_API_KEY"] = API_KEY
        self.log = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--config", str(self.config), "--data-dir", str(self.dir / "data"),
             "--listen", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.servers()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mcpproxy exited: {self.stderr()}")
                time.sleep(0.2)
        raise RuntimeError(f"mcpproxy did not listen: {self.stderr()}")

    def stderr(self):
        p = self.dir / "stderr.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def all_logs(self):
        text = self.stderr()
        logs = self.dir / "data" / "logs"
        if logs.exists():
            for f in logs.iterdir():
                text += f.read_text(errors="replace")
        return text

    def api(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"X-API-Key": API_KEY})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def servers(self):
        body = self.api("/api/v1/servers")
        items = body.get("servers", body) if isinstance(body, dict) else body
        return {s["name"]: s for s in items}

    def wait_state(self, name, states, timeout=90):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.servers().get(name)
            if last and last.get("state") in states:
                return last
            time.sleep(0.3)
        raise AssertionError(f"{name} never reached {states}: {last}\n{self.all_logs()[-3000:]}")

    def rpc(self, method, params=None, id_=1):
        body = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/mcp", data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(req, timeout=120) as r:
            sid = r.headers.get("Mcp-Session-Id")
            if sid:
                self.session = sid
            raw = r.read().decode()
        if raw.lstrip().startswith("{"):
            return json.loads(raw)
        for line in raw.splitlines():  # an SSE-framed reply
            if line.startswith("data:"):
                return json.loads(line[5:])
        raise AssertionError(f"unreadable reply: {raw!r}")

    def call(self, tool, arguments, id_=2):
        if not self.session:
            self.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "e2e", "version": "1"}}, id_=1)
        return self.rpc("tools/call", {"name": tool, "arguments": arguments}, id_=id_)

    def signal(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def fixture_server(name, **isolation):
    iso = {"mode": "docker", "image": IMAGE, "network_mode": "none"}
    iso.update(isolation)
    return {"name": name, "command": "/fixture", "args": ["--name", name], "quarantined": False, "isolation": iso}


@pytest.fixture(scope="module", autouse=True)
def engine():
    if not os.path.exists(BINARY):
        pytest.fail(f"{BINARY} is missing: run swift build first")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail("no Docker engine answers: run scripts/setup.sh (starts dockerd)")
    subprocess.run([os.path.join(ROOT, "scripts", "build-test-images.sh")], check=True, capture_output=True)


@pytest.fixture
def proxies(tmp_path):
    started = []

    def make(servers):
        p = Proxy(tmp_path, servers)
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()


def test_tool_calls_through_mcp_hardened_and_secret_free(proxies):
    secret = "e2e-secret-" + uuid.uuid4().hex
    server = fixture_server("dockfix", memory_limit="128m", cpu_limit="0.5", pids_limit=64)
    server["env"] = {"E2E_SECRET": secret}
    proxy = proxies([server]).start()
    snap = proxy.wait_state("dockfix", {"ready"})
    assert snap["isolation"]["mode"] == "docker"
    assert snap["isolation"]["reason"] == "per-server mode"

    reply = proxy.call("dockfix__echo", {"text": "hello through docker"})
    assert reply["result"]["content"][0]["text"] == "hello through docker"
    who = proxy.call("dockfix__whoami", {}, id_=3)
    assert who["result"]["content"][0]["text"].startswith("uid=65534 gid=65534")
    got = proxy.call("dockfix__get_env", {"name": "E2E_SECRET"}, id_=4)
    assert got["result"]["content"][0]["text"] == secret

    containers = managed_containers(server="dockfix")
    assert len(containers) == 1
    info = json.loads(docker("inspect", containers[0]).stdout)[0]
    host, config = info["HostConfig"], info["Config"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert config["User"] == "65534:65534"
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert config["Labels"]["mcpproxy.managed"] == "true"
    assert config["Labels"]["mcpproxy.server"] == "dockfix"
    assert config["Labels"]["mcpproxy.owner_pid"] == str(proxy.proc.pid)

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "mcpproxy-dockfix-" in ps
    assert secret not in ps
    logs = proxy.all_logs()
    assert "docker_run_args" in logs
    assert secret not in logs


def test_oom_killed_server_is_diagnosed(proxies):
    proxy = proxies([fixture_server("oomfix", memory_limit="32m")]).start()
    proxy.wait_state("oomfix", {"ready"})
    try:
        proxy.call("oomfix__alloc", {"mb": 512})
    except OSError:
        pass
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        last = proxy.servers()["oomfix"].get("last_error") or ""
        if "out of memory" in last:
            break
        time.sleep(0.3)
    assert "out of memory" in last and "memory_limit" in last, last


def test_refused_option_fails_with_reason(proxies):
    server = fixture_server("sockfix", volumes=["/var/run/docker.sock:/var/run/docker.sock"])
    proxy = proxies([server]).start()
    snap = proxy.wait_state("sockfix", {"failed"})
    assert "Docker socket" in snap["last_error"]
    assert "docker_socket" in snap["last_error"]
    assert managed_containers(server="sockfix") == []


def test_sigterm_leaves_no_managed_container(proxies):
    proxy = proxies([fixture_server("termfix")]).start()
    proxy.wait_state("termfix", {"ready"})
    assert len(managed_containers(server="termfix")) == 1
    proxy.signal(signal.SIGTERM)
    assert managed_containers(server="termfix") == []


def test_sigkill_then_restart_leaves_no_orphan(proxies):
    first = proxies([fixture_server("killfix")]).start()
    first.wait_state("killfix", {"ready"})
    running = managed_containers(server="killfix")
    assert len(running) == 1
    labels = json.loads(docker("inspect", running[0]).stdout)[0]["Config"]["Labels"]
    first.signal(signal.SIGKILL)
    # The fixture exits when its stdin closes; a server that ignores EOF would stay behind.
    # Stand in for one: a detached container with the killed proxy's labels, stdin held open.
    args = ["run", "-d", "-i", "--rm", "--network", "none", "--log-driver", "none"]
    for k, v in labels.items():
        if k.startswith("mcpproxy."):
            args += ["--label", f"{k}={v}"]
    survivor = docker(*args, IMAGE, "/fixture").stdout.strip()
    try:
        assert survivor in managed_containers(server="killfix")
        second = proxies([fixture_server("otherfix")]).start()
        second.wait_state("otherfix", {"ready"})
        # Removed by the restarted proxy's cleanup, before any of its servers started.
        assert survivor not in managed_containers(server="killfix")
        # The killed proxy's own container ends with its stdin; allow the engine a moment.
        deadline = time.time() + 15
        while managed_containers(server="killfix") and time.time() < deadline:
            time.sleep(0.2)
        assert managed_containers(server="killfix") == []
        assert "orphaned mcpproxy container" in second.all_logs()
        # The live proxy's own container is untouched.
        assert len(managed_containers(server="otherfix")) == 1
    finally:
        docker("rm", "-f", survivor, check=False)
