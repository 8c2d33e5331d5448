#!/usr/bin/env python3
"""What delivering secrets through the launcher costs a container's cold start (docs/security.md,
"Docker and podman: a file on a read-only tmpfs mount").

Per container backend (docker, podman; runc, runsc), interleaved runs of the planned argv with
network none (bench/docker_coldstart_argv.json), spawn -> `initialize` answer:

  plain     one variable passed as today's plain env (`--env NAME`, value in the client's env)
  secret    the same variable through SecretDelivery: a 0400 file (owned 65534) in a 0700
            directory on tmpfs, two read-only binds, the static launcher as entrypoint; the time
            includes writing the file and deleting it after the answer (the image's entrypoint
            comes from prepare()'s existing `image inspect`, so no engine round trip is added)

Every run checks that the server really got the value (a tools/call get_env), outside the timed part.
Usage: bench/docker_secrets.py [--runs N]   (needs scripts/setup.sh; run under
flock /tmp/mcpproxy-docker.lock on a shared machine)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docker_coldstart import IMAGE, INIT, ROOT, planned_argv, stats  # noqa: E402

LAUNCHER = os.path.join(ROOT, ".build", "debug", "mcpproxy-sandbox")
VALUE = "bench-secret-value-0123456789abcdef"


def base_dir():
    for d in ("/run/mcpproxy-secrets", "/dev/shm/mcpproxy-secrets-bench"):
        parent = os.path.dirname(d)
        if subprocess.run(["stat", "-f", "-c", "%T", parent], capture_output=True, text=True).stdout.strip() in ("tmpfs", "ramfs"):
            os.makedirs(d, mode=0o700, exist_ok=True)
            return d
    raise SystemExit("no tmpfs for the secret directory")


def argv_for(engine, runtime, tmp, secret_dir):
    argv = planned_argv("none", tmp, engine, runtime)
    i = argv.index(IMAGE)
    if secret_dir is None:
        return argv[:i] + ["--env", "BENCH_TOKEN"] + argv[i:]
    return (argv[:i] + ["--volume", f"{secret_dir}:/run/mcpproxy/secrets:ro",
                        "--volume", f"{LAUNCHER}:/run/mcpproxy/launch:ro", "--entrypoint", "/run/mcpproxy/launch", IMAGE,
                        "--env-file", "/run/mcpproxy/secrets/env", "--"] + argv[i + 1:])


def run(engine, runtime, tmp, base, secret):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    t0 = time.perf_counter()
    secret_dir = None
    if secret:
        secret_dir = tempfile.mkdtemp(dir=base)
        os.chmod(secret_dir, 0o700)
        path = os.path.join(secret_dir, "env")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        os.write(fd, f"BENCH_TOKEN={VALUE}\0".encode())
        os.fchown(fd, 65534, 65534)
        os.close(fd)
        os.chown(secret_dir, 65534, 65534)
    else:
        env["BENCH_TOKEN"] = VALUE
    p = subprocess.Popen(argv_for(engine, runtime, tmp, secret_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdin.write(INIT)
    p.stdin.flush()
    line = p.stdout.readline()
    if secret:
        os.unlink(os.path.join(secret_dir, "env"))
    elapsed = (time.perf_counter() - t0) * 1000
    if b'"result"' not in line:
        raise RuntimeError(f"no initialize result: {line!r} {p.stderr.read()!r}")
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                               "params": {"name": "get_env", "arguments": {"name": "BENCH_TOKEN"}}}) + "\n").encode())
    p.stdin.flush()
    got = p.stdout.readline()
    p.stdin.close()
    p.wait(timeout=60)
    if secret_dir:
        shutil.rmtree(secret_dir, ignore_errors=True)
    if VALUE.encode() not in got:
        raise RuntimeError(f"{engine}/{runtime} secret={secret}: the server did not get the value: {got!r}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    base = base_dir()
    backends = [("docker", "runc"), ("podman", "runc"), ("docker", "runsc"), ("podman", "runsc")]
    results = {(b, s): [] for b in backends for s in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:  # warm-up
            for s in (False, True):
                run(*b, tmp, base, s)
        for _ in range(args.runs):
            for b in backends:
                for s in (False, True):
                    results[(b, s)].append(run(*b, tmp, base, s))
    print("| backend | plain env median ms | p90 | secret file median ms | p90 | secret / plain |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for b in backends:
        a, s = stats(results[(b, False)]), stats(results[(b, True)])
        name = f"{b[0]} + {b[1]}"
        print(f"| {name} | {a['median']:.1f} | {a['p90']:.1f} | {s['median']:.1f} | {s['p90']:.1f} | {s['median'] / a['median']:.2f}x |")
    print(f"runs per cell: {args.runs}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
