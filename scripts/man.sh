#!/usr/bin/env bash
# Writes the mcpproxy(1) manual page, generated from the command-line definitions by
# swift-argument-parser's generate-manual tool (built from the package's own dependency).
# Usage: scripts/man.sh [OUTPUT_DIR] [MCPPROXY_BINARY]   (default: .build/man, the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/man}"
binary="${2:-$(swift build --show-bin-path)/mcpproxy}"
swift build --product generate-manual >/dev/null
mkdir -p "$out"
"$(swift build --show-bin-path)/generate-manual" "$binary" --section 1 --output-directory "$out"
echo "$out/mcpproxy.1"
