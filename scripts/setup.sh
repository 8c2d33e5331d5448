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
# Local test images (no registry here): the static fixture server in a FROM-scratch image.
scripts/build-test-images.sh
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
