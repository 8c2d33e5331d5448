"""Issue 9 (docker half) and issue 16 through the real binary: `mcpproxy audit` and `mcpproxy
doctor` read docker options with the planner's own parser, so every spelling docker accepts is
flagged from the config alone, with its JSON path; `doctor` shows the planned command with only
inline env values redacted."""
from __future__ import annotations

import json
import subprocess

from e2e_support import bin_dir

# (extra_args, audit rule) -- each planned without a refusal before this change.
SPELLINGS = [
    (["-iv/var/run/docker.sock:/s"], "docker-socket"),
    (["-iu0"], "root-user"),
    (["--privileged=t"], "privileged"),
    (["--use-api-socket=t"], "docker-socket"),
    (["--mount", '"type=bind","source=/var/run/docker.sock",target=/s'], "docker-socket"),
    (["--mount", "type=volume,src=v,dst=/d,volume-opt=device=/var/run,volume-opt=o=bind"], "docker-option-refused"),
    (["--user", "00"], "root-user"),
    (["--user", "+0"], "root-user"),
    (["--user", "65534:0"], "root-user"),
    (["--group-add", "docker"], "docker-socket"),
    (["--cap-add", "SYS_MODULE"], "dangerous-cap-add"),
    (["--cap-add", "DAC_READ_SEARCH"], "dangerous-cap-add"),
    (["--security-opt", "seccomp=/root/profile.json"], "unconfined-security-opt"),
    (["--env-file", "/root/.env"], "docker-option-refused"),
    (["--network", "container:other"], "docker-option-refused"),
    (["-v", "/var/lib/docker:/d"], "docker-socket"),
    (["-v", "/run/containerd/containerd.sock:/c"], "docker-socket"),
]


def _config(tmp_path, servers: dict) -> str:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"docker_isolation": {"mode": "docker"}, "mcpServers": servers}))
    return str(path)


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir() / "mcpproxy"), *args], capture_output=True, text=True, timeout=120,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_audit_flags_every_spelling_with_its_path(tmp_path, binaries):
    servers = {f"s{i}": {"command": "python3", "args": ["srv.py"],
                         "isolation": {"image": "python:3.11", "extra_args": extra}}
               for i, (extra, _) in enumerate(SPELLINGS)}
    servers["image"] = {"command": "x", "isolation": {"image": "--privileged"}}
    r = _run(tmp_path, "audit", "--config", _config(tmp_path, servers), "--json")
    assert r.returncode == 1, r.stderr
    findings = json.loads(r.stdout)["findings"]
    for i, (extra, rule) in enumerate(SPELLINGS):
        mine = [f for f in findings if f["server"] == f"s{i}" and f["severity"] == "high"]
        assert any(f["rule_id"] == rule for f in mine), (extra, mine)
    image = [f for f in findings if f["server"] == "image"]
    assert any(f["rule_id"] == "docker-config-invalid" and "mcpServers.image.isolation.image" in f["evidence"] for f in image), image
    # Refusals name the JSON path of the argument.
    s0 = [f for f in findings if f["server"] == "s0"]
    assert any("mcpServers.s0.isolation.extra_args[0]" in f["evidence"] for f in s0), s0


def test_doctor_lists_refusals_and_exits_nonzero(tmp_path, binaries):
    servers = {"bad": {"command": "python3", "isolation": {"image": "python:3.11",
                                                            "extra_args": ["--privileged=T", "-iu", "0"]}}}
    r = _run(tmp_path, "doctor", "--config", _config(tmp_path, servers), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 1, r.stdout
    assert "mcpServers.bad.isolation.extra_args[0]" in r.stdout and '"privileged"' in r.stdout, r.stdout
    assert "mcpServers.bad.isolation.extra_args[1]" in r.stdout and '"root_user"' in r.stdout, r.stdout


def test_doctor_redacts_only_inline_env_values(tmp_path, binaries):
    # An env value equal to other words of the command line ("none", "true") must not hide them.
    servers = {"ok": {"command": "python3", "env": {"MODE": "none", "FLAG": "true"},
                      "isolation": {"image": "python:3.11", "network_mode": "none",
                                    "extra_args": ["-e", "TOKEN=s3cr3t-inline"]}}}
    r = _run(tmp_path, "doctor", "ok", "--config", _config(tmp_path, servers), "--data-dir", str(tmp_path / "data"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    args = json.loads(r.stdout)["servers"][0]["launch"]["docker_run_args"]
    assert "s3cr3t-inline" not in json.dumps(args)
    assert "TOKEN=***" in args
    assert args[args.index("--log-driver") + 1] == "none"
    assert args[args.index("--network") + 1] == "none"
    assert "mcpproxy.managed=true" in args
    assert "HOME=/home/mcpproxy" in args
    assert "/home/mcpproxy:rw,exec,nosuid,nodev,size=64m" in args
    assert "/tmp:rw,noexec,nosuid,nodev,size=64m" in args
