#!/usr/bin/env bash
# Runs every test on a fresh machine of the project's kind: installs what the tests need
# (apt packages, the Docker engine, the Python venv with the real MCP peers, local test images),
# builds, then runs the Swift unit/integration tests and the end-to-end tests of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# generate-manual (swift-argument-parser) for the man page test.
swift build --product generate-manual
swift test
# Test artifacts (the web console's screenshots) go here unless the caller names a place; .build/
# is never committed.
export MCPPROXY_ARTIFACTS="${MCPPROXY_ARTIFACTS:-$PWD/.build/test-artifacts}"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e
# The protocol tests again with the official SDK 1.30.0 as client and as upstream servers.
MCPPROXY_VENV_PYTHON="$PWD/.venv-mcp1/bin/python" .venv-mcp1/bin/python -m pytest -q -p no:cacheprovider \
  tests/e2e/test_protocol_flow.py tests/e2e/test_federation.py tests/e2e/test_core_mcp_client.py \
  tests/e2e/test_core_http_upstreams.py tests/e2e/test_core_stdio_mode.py
