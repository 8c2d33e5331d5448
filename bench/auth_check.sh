#!/usr/bin/env bash
# The CPU cost of checking one /mcp request's credential, isolated from the rest of the gateway
# (issue 8 targets: under 5 us per call for an agent token, under 30 us for a JWT with a cached
# key). Runs Authenticator.authenticate(headers) in a loop per kind of credential, on the
# process's own CPU clock (getrusage), release build. Instruction counts would not depend on the
# machine's load, but valgrind 3.19 (Debian 12) cannot run Swift binaries here: it cannot read
# their DWARF 5, and without it crashes in libdispatch's signal thread.
#
# Usage: bench/auth_check.sh [--no-build] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1 N=300000
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    *) N="$a" ;;
  esac
done
[ "$BUILD" = 1 ] && swift build -c release --product mcpproxy-bench-auth
.build/release/mcpproxy-bench-auth --iterations "$N" 2>/dev/null
