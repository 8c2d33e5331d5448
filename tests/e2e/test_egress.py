"""Issue 15 item 4: egress allowlists, end to end (docs/egress.md).

The real `mcpproxy serve` runs a real stdio MCP server (`mcpproxy-probe`: static, in a FROM-scratch
image for docker and podman; the debug build for the sandbox) with `egress`. The "outside" is a network namespace behind a veth pair
(198.51.100.1 here, 198.51.100.2 there, TEST-NET-2) with HTTP servers in it; /etc/hosts names
it and names loopback. The probe's `http_get` goes through $http_proxy (absolute-URI GET or a
CONNECT tunnel); `tcp_connect` tries a direct connection. Everything created is removed.

Runs in docker, podman and the sandbox. Needs root (netns, /etc/hosts, iptables), dockerd,
podman, `cc -static` (scripts/setup.sh).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e_support import bin_dir, make_config, wait_until

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "mcpproxy-egress-probe:test"
NETNS = "mcpxegr"
HOST_IF, NS_IF = "mcpxegr0", "mcpxegr1"
HOST_IP, OUT_IP = "198.51.100.1", "198.51.100.2"
OK_NAME, LOOP_NAME, PRIV_NAME = "egress-ok.mcpx.test", "egress-loop.mcpx.test", "egress-private.mcpx.test"
HOSTS_MARK = "# mcpproxy-egress-e2e"


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


@pytest.fixture(scope="module")
def probe_image():
    """The probe compiled statically into a FROM-scratch image (no registry here)."""
    with tempfile.TemporaryDirectory() as d:
        sh("cc", "-static", "-O2", "-o", f"{d}/probe", str(ROOT / "Sources/mcpproxy-probe/main.c"))
        Path(d, "Dockerfile").write_text("FROM scratch\nCOPY probe /probe\n")
        sh("docker", "build", "-q", "-t", IMAGE, d, timeout=300)
        sh("podman", "build", "-q", "-t", IMAGE, d, timeout=300)
    return IMAGE


def _cleanup_outside():
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "link", "del", HOST_IF, check=False)


def _hosts_write(lines: list[str]):
    text = Path("/etc/hosts").read_text()
    kept = [l for l in text.splitlines() if HOSTS_MARK not in l]
    Path("/etc/hosts").write_text("\n".join(kept + [f"{l} {HOSTS_MARK}" for l in lines]) + "\n")


@pytest.fixture(scope="module")
def outside():
    """A namespace reachable from this host only by its veth, serving HTTP on 8080 and 8081."""
    if os.geteuid() != 0:
        pytest.fail("the egress e2e needs root (network namespace, /etc/hosts, iptables)")
    _cleanup_outside()
    token = "egress-token-" + uuid.uuid4().hex
    www = tempfile.mkdtemp(prefix="mcpx-egress-www-")
    Path(www, "hello.txt").write_text(token)
    servers = []
    try:
        sh("ip", "netns", "add", NETNS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        sh("ip", "link", "set", NS_IF, "netns", NETNS)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{OUT_IP}/30", "dev", NS_IF)
        sh("ip", "netns", "exec", NETNS, "ip", "link", "set", NS_IF, "up")
        sh("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
        for port in (8080, 8081):
            servers.append(subprocess.Popen(
                ["ip", "netns", "exec", NETNS, "python3", "-m", "http.server", str(port), "--bind", OUT_IP, "--directory", www],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def up():
            try:
                with socket.create_connection((OUT_IP, 8080), timeout=1), socket.create_connection((OUT_IP, 8081), timeout=1):
                    return True
            except OSError:
                return False
        wait_until(up, 20, 0.2, "the outside HTTP servers")
        _hosts_write([f"{OUT_IP} {OK_NAME}", f"127.0.0.1 {LOOP_NAME}", f"10.99.0.1 {PRIV_NAME}"])
        yield token
    finally:
        _hosts_write([])
        for s in servers:
            s.kill()
            s.wait()
        _cleanup_outside()


@pytest.fixture
def loopback_listener():
    """A TCP listener on 127.0.0.1 (what a name resolving to loopback would reach)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def any_listener():
    """A TCP listener on 0.0.0.0: reachable on every host address, a bridge gateway's included."""
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen(8)
    stop = threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    s.close()


def call(p, tool, arguments):
    reply = p.session().request("tools/call", {"name": tool, "arguments": arguments}, timeout=120)
    assert "result" in reply, reply
    return reply["result"]["structuredContent"] if "structuredContent" in reply["result"] else reply["result"]


def denied(samples_text: str, server: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(samples_text):
        for s in family.samples:
            if s.name == "mcpproxy_egress_denied_total" and s.labels.get("server") == server:
                out[s.labels["reason"]] = s.value
    return out


def egress_networks(mode: str) -> set[str]:
    """The per-launch networks that exist now: docker networks labelled mcpproxy.egress, or
    sandbox network namespaces."""
    if mode in ("docker", "podman"):
        return set(sh(mode, "network", "ls", "-q", "--filter", "label=mcpproxy.egress=true").stdout.split())
    d = Path("/run/netns")
    return {n.name for n in d.iterdir() if n.name.startswith("mcpx-")} if d.is_dir() else set()


def fence_rules() -> str:
    return sh("iptables", "-S", "INPUT").stdout + sh("ip6tables", "-S", "INPUT").stdout


def egress_server(mode: str, image: str, egress: list[str]) -> dict:
    if mode in ("docker", "podman"):
        # network_mode is overridden by egress (DECISIONS.md).
        return {"name": "egr", "command": "/probe", "quarantined": False, "egress": egress,
                "isolation": {"mode": "docker", "engine": mode, "image": image, "network_mode": "bridge"}}
    # allow_tcp_connect is overridden by egress (DECISIONS.md).
    return {"name": "egr", "command": str(bin_dir() / "mcpproxy-probe"), "quarantined": False, "egress": egress,
            "isolation": {"mode": "sandbox", "network_mode": "bridge", "allow_tcp_connect": [8080]}}


@pytest.mark.parametrize("mode", ["docker", "podman", "sandbox"])
def test_egress_allows_only_the_list(mode, proxy, probe_image, outside, loopback_listener, any_listener):
    token = outside
    server = egress_server(mode, probe_image, [f"{OK_NAME}:8080", f"{LOOP_NAME}:{loopback_listener}", f"{PRIV_NAME}:80"])
    before_networks = egress_networks(mode)
    p = proxy(make_config([server], routing_mode="direct", docker_isolation={"timeout": "60s"}), wait=False)
    snap = wait_until(lambda: (lambda s: s if s and s.get("state") in ("ready", "failed") else None)(p.server("egr")), 90, 0.3, "egr ready")
    assert snap["state"] == "ready", (snap.get("last_error"), p.all_logs()[-3000:])
    enf = snap["isolation"]["enforcement"]
    assert snap["isolation"]["mode"] == ("sandbox" if mode == "sandbox" else "docker")
    expected_network = "egress: own network namespace mcpx-" if mode == "sandbox" else "egress: internal network mcpproxy-egress-"
    assert enf["network"].startswith(expected_network), enf
    proxy_url = enf["egress_proxy"]
    gateway, proxy_port = proxy_url.removeprefix("http://").split(":")
    assert enf["proxy_port"].startswith("fenced:"), enf
    nets = egress_networks(mode) - before_networks
    assert len(nets) == 1, nets
    net = nets.pop()
    if mode != "sandbox":
        info = sh(mode, "network", "inspect", "--format", "{{.Internal}} {{index .Labels \"mcpproxy.server\"}}", net).stdout.split()
        assert info == ["true", "egr"], info
    else:
        # Inside: lo and the veth, and no default route.
        routes = sh("ip", "-n", net, "route").stdout
        assert "default" not in routes and gateway.rsplit(".", 1)[0] in routes, routes

    # The proxy variables are what the server sees.
    env = call(p, "egr__env", {})
    assert f"http_proxy={proxy_url}" in str(env) and f"HTTPS_PROXY={proxy_url}" in str(env), env

    # Allowed: by name, plain HTTP and through a CONNECT tunnel.
    for via in ("proxy", "connect"):
        r = call(p, "egr__http_get", {"url": f"http://{OK_NAME}:8080/hello.txt", "via": via})
        assert r["ok"] is True and token in r["response"], (via, r)

    # Refused: a host not in the list (the allowed address itself, as a literal), a listed host
    # on another port, a listed name that resolves to loopback, one that resolves to a private
    # address, and a name not listed.
    cases = [
        (f"http://{OUT_IP}:8080/hello.txt", "host_not_allowed"),
        (f"http://{OK_NAME}:8081/hello.txt", "port_not_allowed"),
        (f"http://{LOOP_NAME}:{loopback_listener}/", "forbidden_address"),
        (f"http://{PRIV_NAME}:80/", "forbidden_address"),
        ("http://localhost:8080/", "host_not_allowed"),
    ]
    for url, reason in cases:
        for via in ("proxy", "connect"):
            r = call(p, "egr__http_get", {"url": url, "via": via})
            assert r["ok"] is False, (url, via, r)
            assert r["response"].startswith("HTTP/1.1 403"), (url, via, r)
            assert f"X-Mcpproxy-Egress-Denied: {reason}" in r["response"], (url, via, r)
            assert token not in r["response"]

    # Direct connections that bypass the proxy: the outside, loopback, docker0 and the gateway
    # host on a port other than the proxy's (a listener on every address) all fail; the proxy
    # port is reachable.
    for host, port in ((OUT_IP, 8080), ("127.0.0.1", any_listener), ("172.17.0.1", any_listener), (gateway, any_listener)):
        direct = call(p, "egr__tcp_connect", {"host": host, "port": port})
        assert direct["ok"] is False, (host, port, direct)
        print(f"{mode}: direct {host}:{port}: {direct}")
    assert call(p, "egr__tcp_connect", {"host": gateway, "port": int(proxy_port)})["ok"] is True

    # Counted (each refused case twice: plain and CONNECT) and logged.
    r = p.rest("GET", "/metrics")
    assert r.status == 200
    counts = denied(r.text, "egr")
    assert counts == {"host_not_allowed": 4.0, "port_not_allowed": 2.0, "forbidden_address": 4.0}, counts
    logs = p.all_logs()
    assert f'egress denied for "egr": {LOOP_NAME} resolves to 127.0.0.1, a loopback address' in logs
    assert f"port 8081 of {OK_NAME} is not in server \"egr\"'s egress allowlist" in logs

    # Stopping the proxy removes the network and the firewall rules.
    assert "mcpproxy-egress" in fence_rules()
    p.stop()
    assert net not in egress_networks(mode)
    assert "mcpproxy-egress" not in fence_rules()


@pytest.mark.parametrize("mode", ["docker", "sandbox"])
def test_a_killed_proxy_leaves_nothing_after_the_next_start(mode, proxy, probe_image):
    """SIGKILL leaves the egress network (or namespace) and the firewall rules behind; the next
    proxy's orphan cleanup removes them (their owner pid is dead)."""
    before = egress_networks(mode)
    first = proxy(make_config([egress_server(mode, probe_image, [f"{OK_NAME}:8080"])], routing_mode="direct",
                              docker_isolation={"timeout": "60s"}), wait=False)
    wait_until(lambda: (p := first.server("egr")) and p.get("state") == "ready", 90, 0.3, "egr ready")
    left = egress_networks(mode) - before
    assert len(left) == 1 and "mcpproxy-egress" in fence_rules()
    first.send_signal(9)
    first.proc.wait(timeout=30)
    assert left <= egress_networks(mode)
    second = proxy(make_config([], routing_mode="direct"), wait=False)
    wait_until(lambda: not (left & egress_networks(mode)), 60, 0.3, "the orphaned egress network to be removed")
    wait_until(lambda: "mcpproxy-egress" not in fence_rules(), 30, 0.3, "the orphaned firewall rules to be removed")
    assert "removing egress network" in second.all_logs()


@pytest.mark.parametrize("mode", ["docker", "sandbox"])
def test_a_server_that_keeps_asking_for_unlisted_hosts_is_held_by_the_monitor(mode, proxy, probe_image):
    """The runtime monitor's `egress_denied` rule (docs/monitoring.md): refusals stream from the
    egress proxy to the monitor; below the count the server runs on, at the count it is held:
    stopped (its egress network removed), its calls refused with how a person releases it, and
    evented with the last refused destination."""
    monitor = {"interval": "200ms", "egress_denied": {"denials": 3, "window": "60s", "action": "hold"}}
    before = egress_networks(mode)
    p = proxy(make_config([egress_server(mode, probe_image, [f"{OK_NAME}:8080"])], monitor=monitor,
                          docker_isolation={"timeout": "60s"}), wait=False)
    snap = wait_until(lambda: (lambda s: s if s and s.get("state") in ("ready", "failed") else None)(p.server("egr")), 90, 0.3, "egr ready")
    assert snap["state"] == "ready", (snap.get("last_error"), p.all_logs()[-3000:])
    assert len(egress_networks(mode) - before) == 1

    def ask(url: str, via: str) -> dict:
        reply = p.session().call_tool("egr:http_get", {"url": url, "via": via}, timeout=120)
        assert "result" in reply, reply
        r = reply["result"].get("structuredContent") or json.loads(reply["result"]["content"][0]["text"])
        assert r["ok"] is False and "X-Mcpproxy-Egress-Denied: host_not_allowed" in r["response"], r
        return r

    # Two refusals are below the count: after several samples the server still runs.
    ask("http://probe-0.invalid/", "proxy")
    ask("http://probe-1.invalid:443/", "connect")
    time.sleep(1.5)
    assert p.server("egr")["state"] == "ready"
    assert not [e for e in p.rest("GET", "/api/v1/events?server=egr").json()["events"] if e["rule"] == "egress_denied"]

    # The third within the window: held.
    ask("http://probe-2.invalid:8443/", "connect")
    held = wait_until(lambda: (lambda s: s if s and s["state"] == "held_by_monitor" else None)(p.server("egr")), 30, 0.2, "egr held")
    hold = held["monitor_hold"]
    assert hold["rule"] == "egress_denied", hold
    assert "3 refused egress attempts" in hold["reason"] and "the last probe-2.invalid:8443 (host_not_allowed)" in hold["reason"], hold
    events = [e for e in p.rest("GET", "/api/v1/events?server=egr").json()["events"] if e["rule"] == "egress_denied"]
    assert len(events) == 1 and events[0]["action"] == "hold", events
    assert "monitor: server egr: rule egress_denied fired (hold)" in p.main_log()
    # Stopped: the launch's network (or namespace) is gone; calls are refused with the way out.
    wait_until(lambda: not (egress_networks(mode) - before), 60, 0.3, "the held server's egress network to be removed")
    reply = p.session().call_tool("egr:env", {})
    result = reply["result"]
    assert result.get("isError") is True, reply
    text = result["content"][0]["text"]
    assert "held by the runtime monitor" in text and "rule egress_denied" in text and "mcpproxy upstream release egr" in text, text
    metrics = p.rest("GET", "/metrics").text
    samples = [s for f in text_string_to_metric_families(metrics) for s in f.samples
               if s.name == "mcpproxy_monitor_events_total" and s.labels.get("server") == "egr"]
    assert [(s.labels["rule"], s.labels["action"], s.value) for s in samples] == [("egress_denied", "hold", 1.0)], samples
