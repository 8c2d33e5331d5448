"""docs/getting-started.md, run as written: its `sh` blocks (each with bash, in a fresh HOME) and
its `python` block (with the test venv's Python, which has the MCP SDK), in order, until a real
PyPI server answers an agent token's call through the proxy in sandbox mode and the call is in
the activity log. One substitution: the release build of step 1 is replaced by the binaries the
tests already built ($MCPPROXY_BIN_DIR or .build/debug)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from e2e_support import ROOT, bin_dir, venv_python, wait_until

DOC = ROOT / "docs" / "getting-started.md"


def doc_blocks() -> list[tuple[str, str]]:
    """The top-level ```sh and ```python blocks of the page, in order (indented ones, like the
    Cursor JSON inside a list item, are examples, not steps)."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(sh|python)\n(.*?)^```$", DOC.read_text(), re.M | re.S)]


def serve_pids(home: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmd and cmd[0].endswith(b"mcpproxy") and f"HOME={home}".encode() in env:
            pids.append(int(d.name))
    return pids


def test_getting_started_as_written(tmp_path, binaries):
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 8080)) != 0, "port 8080 (the default listen address) is in use"
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    blocks = doc_blocks()
    assert [lang for lang, _ in blocks] == ["sh", "sh", "sh", "sh", "sh", "python", "sh"], blocks
    outputs = []
    try:
        for i, (lang, text) in enumerate(blocks):
            if i == 0:
                assert "swift build -c release" in text and ".build/release" in text
                env["PATH"] = f"{bin_dir()}:{env['PATH']}"  # the build the tests already made
                continue
            if lang == "sh":
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=ROOT, env=env, capture_output=True,
                                   text=True, timeout=300)
            else:
                script = tmp_path / f"step{i}.py"
                script.write_text(text)
                r = subprocess.run([str(venv_python()), str(script)], cwd=tmp_path, env=env, capture_output=True,
                                   text=True, timeout=120)
            assert r.returncode == 0, f"step {i} ({lang}) failed:\n{text}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
            outputs.append(r.stdout)
        # The agent found and called the tool (python step), and the call is in the activity log.
        lines = outputs[-2].splitlines()
        found, now = lines[0], "\n".join(lines[1:])  # the proxy's JSON is one line; the tool's may be several
        assert json.loads(found)["tools"][0]["name"].startswith("time:"), found
        assert json.loads(now)["timezone"] == "UTC", now
        activity = json.loads(outputs[-1])["activity"]
        assert any(a["tool"] == "get_current_time" and a["outcome"] == "ok" and a.get("caller") == "token:my-agent"
                   for a in activity), activity
        # It ran confined: the proxy reports sandbox mode for it.
        key = (home / ".mcpproxy" / "api_key").read_text().strip()
        r = subprocess.run(["curl", "-s", "-H", f"X-API-Key: {key}", "http://127.0.0.1:8080/api/v1/servers/time"],
                           capture_output=True, text=True, timeout=30)
        assert json.loads(r.stdout)["isolation"]["mode"] == "sandbox", r.stdout
    finally:
        for pid in serve_pids(home):
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not serve_pids(home), 30, 0.2, "the proxy started by the walkthrough to stop")
