#!/usr/bin/env bash
# Runs every test on a fresh machine of the project's kind: installs what the tests need
# (apt packages, the Docker engine, the Python venv with the real MCP peers, local test images),
# builds, then runs the Swift unit/integration tests and the end-to-end tests of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test
# Test artifacts (the web console's screenshots) go here unless the caller names a place; .build/
# is never committed.
export MCPPROXY_ARTIFACTS="${MCPPROXY_ARTIFACTS:-$PWD/.build/test-artifacts}"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e
