"""What a new user meets first: `doctor` finds a command that is not installed, typos of known
keys stop the proxy with the key they meant, and `upstream approve` keeps the config's comments."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from e2e_support import bin_dir, fixture_server, make_config


def _run(tmp_path, *args: str, config: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "mcp_config.json"
    cfg.write_text(config)
    return subprocess.run([str(bin_dir() / "mcpproxy"), *args, "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_doctor_names_a_missing_command(tmp_path, binaries):
    cfg = json.dumps(make_config([{"name": "time", "command": "uvx-not-installed", "args": ["mcp-server-time"],
                                   "isolation": {"mode": "none"}}, fixture_server("ok")]))
    r = _run(tmp_path, "doctor", config=cfg)
    assert r.returncode == 1, r
    assert "uvx-not-installed" in r.stdout and "not found" in r.stdout, r.stdout
    ok = _run(tmp_path, "doctor", "ok", config=cfg)
    assert ok.returncode == 0, ok


def test_typo_of_a_known_key_stops_the_proxy_with_the_key_meant(tmp_path, binaries):
    cfg = json.dumps({"docker_isolaton": {"mode": "none"}, "mcpServers": [fixture_server("a")]})
    r = _run(tmp_path, "serve", "--listen", "127.0.0.1:0", config=cfg)
    assert r.returncode != 0, r
    assert 'did you mean "docker_isolation"' in r.stderr + r.stdout, r.stderr
    d = _run(tmp_path, "doctor", config=json.dumps({"mcpServers": [{"name": "a", "comand": "/bin/true"}]}))
    assert d.returncode != 0 and 'did you mean "command"' in d.stdout + d.stderr, d


def test_upstream_approve_keeps_comments(tmp_path, binaries):
    text = ("// my servers\n{\n  \"mcpServers\": [\n    // the fixture, pending review\n"
            f"    {{\"name\": \"fx\", \"command\": \"{bin_dir() / 'mcpproxy-fixture'}\", \"quarantined\": true}} // inline\n"
            "  ]\n}\n")
    r = _run(tmp_path, "upstream", "approve", "fx", config=text)
    assert r.returncode == 0, r
    after = (tmp_path / "mcp_config.json").read_text()
    for comment in ("// my servers", "// the fixture, pending review", "// inline"):
        assert comment in after, after
    assert '"quarantined": false' in after and after.replace("false", "true") == text, after


def test_read_commands_print_json_without_secrets(proxy):
    """`upstream list --json` and `containers list --json` are machine-readable; no listing shows
    an env value or URL credentials."""
    import json as _json
    entry = fixture_server("a", env={"SERVICE_TOKEN": "s3cr3t-value"})
    remote = {"name": "r", "url": "http://user:pw-secret@127.0.0.1:9/mcp?api_key=k-secret", "protocol": "http"}
    p = proxy.create(make_config([entry, remote]))
    out = p.cli("upstream", "list", "--json")
    assert out.returncode == 0, out.stderr
    servers = {s["name"]: s for s in _json.loads(out.stdout)["servers"]}
    assert servers["a"]["env"] == ["SERVICE_TOKEN"] and servers["a"]["protocol"] == "stdio", servers
    assert servers["r"]["protocol"] == "http" and servers["a"]["approval"] in ("approved", "quarantined")
    text = p.cli("upstream", "list")
    for listing in (out.stdout, text.stdout):
        assert "s3cr3t-value" not in listing and "pw-secret" not in listing and "k-secret" not in listing, listing
    c = subprocess.run([str(bin_dir() / "mcpproxy"), "containers", "list", "--json"], capture_output=True, text=True,
                       timeout=60)
    assert c.returncode == 0, c.stderr
    assert isinstance(_json.loads(c.stdout)["containers"], list)


def test_start_failures_are_on_the_console_once_with_the_fix(proxy):
    """A server that cannot start is reported on stderr (where people look), once per streak, with
    what to do; giving up is reported too; the details stay in the server's log."""
    from e2e_support import wait_until
    entry = {"name": "bad", "command": "/nonexistent/uvx", "args": ["x"], "quarantined": False,
             "isolation": {"mode": "none"}}
    p = proxy(make_config([entry, fixture_server("good")], supervision={"max_failed_starts": 3}), wait=["good"])
    wait_until(lambda: (p.server("bad") or {}).get("state") == "failed", 30, 0.2, "bad to give up")
    err = p.stderr()
    lines = [l for l in err.splitlines() if "[server.bad]" in l]
    assert sum("failed to start" in l for l in lines) == 1, lines
    assert "command not found (install it, or give its full path" in lines[0], lines
    assert any("gave up after 3 failed starts" in l and "mcpproxy upstream enable bad" in l for l in lines), lines
    assert not any("[server.good]" in l for l in err.splitlines()), "a healthy server stays quiet on the console"


def test_upstream_add_then_approve_makes_tools_callable(proxy):
    """The newcomer path on the CLI: `upstream add` (comments kept, env values never echoed), the
    running proxy starts the server quarantined, `upstream approve` makes its tools callable;
    `upstream remove` stops it."""
    from e2e_support import result_text, wait_until
    p = proxy(make_config([fixture_server("first")]))
    text = "// my servers\n" + p.config_path.read_text()
    p.config_path.write_text(text)
    fixture = fixture_server("added")
    # Options before `--`: what follows it is the server's command line.
    out = subprocess.run([str(bin_dir() / "mcpproxy"), "upstream", "add", "added", "--config", str(p.config_path),
                          "--env", "GREETING=s3cr3t-hello", "--isolation", "none", "--", fixture["command"], *fixture["args"]],
                         env=p.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "starts quarantined" in out.stdout and "s3cr3t-hello" not in out.stdout + out.stderr
    assert p.config_path.read_text().startswith("// my servers\n")
    st = wait_until(lambda: (lambda s: s if s and s["state"] == "ready" else None)(p.server("added")), 30, 0.2, "added ready")
    assert st["quarantined"] is True, st
    s = p.session()
    refused = s.call_tool("added:echo", {"text": "hi"})
    assert refused["result"]["isError"] and "quarantine" in result_text(refused["result"]), refused
    ok = p.cli("upstream", "approve", "added")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    reply = wait_until(lambda: (lambda r: r if not r["result"].get("isError") else None)(s.call_tool("added:echo", {"text": "hi"})),
                       20, 0.2, "added:echo callable")
    assert result_text(reply["result"]) == "hi"
    assert p.cli("upstream", "remove", "added").returncode == 0
    wait_until(lambda: p.server("added") is None, 20, 0.2, "added removed")
    dup = subprocess.run([str(bin_dir() / "mcpproxy"), "upstream", "add", "first", "--config", str(p.config_path),
                          "--", "/bin/true"], env=p.env, capture_output=True, text=True, timeout=60)
    assert dup.returncode != 0 and "already exists" in dup.stderr + dup.stdout


def test_shell_completions_are_generated_for_every_shell(tmp_path):
    """Completion scripts come from ArgumentParser; bash's is loadable and completes subcommands."""
    for shell in ("bash", "zsh", "fish"):
        r = subprocess.run([str(bin_dir() / "mcpproxy"), "--generate-completion-script", shell],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "mcpproxy" in r.stdout and "upstream" in r.stdout, (shell, r.stderr)
    script = tmp_path / "mcpproxy.bash"
    script.write_text(subprocess.run([str(bin_dir() / "mcpproxy"), "--generate-completion-script", "bash"],
                                     capture_output=True, text=True, timeout=30).stdout)
    probe = (f'source {script}; COMP_WORDS=(mcpproxy ups); COMP_CWORD=1; COMP_LINE="mcpproxy ups"; COMP_POINT=12; '
             f'_mcpproxy; echo "${{COMPREPLY[@]}}"')
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert "upstream" in r.stdout.split(), (r.stdout, r.stderr)


def test_man_page_is_generated_and_renders(tmp_path):
    """`scripts/man.sh` writes mcpproxy(1) from the command definitions (swift-argument-parser's
    generate-manual); man renders it, and it documents every public subcommand and its options."""
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([str(root / "scripts" / "man.sh"), str(tmp_path), str(bin_dir() / "mcpproxy")],
                       capture_output=True, text=True, timeout=600, cwd=root)
    assert r.returncode == 0, r.stderr
    page = tmp_path / "mcpproxy.1"
    source = page.read_text()
    assert source.startswith(".\\\"") or ".Dt MCPPROXY 1" in source, source[:200]
    shown = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "MANWIDTH": "120", "MANPAGER": "cat", "PAGER": "cat"})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "MCPPROXY(1)" in text
    for sub in ("serve", "doctor", "upstream", "token", "scan", "status", "audit", "containers"):
        assert f"\n     {sub}" in text or f" {sub} " in text, sub
    for option in ("--config", "--data-dir", "--listen", "--json", "--watch"):
        assert option in text, option
