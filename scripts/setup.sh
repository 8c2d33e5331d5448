#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine of the project's kind, idempotently:
# apt packages, the Docker engine (started if not running), the Python venv with the real MCP
# peers from PyPI, and the locally built test images. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "[setup] $*"; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# iptables fences egress networks and namespaces off the gateway's other ports (egress tests).
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# openssl makes the self-signed certificate of the TLS front-door test.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# A local registry (loopback only) for the docker-isolation pull tests.
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
# gcc and the static libc build the scanner-plugin probe image of the security tests.
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
# The distribution's Python (with venv) for the sandbox tests' PyPI server.
[ -x /usr/bin/python3 ] || need_apt+=(python3)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Debian's chromium and its driver for the web console's browser test (Selenium from PyPI drives
# them; Playwright cannot download its browsers here).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The second container engine and the second OCI runtime of mode docker (isolation.engine: podman,
# isolation.oci_runtime: runsc): their tests run the same e2e and escape tests as docker.
# catatonit is podman's --init.
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
[ -x /usr/libexec/podman/catatonit ] || [ -x /usr/bin/catatonit ] || need_apt+=(catatonit)
command -v runsc >/dev/null 2>&1 || need_apt+=(runsc)
# man renders the generated mcpproxy(1) in its test.
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Docker engine: start dockerd when no engine answers.
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  # setsid: its own session, so ending the shell or process group that ran setup does not stop it.
  setsid -f dockerd >/var/log/mcpproxy-dockerd.log 2>&1 < /dev/null
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/mcpproxy-dockerd.log" >&2; exit 1; }
fi

# gVisor's runsc as a runtime of both engines. Debian's runsc (2022-12) decides "am I in the root
# network namespace?" by whether /proc/sys/net/core/rmem_default exists, which every network
# namespace has since Linux made that sysctl per-namespace (6.x): with its own network stack it
# then refuses to start ("cannot run with network enabled in root network namespace"). So it is
# registered with --network=none (no network stack in the sandbox; the planner allows runsc only
# with network_mode none) and the ptrace platform (no KVM here). See docs/docker-isolation.md.
RUNSC=$(command -v runsc)
# docker: "runtimes" in daemon.json, merged into the keys already there; dockerd reloads its
# runtimes on SIGHUP (no restart, so running containers are left alone).
python3 - "$RUNSC" <<'PY'
import json, os, sys
path = "/etc/docker/daemon.json"
cfg = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    cfg = json.loads(text) if text else {}
want = {"path": sys.argv[1], "runtimeArgs": ["--platform=ptrace", "--network=none"]}
if cfg.get("runtimes", {}).get("runsc") != want:
    cfg.setdefault("runtimes", {})["runsc"] = want
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print("[setup] registered runsc in", path)
PY
runsc_registered() { docker info --format '{{json .Runtimes}}' | grep -q '"runsc":{"path":"'"$RUNSC"'","runtimeArgs":\["--platform=ptrace","--network=none"\]'; }
if ! runsc_registered; then
  log "reloading dockerd's configuration (SIGHUP) for the runsc runtime"
  kill -HUP "$(cat /var/run/docker.pid)"
  for _ in $(seq 1 20); do runsc_registered && break; sleep 0.5; done
  runsc_registered || { echo "dockerd does not list the runsc runtime (see /etc/docker/daemon.json)" >&2; exit 1; }
fi
# podman: containers.conf maps a runtime name to paths only (no flags), so the same flags go into
# a small wrapper that podman runs as "runsc".
mkdir -p /usr/local/libexec/mcpproxy /etc/containers/containers.conf.d
printf '#!/bin/sh\n# gVisor for podman, with the flags of docker'"'"'s registration (mcpproxy scripts/setup.sh).\nexec %s --platform=ptrace --network=none "$@"\n' "$RUNSC" \
  >/usr/local/libexec/mcpproxy/runsc.new
chmod 755 /usr/local/libexec/mcpproxy/runsc.new
mv /usr/local/libexec/mcpproxy/runsc.new /usr/local/libexec/mcpproxy/runsc
printf '# mcpproxy tests: "podman run --runtime runsc" runs gVisor with the flags of docker'"'"'s registration.\n[engine.runtimes]\nrunsc = ["/usr/local/libexec/mcpproxy/runsc"]\n' \
  >/etc/containers/containers.conf.d/50-mcpproxy-runsc.conf

# Python venvs with the real MCP client and servers from PyPI: `.venv` with the newest SDK, and
# `.venv-mcp1` with the 1.x SDK pinned (the protocol e2e tests run a second time with it: clients
# in the field still speak it). tests/requirements.txt is installed again whenever it changed.
make_venv() {
  local dir=$1 pin=${2:-}
  if [ ! -x "$dir/bin/python" ]; then
    log "creating $dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip >/dev/null
  fi
  if [ -n "$pin" ]; then sed "s/^mcp>=.*/mcp==$pin/" tests/requirements.txt; else cat tests/requirements.txt; fi >"$dir/requirements.wanted"
  if ! cmp -s "$dir/requirements.wanted" "$dir/requirements.installed"; then
    log "installing tests/requirements.txt${pin:+ (mcp==$pin)} into $dir"
    "$dir/bin/pip" install -q -r "$dir/requirements.wanted"
    mv "$dir/requirements.wanted" "$dir/requirements.installed"
  fi
}
make_venv "$ROOT/.venv"
make_venv "$ROOT/.venv-mcp1" 1.30.0
# Local test images (no registry here): the static fixture server in a FROM-scratch image, for
# docker, then copied to podman (docker save | podman load).
scripts/build-test-images.sh
scripts/podman-test-images.sh
# A venv on the distribution's Python for the sandbox tests: a server dropped to an unprivileged
# uid can reach neither /root (pyenv-style interpreters) nor a checkout under it, so this venv
# lives under /opt, world-readable.
SBX_VENV="${MCPPROXY_SANDBOX_VENV:-/opt/mcpproxy-test/venv-sandbox}"
if [ ! -x "$SBX_VENV/bin/python" ] || ! "$SBX_VENV/bin/python" -c 'import mcp_server_time' >/dev/null 2>&1; then
  log "creating $SBX_VENV (system python, for sandbox tests)"
  mkdir -p "$(dirname "$SBX_VENV")"
  chmod 755 "$(dirname "$SBX_VENV")"
  /usr/bin/python3 -m venv "$SBX_VENV"
  "$SBX_VENV/bin/pip" install -q mcp-server-time >/dev/null
  chmod -R a+rX "$SBX_VENV"
fi
log "ready"
