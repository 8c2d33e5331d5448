"""End-to-end: docker isolation through the real `mcpproxy serve` binary and the real engine,
once per container backend: docker and podman, each with runc and with gVisor's runsc
(`container_backends.py`).

A fixture stdio server (the static fixture in the locally built mcpproxy-fixture:test image)
runs in docker mode behind /mcp. The tests check tool calls through the gateway, the hardening
docker inspect shows, that env values appear neither in ps nor in the logs, OOM diagnosis in
/api/v1/servers, that SIGTERM of the proxy leaves no managed container, that a SIGKILL followed
by a restart leaves no orphan, and that a refused option fails with its reason.

Needs: `swift build` (the binary in .build/debug), dockerd, podman, runsc and the images
(scripts/setup.sh).
"""
import json
import signal
import subprocess
import time
import uuid

import pytest

from container_backends import IMAGE, container_backend  # noqa: F401 (the fixture)
from e2e_support import bin_dir, make_config, wait_until


def fixture_server(name, **isolation):
    iso = {"mode": "docker", "image": IMAGE, "network_mode": "none"}
    iso.update(isolation)
    return {"name": name, "command": "/fixture", "args": ["--name", name], "quarantined": False, "isolation": iso}


@pytest.fixture
def proxies(proxy, container_backend):
    """Starts `mcpproxy serve` (the shared harness) with docker isolation on the backend under
    test and direct routing."""
    def make(servers):
        cfg = make_config(servers, routing_mode="direct",
                          docker_isolation={"mode": "docker", "timeout": "60s", **container_backend.settings()})
        return proxy(cfg, wait=False)
    return make


def wait_state(p, name, states, timeout=90):
    return wait_until(lambda: (lambda s: s if s and s.get("state") in states else None)(p.server(name)),
                      timeout, 0.3, f"{name} to reach {states}")


def call(p, tool, arguments):
    return p.session().request("tools/call", {"name": tool, "arguments": arguments}, timeout=120)


def all_logs(p):
    text = p.all_logs()
    for f in (p.data_dir / "logs").glob("server-*.log"):
        text += f.read_text(errors="replace")
    return text


def stop_with(p, sig):
    p.send_signal(sig)
    p.proc.wait(timeout=60)


def test_tool_calls_through_mcp_hardened_and_secret_free(proxies, container_backend):
    cb = container_backend
    secret = "e2e-secret-" + uuid.uuid4().hex
    server = fixture_server("dockfix", memory_limit="128m", cpu_limit="0.5", pids_limit=64)
    server["env"] = {"E2E_SECRET": secret}
    proxy = proxies([server])
    snap = wait_state(proxy, "dockfix", {"ready"})
    assert snap["isolation"]["mode"] == "docker"
    assert snap["isolation"]["reason"] == "per-server mode"

    reply = call(proxy, "dockfix__echo", {"text": "hello through docker"})
    assert reply["result"]["content"][0]["text"] == "hello through docker"
    who = call(proxy, "dockfix__whoami", {})
    assert who["result"]["content"][0]["text"].startswith("uid=65534 gid=65534")
    got = call(proxy, "dockfix__get_env", {"name": "E2E_SECRET"})
    assert got["result"]["content"][0]["text"] == secret

    containers = cb.managed_containers(server="dockfix")
    assert len(containers) == 1
    info = cb.inspect(containers[0])
    host, config = info["HostConfig"], info["Config"]
    assert cb.runtime_of(info) == cb.runtime
    # docker stores the request (ALL), podman the capabilities it dropped; none is added.
    if cb.engine == "docker":
        assert host["CapDrop"] == ["ALL"]
    else:
        assert {"CAP_SETUID", "CAP_SETGID", "CAP_NET_RAW", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SYS_CHROOT"} <= set(host["CapDrop"])
    assert not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert config["User"] == "65534:65534"
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert config["Labels"]["mcpproxy.managed"] == "true"
    assert config["Labels"]["mcpproxy.server"] == "dockfix"
    assert config["Labels"]["mcpproxy.owner_pid"] == str(proxy.pid)

    # The hardened plan sets both (podman as root refuses to start without them here).
    ulimits = {u["Name"].lower().removeprefix("rlimit_"): (u["Soft"], u["Hard"]) for u in host["Ulimits"] or []}
    assert ulimits.get("nofile") == (4096, 4096) and ulimits.get("nproc") == (8192, 8192), ulimits

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "mcpproxy-dockfix-" in ps
    assert secret not in ps
    logs = all_logs(proxy)
    assert "docker_run_args" in logs
    assert secret not in logs


def test_oom_killed_server_is_diagnosed(proxies):
    proxy = proxies([fixture_server("oomfix", memory_limit="32m")])
    wait_state(proxy, "oomfix", {"ready"})
    try:
        call(proxy, "oomfix__alloc", {"mb": 512})
    except Exception:  # the call itself may fail any way; the diagnosis is what is tested
        pass
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        last = proxy.server("oomfix").get("last_error") or ""
        if "out of memory" in last:
            break
        time.sleep(0.3)
    assert "out of memory" in last and "memory_limit" in last, last


def test_refused_option_fails_with_reason(proxies, container_backend):
    server = fixture_server("sockfix", volumes=["/var/run/docker.sock:/var/run/docker.sock"])
    proxy = proxies([server])
    snap = wait_state(proxy, "sockfix", {"failed"})
    assert "Docker socket" in snap["last_error"]
    assert "docker_socket" in snap["last_error"]
    assert container_backend.managed_containers(server="sockfix") == []


def test_sigterm_leaves_no_managed_container(proxies, container_backend):
    proxy = proxies([fixture_server("termfix")])
    wait_state(proxy, "termfix", {"ready"})
    assert len(container_backend.managed_containers(server="termfix")) == 1
    stop_with(proxy, signal.SIGTERM)
    assert container_backend.managed_containers(server="termfix") == []


def test_sigkill_then_restart_leaves_no_orphan(proxies, container_backend):
    cb = container_backend
    managed_containers = cb.managed_containers
    first = proxies([fixture_server("killfix")])
    wait_state(first, "killfix", {"ready"})
    running = managed_containers(server="killfix")
    assert len(running) == 1
    labels = cb.inspect(running[0])["Config"]["Labels"]
    stop_with(first, signal.SIGKILL)
    # The fixture exits when its stdin closes; a server that ignores EOF would stay behind.
    # Stand in for one: a detached container with the killed proxy's labels, stdin held open.
    args = ["run", "-d", "-i", "--rm", "--network", "none", "--log-driver", "none",
            "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=8192:8192"]
    for k, v in labels.items():
        if k.startswith("mcpproxy."):
            args += ["--label", f"{k}={v}"]
    survivor = cb.cli(*args, IMAGE, "/fixture").stdout.strip()
    try:
        assert survivor in managed_containers(server="killfix")
        # `mcpproxy containers list` sees it on its engine, as an orphan of a dead proxy.
        listed = subprocess.run([str(bin_dir() / "mcpproxy"), "containers", "list", "--engine", cb.engine, "--json"],
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        rows = {c["id"]: c for c in json.loads(listed.stdout)["containers"]}
        assert rows[survivor]["engine"] == cb.engine and rows[survivor]["state"] == "orphan", rows.get(survivor)
        second = proxies([fixture_server("otherfix")])
        wait_state(second, "otherfix", {"ready"})
        # Removed by the restarted proxy's cleanup, before any of its servers started.
        assert survivor not in managed_containers(server="killfix")
        # The killed proxy's own container ends with its stdin; allow the engine a moment.
        deadline = time.time() + 15
        while managed_containers(server="killfix") and time.time() < deadline:
            time.sleep(0.2)
        assert managed_containers(server="killfix") == []
        # The summary is logged once the engine's rm has returned, which may be just after the
        # container vanished from `ps`.
        wait_until(lambda: "orphaned mcpproxy container" in all_logs(second), 15, 0.2, "the cleanup summary in the log")
        # The live proxy's own container is untouched.
        assert len(managed_containers(server="otherfix")) == 1
    finally:
        cb.cli("rm", "-f", survivor, check=False)


def test_doctor_looks_for_the_command_inside_the_image(proxy, container_backend):
    """`doctor` checks a docker server's command in its image (the image's PATH for a bare
    name) without starting it, on every engine; an image not on the host is a note, not a
    failure; nothing is left behind."""
    servers = [fixture_server("present"),
               {**fixture_server("missing"), "command": "/usr/bin/no-such-server"},
               {**fixture_server("bare"), "command": "no-such-server"},
               {**fixture_server("absent"), "isolation": {"mode": "docker", "image": "mcpx-never-built:none",
                                                          "network_mode": "none"}}]
    p = proxy.create(make_config(servers, docker_isolation={"mode": "docker", **container_backend.settings()}))
    # Only doctor's own probe containers (label mcpproxy.doctor=probe): other containers on a
    # shared host come and go on their own.
    probes = ("ps", "-a", "-q", "--no-trunc", "--filter", "label=mcpproxy.doctor=probe")
    before = set(container_backend.cli(*probes).stdout.split())
    r = p.cli("doctor", "--json")
    assert r.returncode == 1, r  # a server that cannot start is a finding
    report = {s["name"]: s for s in json.loads(r.stdout)["servers"]}
    assert report["present"].get("command_found") == "/fixture" and "error" not in report["present"], report["present"]
    assert "is not in image" in report["missing"]["error"] and IMAGE in report["missing"]["error"]
    assert "looked in its PATH" in report["bare"]["error"], report["bare"]
    assert "not on this host yet" in report["absent"]["command_check"] and "error" not in report["absent"]
    after = set(container_backend.cli(*probes).stdout.split())
    assert after <= before, "doctor left a container behind"
    text = p.cli("doctor", "present")
    assert text.returncode == 0 and "command: /fixture" in text.stdout, text
