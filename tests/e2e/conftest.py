"""Fixtures for the end-to-end tests of the `mcpproxy` binary (see e2e_support.py for helpers).

Run: scripts/setup.sh && swift build && .venv/bin/python -m pytest tests/e2e
Binaries come from .build/debug (or $MCPPROXY_BIN_DIR). Missing prerequisites fail loudly: these
tests must not skip silently.
"""

from __future__ import annotations

import subprocess

import pytest

from e2e_support import ProxyFactory, bin_dir, free_port, venv_python, wait_until, SERVERS_DIR

# The tests read results with SDK 2.x names; under the pinned 1.x SDK (scripts/test.sh runs the
# protocol tests again with it) `isError` is spelled the 1.x way.
try:
    from mcp.types import CallToolResult as _CallToolResult
    if "is_error" not in getattr(_CallToolResult, "model_fields", {}):
        _CallToolResult.is_error = property(lambda self: self.isError)
except ImportError:  # pragma: no cover - the mcp package itself is checked by the fixtures
    pass


@pytest.fixture(scope="session")
def binaries():
    """Paths of the built `mcpproxy` and `mcpproxy-fixture` (fails when they are not built)."""
    d = bin_dir()
    found = {name: d / name for name in ("mcpproxy", "mcpproxy-fixture")}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)}; run `swift build` (or set MCPPROXY_BIN_DIR)")
    return found


@pytest.fixture(scope="session")
def python_bin():
    """The venv python with the MCP SDK and mcp-server-time (fails when scripts/setup.sh was not run)."""
    py = venv_python()
    if not py.is_file():
        pytest.fail(f"{py} missing; run scripts/setup.sh")
    probe = subprocess.run([str(py), "-c", "import mcp, mcp_server_time"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"{py} lacks the MCP SDK or mcp-server-time: {probe.stderr.strip()}; run scripts/setup.sh")
    return py


@pytest.fixture
def proxy(tmp_path, binaries):
    """A factory: `proxy(config, wait=True, **kw)` starts `mcpproxy serve` and returns a `Proxy`.

    Teardown stops every proxy it started (SIGTERM, wait, SIGKILL) and fails the test when any
    process that descended from a proxy is still alive 5 s after the proxy exited.
    """
    factory = ProxyFactory(tmp_path)
    yield factory
    problems = factory.teardown()
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def py_http_upstream(tmp_path, python_bin):
    """A factory: `py_http_upstream("streamable-http"|"sse")` runs tests/e2e/servers/py_upstream.py
    (the real Python SDK server) on a free loopback port and returns its URL; stopped at teardown."""
    procs = []

    def start(transport: str, name: str = "pyhttp", *extra: str) -> str:
        port = free_port()
        log = open(tmp_path / f"upstream-{transport}-{port}.log", "wb")
        p = subprocess.Popen([str(python_bin), str(SERVERS_DIR / "py_upstream.py"), "--transport", transport,
                              "--port", str(port), "--name", name, *extra],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        import socket

        def listening() -> bool:
            if p.poll() is not None:
                raise AssertionError(f"upstream exited with {p.returncode}")
            with socket.socket() as s:
                s.settimeout(0.2)
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, 30, 0.1, f"{transport} upstream on port {port}")
        return f"http://127.0.0.1:{port}/mcp" if transport == "streamable-http" else f"http://127.0.0.1:{port}/sse"

    def kill_all() -> None:
        for p in procs:
            p.kill()
            p.wait(10)
    start.kill_all = kill_all
    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
