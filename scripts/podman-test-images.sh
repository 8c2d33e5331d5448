#!/usr/bin/env bash
# Copies the locally built test images (scripts/build-test-images.sh) into podman's own image
# store with docker save | podman load: no registry is reachable here. Idempotent: an image is
# copied only when podman's copy carries another fixture hash than docker's.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[podman-images] $*"; }

command -v podman >/dev/null 2>&1 || { echo "podman-test-images: podman is not installed (run scripts/setup.sh)" >&2; exit 1; }
scripts/build-test-images.sh >/dev/null
for IMAGE in mcpproxy-fixture:test; do
  want=$(docker image inspect --format '{{ index .Config.Labels "mcpproxy.fixture.sha256" }}' "$IMAGE")
  have=$(podman image inspect --format '{{ index .Config.Labels "mcpproxy.fixture.sha256" }}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    log "$IMAGE is up to date in podman"
    continue
  fi
  log "copying $IMAGE to podman (docker save | podman load)"
  docker save "$IMAGE" | podman load -q >/dev/null
done
