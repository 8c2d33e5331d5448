#!/usr/bin/env bash
# Builds the local Docker images the docker-isolation tests and benchmarks use. No registry is
# reachable here, so nothing is pulled: the fixture MCP server is compiled as a fully static
# binary and put into a FROM-scratch image.
#
#   mcpproxy-fixture:test   /fixture = Sources/mcpproxy-fixture/main.swift, static
#
# Idempotent and quick: the image carries the SHA-256 of main.swift (and of this script) in a
# label, and is rebuilt only when that differs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "[test-images] $*"; }

IMAGE=mcpproxy-fixture:test
SRC=Sources/mcpproxy-fixture/main.swift
HASH=$(cat "$SRC" "$0" | sha256sum | cut -c1-64)

if ! docker info >/dev/null 2>&1; then
  echo "build-test-images: no Docker engine answers (run scripts/setup.sh, which starts dockerd)" >&2
  exit 1
fi

current=$(docker image inspect --format '{{ index .Config.Labels "mcpproxy.fixture.sha256" }}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$HASH" ]; then
  log "$IMAGE is up to date"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log "compiling a static fixture server (swiftc -static-executable)"
swiftc -static-executable -O "$SRC" -o "$WORK/fixture" 2>"$WORK/swiftc.log" \
  || { cat "$WORK/swiftc.log" >&2; exit 1; }
cat >"$WORK/Dockerfile" <<EOF
FROM scratch
COPY fixture /fixture
LABEL mcpproxy.fixture.sha256="$HASH"
EOF
log "building $IMAGE"
docker build -q -t "$IMAGE" "$WORK" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
log "$IMAGE built"
