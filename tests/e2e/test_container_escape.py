"""The container escape battery, once per container backend (docker, podman; runc and gVisor's
runsc): the fixture server runs hardened in isolation mode docker behind the real `mcpproxy
serve`, and its own tools (read_file, write_file, get_env, whoami) try to break out. Every escape
must be denied while the server keeps answering. Under runsc the server must also see gVisor's
kernel, not the host's: that is the boundary runsc adds.

Needs: `swift build`, dockerd, podman, runsc and the images (scripts/setup.sh).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from container_backends import IMAGE, container_backend  # noqa: F401 (the fixture)
from e2e_support import make_config, wait_until


@pytest.fixture
def box(proxy, container_backend, tmp_path):
    """A proxy with one hardened fixture server `box` (network none), ready."""
    server = {"name": "box", "command": "/fixture", "args": ["--name", "box"], "quarantined": False,
              "isolation": {"mode": "docker", "image": IMAGE, "network_mode": "none", "memory_limit": "128m"}}
    cfg = make_config([server], routing_mode="direct",
                      docker_isolation={"mode": "docker", "timeout": "60s", **container_backend.settings()})
    p = proxy(cfg, wait=False)
    wait_until(lambda: (p.server("box") or {}).get("state") == "ready", 90, 0.3, "box to be ready")
    session = p.session()

    def call(tool: str, **arguments) -> tuple[bool, str]:
        reply = session.request("tools/call", {"name": f"box__{tool}", "arguments": arguments}, timeout=60)
        result = reply["result"]
        text = "".join(c.get("text", "") for c in result.get("content", []))
        return bool(result.get("isError")), text

    return call


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def test_escape_battery_is_denied(box, container_backend, tmp_path):
    cb = container_backend
    # Identity: the unprivileged user, no capabilities left, none to gain.
    failed, who = box("whoami")
    assert not failed and who.startswith("uid=65534 gid=65534"), who
    failed, status = box("read_file", path="/proc/self/status")
    assert not failed, status
    fields = status_fields(status)
    assert fields["CapEff"] == "0000000000000000", fields
    assert fields["CapPrm"] == "0000000000000000", fields
    assert fields["CapBnd"] == "0000000000000000", fields
    assert fields["Uid"].split()[:2] == ["65534", "65534"], fields

    # File system: the root is read-only, /tmp is writable, nothing of the host is mounted.
    failed, text = box("write_file", path="/escaped.txt", content="x")
    assert failed, text
    failed, text = box("write_file", path="/tmp/inside.txt", content="x")
    assert not failed, text
    secret = tmp_path / f"host-secret-{uuid.uuid4().hex}"
    secret.write_text("host secret")
    secret.chmod(0o644)
    failed, text = box("read_file", path=str(secret))
    assert failed and "host secret" not in text, text
    failed, text = box("read_file", path="/var/run/docker.sock")
    assert failed, text
    failed, text = box("read_file", path="/run/podman/podman.sock")
    assert failed, text
    # PID 1 (the container's init) has the container's root too: the host file is not behind it.
    failed, text = box("read_file", path=f"/proc/1/root{secret}")
    assert failed and "host secret" not in text, text
    # Kernel interfaces are not writable.
    failed, text = box("write_file", path="/proc/sysrq-trigger", content="h")
    assert failed, text
    failed, text = box("write_file", path="/sys/kernel/mm/transparent_hugepage/enabled", content="never")
    assert failed, text

    # Processes: its own PID namespace; the host's PID 1 is not in it.
    host_init = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    failed, text = box("read_file", path="/proc/1/cmdline")
    assert not failed and host_init not in text.split("\0")[0], (host_init, text)

    # Network: no interface but loopback.
    failed, text = box("read_file", path="/proc/net/dev")
    interfaces = {line.split(":")[0].strip() for line in text.splitlines() if ":" in line}
    assert interfaces <= {"lo"}, text

    # The proxy's environment does not leak in.
    failed, text = box("get_env", name="HOME")
    assert text == "/home/mcpproxy", text
    for name in ("MCPPROXY_API_KEY", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK"):
        assert box("get_env", name=name)[1] == "(unset)", name

    # The kernel the server talks to: the host's under runc, gVisor's under runsc.
    failed, version = box("read_file", path="/proc/version")
    assert not failed, version
    host_version = Path("/proc/version").read_text()
    if cb.gvisor:
        assert version != host_version, version
    else:
        assert version == host_version, version

    # Still serving after all of it.
    assert box("echo", text="still here") == (False, "still here")
