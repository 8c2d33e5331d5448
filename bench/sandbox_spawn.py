#!/usr/bin/env python3
"""Spawn -> initialize latency: the same MCP server started directly vs through mcpproxy-sandbox.

Measures, per run, the wall time (and the CPU time the child used: robust on a loaded machine) from spawning the process to reading the first response line
(the reply to `initialize`). The launcher's own start-up (exec, Landlock ruleset, rlimits, seccomp,
namespace) is therefore part of the figure. The policy mirrors what SandboxPlanner produces for the
probe server when the proxy runs as root: system paths, /etc entries, /proc, devices, private
home/tmp (size-capped tmpfs mounts in a private mount namespace), a per-launch cgroup with the
default memory/cpu/pids limits, unix sockets denied, rlimits, a per-server uid drop; once with the
host network and once with network_mode none. The server's environment travels prefixed, as the
planner sends it. Every launch's cgroup is removed afterwards, as the supervisor does.

usage: bench/sandbox_spawn.py [--runs N] [--bin DIR]   (DIR defaults to .build/release, then .build/debug)
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INIT = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "bench", "version": "1"}}}) + "\n").encode()

def find_bin(explicit):
    for d in ([explicit] if explicit else [os.path.join(ROOT, ".build/release"), os.path.join(ROOT, ".build/debug")]):
        if d and os.path.exists(os.path.join(d, "mcpproxy-sandbox")) and os.path.exists(os.path.join(d, "mcpproxy-probe")):
            return d
    sys.exit("mcpproxy-sandbox / mcpproxy-probe not built: run swift build")

def policy(bindir, private, net, leaf):
    etc = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates",
           "/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
           "/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/timezone",
           "/etc/alternatives", "/etc/os-release", "/etc/debian_version"]
    a = ["--name", "bench"]
    home, tmp = private + "/home", private + "/tmp"
    if os.geteuid() == 0:
        a += ["--uid", "1900000123", "--gid", "1900000123"]
    a += ["--mkdir", home, "--mkdir", tmp]
    for p in ["/usr", "/bin", "/sbin", "/lib", "/lib64", os.path.realpath(bindir)]:
        if os.path.exists(p): a += ["--rx", p]
    for p in etc + ["/proc", "/sys/devices/system/cpu", "/sys/fs/cgroup"]:
        if os.path.exists(p): a += ["--ro", p]
    for p in ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]:
        a += ["--dev", p]
    a += ["--rw", home, "--rw", tmp, "--chdir", home, "--net", net,
          "--rlimit", "as=%d" % (8 << 30), "--rlimit", "nofile=1024", "--rlimit", "nproc=256",
          "--deny-unix", "--cgroup", leaf, "--cgroup-memory", str(2 << 30), "--cgroup-cpus", "1",
          "--cgroup-optional", "--cgroup-pids", "256"]
    if os.geteuid() == 0:
        a += ["--tmpfs", "%s=%d" % (home, 512 << 20), "--tmpfs", "%s=%d" % (tmp, 512 << 20)]
    else:
        a += ["--rlimit", "fsize=%d" % (512 << 20)]
    return a

CGROUP_ROOTS = ["/sys/fs/cgroup/mcpproxy"] + ["/sys/fs/cgroup/%s/mcpproxy" % c for c in ("memory", "cpu", "pids")]

def remove_cgroups(leaf):
    for root in CGROUP_ROOTS:
        d = os.path.join(root, leaf)
        if os.path.isdir(d):
            try: os.rmdir(d)
            except OSError: pass

def once(argv, env, leaf=None):
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    p.stdin.write(INIT); p.stdin.flush()
    line = p.stdout.readline()
    t1 = time.perf_counter_ns()
    p.stdin.close()
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    if leaf: remove_cgroups(leaf)
    if b'"result"' not in line:
        sys.exit("no initialize result from %s: %r" % (argv[0], line))
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3

def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1], xs[0]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--bin")
    args = ap.parse_args()
    bindir = find_bin(args.bin)
    probe, launcher = os.path.join(bindir, "mcpproxy-probe"), os.path.join(bindir, "mcpproxy-sandbox")
    private = tempfile.mkdtemp(prefix="mcpx-bench-")
    os.chmod(private, 0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": private + "/home", "TMPDIR": private + "/tmp"}
    sandbox_env = {"MCPX_SANDBOX_ENV_" + k: v for k, v in env.items()}
    leaf = "bench-%d" % os.getpid()
    variants = [
        ("none (direct exec)", [probe], env, None),
        ("sandbox, host network", [launcher] + policy(bindir, private, "host", leaf) + ["--", probe], sandbox_env, leaf),
        ("sandbox, network_mode none", [launcher] + policy(bindir, private, "none", leaf) + ["--", probe], sandbox_env, leaf),
    ]
    for _, argv, e, l in variants:
        for _ in range(20): once(argv, e, l)          # warm the page cache
    results = {name: [] for name, _, _, _ in variants}
    cpu = {name: [] for name, _, _, _ in variants}
    for _ in range(args.runs):                        # interleave so drift hits all variants alike
        for name, argv, e, l in variants:
            wall, used = once(argv, e, l)
            results[name].append(wall)
            cpu[name].append(used)
    base = stats(results[variants[0][0]])[0]
    cbase = statistics.median(cpu[variants[0][0]])
    print("spawn -> initialize response, %d runs each, binaries from %s, uid %d, kernel %s, load %.1f"
          % (args.runs, os.path.relpath(bindir, ROOT), os.geteuid(), os.uname().release, os.getloadavg()[0]))
    print("| variant | median ms | p90 ms | min ms | added (median) ms | CPU of the child, median ms | added CPU ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _, _, _ in variants:
        med, p90, mn = stats(results[name])
        c = statistics.median(cpu[name])
        print("| %s | %.2f | %.2f | %.2f | %+.2f | %.2f | %+.2f |" % (name, med, p90, mn, med - base, c, c - cbase))
    shutil.rmtree(private, ignore_errors=True)

if __name__ == "__main__":
    main()
