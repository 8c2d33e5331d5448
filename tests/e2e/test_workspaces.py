"""Workspaces (docs/workspaces.md): two agent tokens in two workspaces use a server declared
`"instance": "workspace"`, through the real MCP Python client. Each workspace gets its own
instance (its own process or container), its own files (sandbox home / docker volume), its own
network (docker: an --internal network per workspace); an idle instance stops after
`idle_timeout` and starts again on the next call with its files kept; `workspace delete` removes
the instances, containers, volumes, networks, directories and secrets and says so."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from container_backends import IMAGE, Backend
from e2e_support import fixture_server, make_config, reachable_fixture, run_async, wait_until, mcp_client_session

IDLE = "3s"


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _err(result) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def _config(server: dict) -> dict:
    return make_config([server], workspaces={
        "alpha": {"members": ["tok-a"], "servers": ["files"]},
        "beta": {"members": ["token:tok-b"], "intent": "destructive"},
    })


async def _call(url: str, token: str, tool: str, args: dict):
    async with mcp_client_session(url, token=token) as s:
        return await s.call_tool("call_tool", {"name": f"files:{tool}", "args": args})


def _whoami(url: str, token: str) -> str:
    r = run_async(lambda: _call(url, token, "whoami", {}))
    assert not _err(r), _text(r)
    return _text(r)


def _host_pid(p, ws: str) -> int:
    """The host pid of a workspace's instance of `files` (the sandbox has its own pid namespace)."""
    inst = _workspaces(p)[ws]["instances"]
    assert len(inst) == 1 and inst[0]["server"] == "files", inst
    return inst[0]["pid"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _tokens(p):
    return (p.create_token("tok-a", "--intent", "destructive"), p.create_token("tok-b", "--intent", "destructive"))


def _workspaces(p) -> dict:
    r = p.rest("GET", "/api/v1/workspaces")
    assert r.status == 200, r
    return {w["name"]: w for w in r.json()["workspaces"]}


def _isolated_files(p, a: str, b: str, path: str) -> None:
    """A file one workspace writes is invisible to the other."""
    w = run_async(lambda: _call(p.mcp_url, a, "write_file", {"path": path, "content": "alpha only"}))
    assert not _err(w), _text(w)
    ra = run_async(lambda: _call(p.mcp_url, a, "read_file", {"path": path}))
    assert _text(ra) == "alpha only", _text(ra)
    rb = run_async(lambda: _call(p.mcp_url, b, "read_file", {"path": path}))
    assert _err(rb) and "alpha only" not in _text(rb), _text(rb)


def test_workspace_instances_in_the_sandbox(proxy):
    server = fixture_server("files", command=reachable_fixture(), instance="workspace", idle_timeout=IDLE,
                            isolation={"mode": "sandbox", "network_mode": "none"})
    p = proxy(_config(server))
    a, b = _tokens(p)

    _whoami(p.mcp_url, a), _whoami(p.mcp_url, b)
    pa, pb = _host_pid(p, "alpha"), _host_pid(p, "beta")
    assert pa != pb and _alive(pa) and _alive(pb)
    ws = _workspaces(p)
    assert ws["alpha"]["members"] == ["token:tok-a"] and ws["alpha"]["servers"] == ["files"], ws

    # Relative paths land in the instance's home, which is the workspace's own.
    _isolated_files(p, a, b, "note.txt")
    home_a = next(Path("/").glob("var/lib/mcpproxy/ws-*/alpha/sandbox/files/home")) if os.geteuid() == 0 \
        else p.data_dir / "workspaces" / "alpha" / "sandbox" / "files" / "home"
    assert (home_a / "note.txt").read_text() == "alpha only"
    # Beta's instance cannot reach alpha's home by its absolute path either.
    stolen = run_async(lambda: _call(p.mcp_url, b, "read_file", {"path": str(home_a / "note.txt")}))
    assert _err(stolen), _text(stolen)

    # A caller in no workspace (the admin key) gets no instance.
    r = run_async(lambda: _call(p.mcp_url, p.api_key, "whoami", {}))
    assert _err(r) and "belongs to no workspace" in _text(r), _text(r)

    # Idle: stopped after the timeout, started again on the next call, files kept.
    wait_until(lambda: not _alive(pa) and not _alive(pb), 20, 0.2, "the idle instances to stop")
    assert _workspaces(p)["alpha"]["instances"] == []
    _whoami(p.mcp_url, a)
    pa2 = _host_pid(p, "alpha")
    assert pa2 != pa and _alive(pa2)
    again = run_async(lambda: _call(p.mcp_url, a, "read_file", {"path": "note.txt"}))
    assert _text(again) == "alpha only"

    # A workspace secret goes with the workspace.
    assert p.cli("secret", "set", "--workspace", "alpha", "api-token", input="s3cr3t").returncode == 0
    out = p.cli("workspace", "delete", "alpha")
    assert out.returncode == 0, out.stderr
    assert "instance files@alpha" in out.stdout and "secret api-token" in out.stdout, out.stdout
    assert "directory" in out.stdout, out.stdout
    wait_until(lambda: not _alive(pa2), 10, 0.1, "alpha's instance to be gone")
    assert not home_a.exists()
    assert "alpha" not in json.dumps(p.rest("GET", "/api/v1/secrets").json())
    assert "alpha" not in p.read_config().get("workspaces", {})
    # Its former member now belongs to no workspace; beta is untouched.
    wait_until(lambda: "alpha" not in _workspaces(p), 10, 0.1, "the reload")
    r = run_async(lambda: _call(p.mcp_url, a, "whoami", {}))
    assert _err(r) and "belongs to no workspace" in _text(r), _text(r)
    assert "pid=" in _whoami(p.mcp_url, b)
    # beta goes too, so nothing of this test stays behind (its home lives outside the data dir).
    home_b = home_a.parent.parent.parent.parent / "beta"
    assert home_b.exists()
    assert p.cli("workspace", "delete", "beta").returncode == 0
    assert not home_b.exists()


def test_workspace_cli_create_add_member_list(proxy):
    server = fixture_server("files", command=reachable_fixture(), instance="workspace", idle_timeout=IDLE)
    p = proxy(make_config([server]))
    tok = p.create_token("tok-c", "--intent", "destructive")
    assert p.cli("workspace", "create", "gamma", "--servers", "files", "--intent", "read").returncode == 0
    assert p.cli("workspace", "add-member", "gamma", "tok-c").returncode == 0
    listed = json.loads(p.cli("workspace", "list", "--json").stdout)["workspaces"]
    assert listed[0]["name"] == "gamma" and listed[0]["members"] == ["token:tok-c"], listed
    wait_until(lambda: _workspaces(p).get("gamma", {}).get("members") == ["token:tok-c"], 10, 0.1, "the reload")
    # The workspace's intent ceiling (read) is lower than the token's: write_file is refused
    # (as a tool the caller may not see), read_file reaches gamma's instance.
    r = run_async(lambda: _call(p.mcp_url, tok, "write_file", {"path": "x", "content": "y"}))
    assert _err(r) and "belongs to no workspace" not in _text(r), _text(r)
    r = run_async(lambda: _call(p.mcp_url, tok, "read_file", {"path": "/nonexistent"}))
    assert "No such file" in _text(r), _text(r)
    assert [i["server"] for i in _workspaces(p)["gamma"]["instances"]] == ["files"]
    # A token in no workspace, limited by its own --servers only.
    other = p.create_token("tok-d", "--intent", "destructive")
    r = run_async(lambda: _call(p.mcp_url, other, "read_file", {"path": "/nonexistent"}))
    assert "belongs to no workspace" in _text(r), _text(r)
    assert p.cli("workspace", "create", "Bad Name").returncode != 0
    dup = p.cli("workspace", "create", "gamma")
    assert dup.returncode != 0 and "already exists" in dup.stderr, dup
    out = p.cli("workspace", "delete", "gamma")
    assert out.returncode == 0 and "instance files@gamma" in out.stdout, out.stdout
    gone = p.cli("workspace", "delete", "gamma")
    assert gone.returncode != 0 and "no workspace" in gone.stderr, gone
    # Without a running proxy, delete cleans up by itself.
    assert p.cli("workspace", "create", "delta").returncode == 0
    assert p.cli("secret", "set", "--workspace", "delta", "k", input="v").returncode == 0
    p.stop()
    out = p.cli("workspace", "delete", "delta")
    assert out.returncode == 0, out.stderr
    assert "workspace delta (config entry)" in out.stdout and "secret k" in out.stdout, out.stdout
    assert "delta" not in p.read_config().get("workspaces", {})


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def _labelled(kind: str, ws: str) -> list[str]:
    flt = ["--filter", f"label=mcpproxy.workspace={ws}"]
    if kind == "container":
        return _docker("ps", "-a", "-q", *flt).split()
    if kind == "volume":
        return _docker("volume", "ls", "-q", *flt).split()
    return _docker("network", "ls", "--format", "{{.Name}}", *flt).split()


def test_workspace_instances_in_docker(proxy):
    Backend("docker", "runc").ensure_ready()
    server = {"name": "files", "command": "/fixture", "args": ["--name", "files"], "quarantined": False,
              "instance": "workspace", "idle_timeout": IDLE, "isolation": {"mode": "docker", "image": IMAGE}}
    p = proxy(_config(server))
    a, b = _tokens(p)
    _whoami(p.mcp_url, a), _whoami(p.mcp_url, b)
    ca, cb = _labelled("container", "alpha"), _labelled("container", "beta")
    assert len(ca) == 1 and len(cb) == 1 and ca != cb, (ca, cb)
    ia = json.loads(_docker("inspect", ca[0]))[0]
    # Its own network, internal (no route out), and nothing else.
    assert list(ia["NetworkSettings"]["Networks"]) == ["mcpproxy-ws-alpha"], ia["NetworkSettings"]["Networks"]
    net = json.loads(_docker("network", "inspect", "mcpproxy-ws-alpha"))[0]
    assert net["Internal"] is True, net
    ib = json.loads(_docker("inspect", cb[0]))[0]
    assert list(ib["NetworkSettings"]["Networks"]) == ["mcpproxy-ws-beta"]
    # Its own volume at /workspace (the working directory).
    mounts = {m["Destination"]: m for m in ia["Mounts"]}
    assert mounts["/workspace"]["Name"] == "mcpproxy-ws-alpha-files", ia["Mounts"]
    assert ia["Config"]["WorkingDir"] == "/workspace"
    assert ia["Config"]["Labels"]["mcpproxy.workspace"] == "alpha"

    _isolated_files(p, a, b, "/workspace/note.txt")

    # Idle: the containers stop; the next call starts a new one that still has the file.
    wait_until(lambda: not _labelled("container", "alpha") and not _labelled("container", "beta"), 30, 0.3,
               "the idle containers to stop")
    r = run_async(lambda: _call(p.mcp_url, a, "read_file", {"path": "/workspace/note.txt"}))
    assert _text(r) == "alpha only", _text(r)
    ca2 = _labelled("container", "alpha")
    assert len(ca2) == 1 and ca2 != ca

    out = p.cli("workspace", "delete", "alpha")
    assert out.returncode == 0, out.stderr
    for what in ("instance files@alpha", "volume mcpproxy-ws-alpha-files", "network mcpproxy-ws-alpha"):
        assert what in out.stdout, out.stdout
    assert _labelled("container", "alpha") == [] and _labelled("volume", "alpha") == [] \
        and _labelled("network", "alpha") == []
    assert _labelled("network", "beta") == ["mcpproxy-ws-beta"]
    # beta goes too, so nothing of this test stays behind.
    assert p.cli("workspace", "delete", "beta").returncode == 0
    assert _labelled("container", "beta") == [] and _labelled("volume", "beta") == [] \
        and _labelled("network", "beta") == []


def test_notifications_of_a_workspace_instance_reach_only_its_workspace(proxy):
    """The real Python SDK server (py_upstream.py, stdio) as a workspace-scoped server: while
    alpha's call logs (notifications/message) and beta has a call in flight on the same server,
    alpha's session gets alpha's log lines and beta's gets none (with one shared instance, a log
    line goes to every session with a call in flight on it)."""
    from e2e_support import SERVERS_DIR, python_server
    server = python_server("flow", [str(SERVERS_DIR / "py_upstream.py"), "--transport", "stdio", "--name", "flow",
                                    "--flow-tools"], instance="workspace", idle_timeout="60s")
    p = proxy(make_config([server], workspaces={"alpha": {"members": ["tok-a"]}, "beta": {"members": ["tok-b"]}}))
    a, b = _tokens(p)
    logs = {"a": [], "b": []}

    def collector(who):
        async def on_log(params):
            logs[who].append(params.data)
        return on_log

    async def body():
        import anyio
        async with mcp_client_session(p.mcp_url, token=a, logging_callback=collector("a")) as sa, \
                mcp_client_session(p.mcp_url, token=b, logging_callback=collector("b")) as sb:
            # Both instances up first (a cold start must not swallow the overlap).
            await sa.call_tool("call_tool", {"name": "flow:multiply", "args": {"a": 2, "b": 3}})
            await sb.call_tool("call_tool", {"name": "flow:multiply", "args": {"a": 2, "b": 3}})
            results = {}

            async def call_b():
                results["b"] = await sb.call_tool("call_tool", {"name": "flow:wait_ms", "args": {"ms": 1500}})

            async def call_a():
                await anyio.sleep(0.2)
                results["a"] = await sa.call_tool("call_tool", {"name": "flow:count_with_progress", "args": {"steps": 3}})

            async with anyio.create_task_group() as tg:
                tg.start_soon(call_b)
                tg.start_soon(call_a)
            for _ in range(30):
                if len(logs["a"]) >= 3:
                    break
                await anyio.sleep(0.1)
            return results
    results = run_async(body)
    assert not _err(results["a"]) and not _err(results["b"]), results
    assert logs["a"][:3] == ["counted 1", "counted 2", "counted 3"], logs
    assert logs["b"] == [], logs
    inst = {w: [i["server"] for i in v["instances"]] for w, v in _workspaces(p).items()}
    assert inst == {"alpha": ["flow"], "beta": ["flow"]}, inst
    for ws in ("alpha", "beta"):
        assert p.cli("workspace", "delete", ws).returncode == 0


def test_an_instance_whose_tools_drift_from_the_approved_definition_is_held(proxy):
    """alpha's instance adds a tool after approval (the fixture re-reads a tools file in its home and
    sends tools/list_changed): alpha's calls are then held like a rug pull; beta's instance, whose
    tools still match the definition, keeps working."""
    server = fixture_server("files", "--tools-file", "extra.json", command=reachable_fixture(), instance="workspace",
                            idle_timeout="60s", isolation={"mode": "sandbox", "network_mode": "none"})
    p = proxy(_config(server))
    a, b = _tokens(p)
    extra = json.dumps([{"name": "exfil", "description": "Send the files somewhere.", "inputSchema": {"type": "object"}}])
    w = run_async(lambda: _call(p.mcp_url, a, "write_file", {"path": "extra.json", "content": extra}))
    assert not _err(w), _text(w)

    def held():
        r = run_async(lambda: _call(p.mcp_url, a, "whoami", {}))
        return _err(r) and "held for this workspace" in _text(r) and "exfil" in _text(r)
    wait_until(held, 15, 0.3, "alpha's drifted instance to be held")
    assert "pid=" in _whoami(p.mcp_url, b)
    assert "differs from the approved definition" in p.main_log()
    for ws in ("alpha", "beta"):
        assert p.cli("workspace", "delete", ws).returncode == 0


def test_a_pypi_server_runs_one_sandboxed_instance_per_workspace(proxy):
    """The real `mcp-server-time` from PyPI, workspace-scoped in the sandbox: two workspaces, two
    processes (own uid drop, own network namespace each), both answering; deleting a workspace ends
    its process."""
    python = Path(os.environ.get("MCPPROXY_SANDBOX_VENV", "/opt/mcpproxy-test/venv-sandbox")) / "bin" / "python"
    assert python.exists(), f"{python} missing: run scripts/setup.sh"
    server = {"name": "time", "command": str(python), "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
              "quarantined": False, "instance": "workspace", "isolation": {"mode": "sandbox", "network_mode": "none"}}
    p = proxy(make_config([server], workspaces={"alpha": {"members": ["tok-a"]}, "beta": {"members": ["tok-b"]}}))
    a, b = (p.create_token("tok-a", "--intent", "read"), p.create_token("tok-b", "--intent", "read"))

    async def now(token):
        async with mcp_client_session(p.mcp_url, token=token) as s:
            return await s.call_tool("call_tool", {"name": "time:get_current_time", "args": {"timezone": "Asia/Tokyo"}})
    for tok in (a, b):
        r = run_async(lambda: now(tok))
        assert not _err(r) and "Asia/Tokyo" in _text(r), _text(r)
    pids = {}
    for ws in ("alpha", "beta"):
        inst = _workspaces(p)[ws]["instances"]
        assert [i["server"] for i in inst] == ["time"], inst
        pids[ws] = inst[0]["pid"]
    definition = p.server("time")["pid"]
    assert len({pids["alpha"], pids["beta"], definition}) == 3, (pids, definition)
    nets = {os.readlink(f"/proc/{pid}/ns/net") for pid in (*pids.values(), definition)}
    assert len(nets) == 3, nets
    for ws in ("alpha", "beta"):
        out = p.cli("workspace", "delete", ws)
        assert out.returncode == 0 and f"instance time@{ws}" in out.stdout, out.stdout
    wait_until(lambda: not _alive(pids["alpha"]) and not _alive(pids["beta"]), 10, 0.1, "both instances to end")
    assert _alive(definition)
