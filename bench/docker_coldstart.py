#!/usr/bin/env python3
"""Cold start of a stdio MCP server, spawn -> initialize response, in three ways:

  prepare + planned   the same, preceded by prepare()'s `docker image inspect`
  planned   the argv DockerPlanner produces (bench/docker_coldstart_argv.json, kept equal to the
            planner's output by DockerBenchTemplateTests), network bridge and network none
  bare      a bare `docker run -i --rm mcpproxy-fixture:test /fixture` (same image, same network)
  none      the same static fixture binary run directly on the host (isolation mode none)

Each run spawns the process, writes one `initialize` request and stops the clock when the
response line arrives; then it closes stdin and waits for the exit (not timed), so runs do not
overlap. Runs are interleaved across modes so drift on this shared 2-core machine hits all
modes alike. Results (median, p90, min, max in ms) go to stdout and, with --write, to the
"Docker cold start" section of docs/benchmarks.md.

A second table compares the container backends with the planned argv and network none (what
gVisor supports here): docker and podman, each with runc and with runsc. Per run: spawn to the
first `tools/list` answer (initialize, initialized, tools/list), then --calls `tools/call echo`
round trips over the same stdio, whose median is the run's per-call latency.

Usage: bench/docker_coldstart.py [--runs N] [--calls N] [--write]
Needs the engines, runsc and the fixture image: scripts/setup.sh installs and builds them.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "mcpproxy-fixture:test"
INIT = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "bench", "version": "1"}}}) + "\n").encode()


def start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()[19]


def planned_argv(network, runtime, engine="docker", oci_runtime="runc"):
    with open(os.path.join(ROOT, "bench", "docker_coldstart_argv.json")) as f:
        template = json.load(f)
    launch = uuid.uuid4().hex[:12]
    name = f"mcpproxy-bench-{launch}"
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    values = {"{name}": name, "{cidfile}": os.path.join(runtime, name + ".cid"), "{instance}": "bench",
              "{boot}": boot, "{host}": platform.node(), "{pid}": str(os.getpid()),
              "{start}": start_time(os.getpid()), "{network}": network}
    out = []
    for t in template:
        for k, v in values.items():
            t = t.replace(k, v)
        out.append(t)
    if oci_runtime != "runc":
        out[1:1] = ["--runtime", oci_runtime]
    return [engine] + out


def message(obj):
    return (json.dumps(obj) + "\n").encode()


def backend_run(argv, env, calls):
    """Spawn -> first tools/list answer (ms), and the median of `calls` echo round trips (ms)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(INIT)
        p.stdin.flush()
        first = p.stdout.readline()
        if b'"result"' not in first:
            raise RuntimeError(f"{argv[:3]}...: no initialize result: {first!r} {p.stderr.read()!r}")
        p.stdin.write(message({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        p.stdin.write(message({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        p.stdin.flush()
        listed = p.stdout.readline()
        cold = (time.perf_counter() - t0) * 1000
        if b'"tools"' not in listed:
            raise RuntimeError(f"{argv[:3]}...: no tools/list result: {listed!r}")
        per_call = []
        for i in range(calls):
            t = time.perf_counter()
            p.stdin.write(message({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                                   "params": {"name": "echo", "arguments": {"text": "ping"}}}))
            p.stdin.flush()
            line = p.stdout.readline()
            per_call.append((time.perf_counter() - t) * 1000)
            if b'"ping"' not in line:
                raise RuntimeError(f"{argv[:3]}...: no echo result: {line!r}")
        return cold, statistics.median(per_call)
    finally:
        p.stdin.close()
        p.wait(timeout=60)


def once(argv, env, prepare=False):
    t0 = time.perf_counter()
    if prepare:
        # What ContainerLifecycle.prepare adds before the spawn: one `docker image inspect`.
        subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE], env=env,
                       stdout=subprocess.DEVNULL, check=True)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdin.write(INIT)
    p.stdin.flush()
    line = p.stdout.readline()
    elapsed = (time.perf_counter() - t0) * 1000
    p.stdin.close()
    p.wait(timeout=60)
    if b'"result"' not in line:
        raise RuntimeError(f"{argv[:3]}...: no initialize result: {line!r} {p.stderr.read()!r}")
    return elapsed


def stats(xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return {"median": statistics.median(xs), "p90": p90, "min": xs[0], "max": xs[-1], "n": len(xs)}


def extract_fixture(dest):
    cid = subprocess.check_output(["docker", "create", IMAGE, "/fixture"], text=True).strip()
    try:
        subprocess.check_call(["docker", "cp", f"{cid}:/fixture", dest])
    finally:
        subprocess.call(["docker", "rm", "-f", cid], stdout=subprocess.DEVNULL)


def write_section(text):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    body = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(r"\n## Docker cold start\n.*?(?=\n## |\Z)", re.S)
    section = "\n" + text.rstrip() + "\n"
    body = pattern.sub(lambda _: section, body) if pattern.search(body) else body.rstrip() + "\n" + section
    with open(path, "w") as f:
        f.write(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--calls", type=int, default=20, help="echo calls per run in the backend table")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    if subprocess.call(["docker", "image", "inspect", IMAGE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        sys.exit(f"{IMAGE} is missing: run scripts/setup.sh (it builds the test images)")
    load = os.getloadavg()[0]
    runtime = tempfile.mkdtemp(prefix="mcpproxy-bench-")
    fixture = os.path.join(runtime, "fixture")
    extract_fixture(fixture)
    env_docker = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG")}
    modes = {
        "planned (bridge)": lambda: planned_argv("bridge", runtime),
        "prepare + planned (bridge)": lambda: planned_argv("bridge", runtime),
        "bare docker run (bridge)": lambda: ["docker", "run", "-i", "--rm", IMAGE, "/fixture"],
        "planned (network none)": lambda: planned_argv("none", runtime),
        "bare docker run (network none)": lambda: ["docker", "run", "-i", "--rm", "--network", "none", IMAGE, "/fixture"],
        "mode none (fixture on the host)": lambda: [fixture],
    }
    results = {m: [] for m in modes}
    for m, make in modes.items():  # warm-up, not counted
        once(make(), env_docker, prepare=m.startswith("prepare"))
    for _ in range(args.runs):
        for m, make in modes.items():
            results[m].append(once(make(), env_docker, prepare=m.startswith("prepare")))

    # The container backends, planned argv, network none.
    env_podman = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "XDG_RUNTIME_DIR", "CONTAINER_HOST")}
    backends = {
        "docker + runc": (lambda: planned_argv("none", runtime), env_docker),
        "podman + runc": (lambda: planned_argv("none", runtime, engine="podman"), env_podman),
        "docker + runsc (gVisor)": (lambda: planned_argv("none", runtime, oci_runtime="runsc"), env_docker),
        "podman + runsc (gVisor)": (lambda: planned_argv("none", runtime, engine="podman", oci_runtime="runsc"), env_podman),
        "mode none (fixture on the host)": (lambda: [fixture], env_docker),
    }
    cold = {b: [] for b in backends}
    call = {b: [] for b in backends}
    for b, (make, env) in backends.items():  # warm-up, not counted
        backend_run(make(), env, args.calls)
    for _ in range(args.runs):
        for b, (make, env) in backends.items():
            c, k = backend_run(make(), env, args.calls)
            cold[b].append(c)
            call[b].append(k)
    shutil.rmtree(runtime, ignore_errors=True)

    s = {m: stats(v) for m, v in results.items()}
    ratio_bridge = s["planned (bridge)"]["median"] / s["bare docker run (bridge)"]["median"]
    ratio_none = s["planned (network none)"]["median"] / s["bare docker run (network none)"]["median"]
    ratio_prepare = s["prepare + planned (bridge)"]["median"] / s["bare docker run (bridge)"]["median"]
    docker_version = subprocess.check_output(["docker", "version", "--format", "{{.Server.Version}}"], text=True).strip()
    podman_version = subprocess.check_output(["podman", "version", "--format", "{{.Client.Version}}"], text=True).strip()
    runsc_version = subprocess.check_output(["runsc", "--version"], text=True).splitlines()[0].split()[-1]
    lines = [
        "## Docker cold start",
        "",
        f"Spawn to `initialize` response of the fixture MCP server ({IMAGE}, a static binary in a",
        "FROM-scratch image), measured by `bench/docker_coldstart.py --runs "
        f"{args.runs} --write` on {time.strftime('%Y-%m-%d', time.gmtime())}",
        f"(engine {docker_version}, {os.cpu_count()} cores shared with other work: load average {load:.1f} at the start;",
        "runs interleaved across modes, one warm-up each).",
        "\"planned\" is the hardened argv of DockerPlanner (cap-drop ALL, no-new-privileges, read-only",
        "rootfs + /tmp tmpfs, non-root user, pids/memory/cpu limits, --init, labels, cid file,",
        "log driver none); \"bare\" is `docker run -i --rm IMAGE /fixture`.",
        "",
        "| mode | median ms | p90 ms | min ms | max ms | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m, st in s.items():
        lines.append(f"| {m} | {st['median']:.1f} | {st['p90']:.1f} | {st['min']:.1f} | {st['max']:.1f} | {st['n']} |")
    lines += [
        "",
        f"Planned / bare, medians: {ratio_bridge:.2f}x on bridge, {ratio_none:.2f}x with network none; "
        f"with the image check of prepare() included, {ratio_prepare:.2f}x (target: at most 1.1x: "
        + ("met" if max(ratio_bridge, ratio_none, ratio_prepare) <= 1.1 else
           f"not met in this run, worst {max(ratio_bridge, ratio_none, ratio_prepare):.2f}x at load average {load:.1f}") + ").",
        ("The differences are within the run-to-run noise of this shared machine (compare the p90 and max columns): "
         "the hardening flags cost nothing measurable; " if max(ratio_bridge, ratio_none) <= 1.1 else
         "The medians differ by less than the run-to-run spread of this shared machine (compare the p90 and max columns); "
         "the next lever, if a quiet machine confirms a cost, is fewer engine round trips before the spawn (the image check); ")
        + "the engine's container setup dominates (mode none starts "
        f"{s['bare docker run (bridge)']['median'] / s['mode none (fixture on the host)']['median']:.0f}x faster).",
        "",
        "### Engines and OCI runtimes",
        "",
        f"The planned argv with network none (gVisor runs only without a network here) on docker {docker_version}",
        f"and podman {podman_version} (rootful), each with runc and with runsc {runsc_version} (ptrace platform); same runs,",
        f"interleaved. Cold start: spawn to the first `tools/list` answer. Per call: median of {args.calls}",
        "`tools/call echo` round trips per run over the server's stdio (through the engine's attach);",
        "the table shows the median and p90 of those per-run medians.",
        "",
        "| backend | cold start median ms | p90 ms | per call median ms | p90 ms | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in backends:
        cs, ks = stats(cold[b]), stats(call[b])
        lines.append(f"| {b} | {cs['median']:.1f} | {cs['p90']:.1f} | {ks['median']:.2f} | {ks['p90']:.2f} | {cs['n']} |")
    base = stats(cold["docker + runc"])["median"]
    lines += [
        "",
        "Cold start relative to docker + runc: "
        + ", ".join(f"{b} {stats(cold[b])['median'] / base:.2f}x" for b in backends if b != "docker + runc") + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
