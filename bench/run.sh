#!/usr/bin/env bash
# Gateway core benchmark: per-call latency (p50/p99) and calls/s at 1, 8 and 32 concurrent
# sessions through `mcpproxy serve` against the raw stdio floor (the same fixture server driven
# directly over its pipes), plus proxy RSS after load, proxy CPU per call and time to ready, and,
# in the same run, two peers bridging the same fixture (same load generator, same durations):
# sparfenyuk mcp-proxy (PyPI mcp-proxy) and IBM ContextForge's stdio bridge (mcpgateway.translate).
#
# Usage: bench/run.sh [--no-build] [--quick] [--update-docs] [--perf] [--no-peers]
#   --no-build     use the binaries already in $BIN_DIR (default .build/release)
#   --no-peers     skip the peers (no Python venv needed)
#   --quick        short runs (1 s per point) for a smoke test of the harness
#   --update-docs  splice the result table into docs/benchmarks.md ("Gateway core" section)
#   --perf         also record a perf profile of the proxy at 32 sessions (top symbols)
# Env: BIN_DIR (binaries), DURATION (s per load point, default 5), CALLS (stdio floor calls, 20000),
#      PEER_VENV (default bench/.venv-peers: created and filled from PyPI with the pinned peers
#      when missing or at other versions; bench-only, nothing else uses it)
#
# Idempotent, loopback only (apart from the one-time pip install of the peers), bounded: every wait
# has a timeout, the proxy and the peers are always stopped.
# Results: bench/results/gateway-core.md (+ raw key=value lines in bench/results/raw.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=1 QUICK=0 UPDATE_DOCS=0 PERF=0 PEERS=1
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --no-peers) PEERS=0 ;;
    --quick) QUICK=1 ;;
    --update-docs) UPDATE_DOCS=1 ;;
    --perf) PERF=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
BIN_DIR=${BIN_DIR:-$ROOT/.build/release}
DURATION=${DURATION:-5}
CALLS=${CALLS:-20000}
if [ "$QUICK" = 1 ]; then DURATION=1; CALLS=3000; fi
OUT=$ROOT/bench/results
mkdir -p "$OUT/bin"
RAW=$OUT/raw.txt
: >"$RAW"
log() { echo "[bench] $*" >&2; }

if [ "$BUILD" = 1 ]; then
  log "swift build -c release (first time: ~10+ min)"
  timeout 3600 swift build -c release --product mcpproxy >&2
  timeout 1800 swift build -c release --product mcpproxy-fixture >&2
fi
for b in mcpproxy mcpproxy-fixture; do
  [ -x "$BIN_DIR/$b" ] || { echo "missing $BIN_DIR/$b (build it or set BIN_DIR)" >&2; exit 1; }
done
cc -O2 -Wall -o "$OUT/bin/stdio_floor" bench/stdio_floor.c
cc -O2 -Wall -o "$OUT/bin/loadgen" bench/loadgen.c

# ---- the peers' venv (bench only; pinned versions) ----------------------------------------------
MCP_PROXY_VERSION=0.13.0
CONTEXTFORGE_VERSION=1.0.7
PEER_VENV=${PEER_VENV:-$ROOT/bench/.venv-peers}
if [ "$PEERS" = 1 ]; then
  peers_installed() {
    [ -x "$PEER_VENV/bin/python" ] && "$PEER_VENV/bin/python" - "$MCP_PROXY_VERSION" "$CONTEXTFORGE_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("mcp-proxy"), version("mcp-contextforge-gateway")) == tuple(sys.argv[1:3]) else 1)
PY
  }
  if ! peers_installed; then
    log "installing the peers into $PEER_VENV (mcp-proxy==$MCP_PROXY_VERSION, mcp-contextforge-gateway==$CONTEXTFORGE_VERSION)"
    [ -x "$PEER_VENV/bin/python" ] || python3 -m venv "$PEER_VENV"
    timeout 1200 "$PEER_VENV/bin/pip" install -q --disable-pip-version-check \
      "mcp-proxy==$MCP_PROXY_VERSION" "mcp-contextforge-gateway==$CONTEXTFORGE_VERSION" >&2 \
      || { echo "pip install of the peers failed (run with --no-peers to skip them)" >&2; exit 1; }
    peers_installed || { echo "peers not importable from $PEER_VENV" >&2; exit 1; }
  fi
fi

WORK=$(mktemp -d /tmp/mcpproxy-bench.XXXXXX)
PROXY_PID=""
OPEN_PID=""
PEER_PID=""
PEER_KIDS=""
descendants() { local k; for k in $(pgrep -P "$1" 2>/dev/null); do echo "$k"; descendants "$k"; done; }
stop_peer() {  # TERM the peer, KILL it after 10 s, then KILL whatever of its process tree is left
  [ -n "$PEER_PID" ] || return 0
  PEER_KIDS="$PEER_KIDS $(descendants "$PEER_PID")"
  if kill -0 "$PEER_PID" 2>/dev/null; then
    kill -TERM "$PEER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PEER_PID" 2>/dev/null || true
  fi
  wait "$PEER_PID" 2>/dev/null || true
  for k in $PEER_KIDS; do kill -KILL "$k" 2>/dev/null || true; done
  PEER_PID="" PEER_KIDS=""
}
cleanup() {
  stop_peer
  [ -n "$OPEN_PID" ] && kill -KILL "$OPEN_PID" 2>/dev/null || true
  if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"; }   # kv LINE KEY
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }     # utime+stime of a pid, in clock ticks
HZ=$(getconf CLK_TCK)

# ---- machine facts ----------------------------------------------------------------------------
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
FACTS="$(nproc) CPUs (${CPU_MODEL:-unknown}), $(free -g | awk '/Mem:/{print $2}') GiB RAM, Linux $(uname -r), $(swift --version 2>/dev/null | head -1 | sed 's/ (.*//'), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
log "$FACTS"

# ---- raw stdio floor ----------------------------------------------------------------------------
declare -A FLOOR
for c in 1 8 32; do
  line=$(timeout 300 "$OUT/bin/stdio_floor" -n "$CALLS" -w $((CALLS / 10)) -c "$c" -- "$BIN_DIR/mcpproxy-fixture")
  echo "floor c=$c $line" >>"$RAW"
  FLOOR[$c]=$line
  log "stdio floor c=$c: $line"
done

# ---- the proxy ----------------------------------------------------------------------------------
PORT=$(free_port)
# JWT material for the auth-cost points: an ES256 key, its JWKS file and one token for /mcp
# (the .venv's PyJWT; without it the JWT row is skipped).
JWT=""
PY=$ROOT/.venv/bin/python
if [ -x "$PY" ] && "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  JWT=$("$PY" - "$WORK" "$PORT" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
work, port = sys.argv[1], sys.argv[2]
key = ec.generate_private_key(ec.SECP256R1())
jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
jwk.update({"kid": "bench", "alg": "ES256", "use": "sig"})
open(f"{work}/jwks.json", "w").write(json.dumps({"keys": [jwk]}))
now = int(time.time())
print(jwt.encode({"iss": "https://issuer.bench", "sub": "bench", "aud": f"http://127.0.0.1:{port}/mcp", "iat": now,
                  "exp": now + 3600, "scope": "mcp:destructive"}, key, algorithm="ES256", headers={"kid": "bench"}))
PY
)
fi
OAUTH_BLOCK=""
[ -n "$JWT" ] && OAUTH_BLOCK="\"oauth\": {\"issuer\": \"https://issuer.bench\", \"jwks_file\": \"$WORK/jwks.json\"},"
cat >"$WORK/config.json" <<EOF
{
  "listen": "127.0.0.1:$PORT",
  $OAUTH_BLOCK
  "mcpServers": [
    {"name": "fixture", "command": "$BIN_DIR/mcpproxy-fixture", "args": ["--name", "fixture"],
     "protocol": "stdio", "quarantined": false, "isolation": {"mode": "none"}}
  ]
}
EOF
export MCPPROXY_API_KEY=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# Time to ready: spawn → /healthz 200, and spawn → first tools/call (call_tool fixture:echo)
# answered with a result. Five cold starts, the median is reported.
READY=$(python3 - "$BIN_DIR/mcpproxy" "$WORK" "$PORT" <<'PY'
import http.client, json, os, statistics, subprocess, sys, time
binary, work, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(conn, body, sid=None):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "Authorization": "Bearer " + os.environ["MCPPROXY_API_KEY"]}
    if sid: h["Mcp-Session-Id"] = sid
    conn.request("POST", "/mcp", json.dumps(body), h)
    r = conn.getresponse(); data = r.read()
    return r.status, r.getheader("Mcp-Session-Id"), data
health, first = [], []
for run in range(5):
    data = os.path.join(work, f"ready-data-{run}")
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--config", os.path.join(work, "config.json"), "--listen",
                          f"127.0.0.1:{port}", "--data-dir", data, "--log-level", "warn"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 60
        t_health = t_first = None
        while time.monotonic() < deadline and t_health is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz"); r = c.getresponse(); r.read()
                if r.status == 200: t_health = time.monotonic() - t0
            except OSError:
                time.sleep(0.002)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        st, sid, _ = post(c, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        post(c, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        while time.monotonic() < deadline and t_first is None:
            st, _, body = post(c, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "call_tool", "arguments": {"name": "fixture:echo", "args": {"text": "hi"}}}}, sid)
            if st == 200 and b'"result"' in body and b'"isError":true' not in body:
                t_first = time.monotonic() - t0
            else:
                time.sleep(0.002)
        if t_health is None or t_first is None:
            sys.exit(f"proxy not ready within 60 s (health={t_health}, first={t_first})")
        health.append(t_health * 1000); first.append(t_first * 1000)
    finally:
        p.terminate()
        try: p.wait(20)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
print(f"health_ms={statistics.median(health):.0f} first_call_ms={statistics.median(first):.0f} "
      f"health_runs={','.join(f'{x:.0f}' for x in health)} first_runs={','.join(f'{x:.0f}' for x in first)}")
PY
)
echo "ready $READY" >>"$RAW"
log "time to ready: $READY"

"$BIN_DIR/mcpproxy" serve --config "$WORK/config.json" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --log-level warn </dev/null >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.log" >&2; exit 1; }
  sleep 0.1
done
for _ in $(seq 1 300); do
  STATE=$(curl -sf -H "X-API-Key: $MCPPROXY_API_KEY" "http://127.0.0.1:$PORT/api/v1/servers" | jq -r '.servers[0].state' 2>/dev/null || true)
  [ "$STATE" = ready ] && break
  sleep 0.1
done
[ "$STATE" = ready ] || { echo "fixture not ready through the proxy: $STATE" >&2; cat "$WORK/proxy.log" >&2; exit 1; }
UPSTREAM_PID=$(curl -sf -H "X-API-Key: $MCPPROXY_API_KEY" "http://127.0.0.1:$PORT/api/v1/servers" | jq -r '.servers[0].pid')
RSS_IDLE=$(awk '/VmRSS/{print $2}' "/proc/$PROXY_PID/status")

declare -A PROXY PROXY_CPU UP_CPU CS
for c in 1 8 32; do
  t0=$(cpu_ticks "$PROXY_PID"); u0=$(cpu_ticks "$UPSTREAM_PID" 2>/dev/null || echo 0)
  "$OUT/bin/loadgen" -p "$PORT" -c "$c" -d "$DURATION" -w 1 -a "$MCPPROXY_API_KEY" >"$WORK/lg.txt" 2>"$WORK/lg.err" &
  LG=$!
  # Context switches of the proxy during the measured span (after the 1 s warm-up).
  CS[$c]="–"
  if command -v perf >/dev/null; then
    sleep 1
    if timeout $((DURATION + 30)) perf stat -x, -e context-switches -p "$PROXY_PID" -- sleep "$((DURATION - 1 > 0 ? DURATION - 1 : 1))" 2>"$WORK/cs.txt" >/dev/null; then
      CS[$c]=$(awk -F, '/context-switches/{print $1}' "$WORK/cs.txt")
    fi
  fi
  wait $LG || { echo "loadgen failed at c=$c: $(cat "$WORK/lg.txt" "$WORK/lg.err")" >&2; cat "$WORK/proxy.log" >&2; exit 1; }
  line=$(cat "$WORK/lg.txt")
  t1=$(cpu_ticks "$PROXY_PID"); u1=$(cpu_ticks "$UPSTREAM_PID" 2>/dev/null || echo 0)
  calls=$(kv "$line" calls)
  if [ "${CS[$c]}" != "–" ]; then
    CS[$c]=$(awk -v cs="${CS[$c]}" -v r="$(kv "$line" rps)" -v d="$((DURATION - 1 > 0 ? DURATION - 1 : 1))" 'BEGIN{printf "%.1f", (r * d) ? cs / (r * d) : 0}')
  fi
  # Ticks cover warmup + measurement; divide by all calls made in that span (approximated by
  # scaling the measured calls by (warmup + duration) / duration).
  total=$(awk -v c="$calls" -v d="$DURATION" 'BEGIN{print c * (d + 1) / d}')
  PROXY_CPU[$c]=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.0f", n ? t / hz / n * 1e6 : 0}')
  UP_CPU[$c]=$(awk -v t=$((u1 - u0)) -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.0f", n ? t / hz / n * 1e6 : 0}')
  PROXY[$c]=$line
  echo "proxy c=$c $line proxy_cpu_us_per_call=${PROXY_CPU[$c]} upstream_cpu_us_per_call=${UP_CPU[$c]} proxy_ctx_switches_per_call=${CS[$c]}" >>"$RAW"
  log "through proxy c=$c: $line proxy_cpu_us/call=${PROXY_CPU[$c]}"
done
RSS_LOAD=$(awk '/VmRSS/{print $2}' "/proc/$PROXY_PID/status")
HWM=$(awk '/VmHWM/{print $2}' "/proc/$PROXY_PID/status")
echo "rss idle_kb=$RSS_IDLE after_load_kb=$RSS_LOAD hwm_kb=$HWM" >>"$RAW"

# ---- the peers: same fixture, same load generator, same durations, this run -------------------
# Each peer bridges its own `mcpproxy-fixture --name fixture` (stdio) to HTTP on a loopback port and
# the load generator calls the fixture's own `echo` tool through it (the peers have no call_tool).
# CPU per call: utime+stime of the peer's process tree without the fixture (the gateway's own
# cost, as for mcpproxy above), and of the fixture apart.
PEER_KEYS=()
declare -A PEER_LABEL PEER_LINE PEER_CPU PEER_UP_CPU PEER_READY PEER_READY_RUNS PEER_FAIL PEER_CRASHES
tree_ticks() {  # tree_ticks PID → "GATEWAY_TICKS FIXTURE_TICKS" over the pid and its descendants
  local g=0 u=0 p t
  for p in "$1" $(descendants "$1"); do
    t=$(cpu_ticks "$p" 2>/dev/null) || continue
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in
      mcpproxy-fixtur*) u=$((u + t)) ;;
      *) g=$((g + t)) ;;
    esac
  done
  echo "$g $u"
}
ECHO_BODY='{"jsonrpc":"2.0","id":{ID},"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
INIT_BODY='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
PEER_TIMEOUT=${PEER_TIMEOUT:-90}
# peer_point KEY C "LOADGEN FLAGS" CMD... : start a fresh peer, wait for it (bounded: until an
# initialize POST on /mcp answers 200), load it at C sessions, stop it. Sets P_LINE, P_G, P_U (CPU
# ticks of the peer's tree without the fixture, and of the fixture), P_READY (ms) or P_ERR; on a
# failure the peer's log is kept as bench/results/peer-KEY-C.log.
peer_point() {
  local key=$1 c=$2 flags=$3 port t0 code g0 u0 g1 u1
  shift 3
  P_LINE="" P_ERR="" P_READY=""
  port=$(free_port)
  mkdir -p "$WORK/peer-$key-$c"
  t0=$(date +%s%N)
  ( cd "$WORK/peer-$key-$c" && exec "${@//@PORT@/$port}" ) </dev/null >"$WORK/peer-$key-$c.log" 2>&1 &
  PEER_PID=$!
  code=000
  while [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$PEER_TIMEOUT" ]; do
    kill -0 "$PEER_PID" 2>/dev/null || break
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
      -H 'Accept: application/json, text/event-stream' -d "$INIT_BODY" "http://127.0.0.1:$port/mcp" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  if [ "$code" != 200 ]; then
    if kill -0 "$PEER_PID" 2>/dev/null; then P_ERR="not ready within ${PEER_TIMEOUT} s (last HTTP status $code)"
    else P_ERR="exited before it was ready"; fi
  else
    P_READY=$(( ($(date +%s%N) - t0) / 1000000 ))
    PEER_KIDS=$(descendants "$PEER_PID")
    read -r g0 u0 < <(tree_ticks "$PEER_PID")
    # shellcheck disable=SC2086  # flags is a word list
    if "$OUT/bin/loadgen" -p "$port" -c "$c" -d "$DURATION" -w 1 -b "$ECHO_BODY" $flags >"$WORK/lg.txt" 2>"$WORK/lg.err"; then
      read -r g1 u1 < <(tree_ticks "$PEER_PID")
      P_LINE=$(cat "$WORK/lg.txt") P_G=$((g1 - g0)) P_U=$((u1 - u0))
    else
      P_ERR="loadgen failed at $c sessions: $(cat "$WORK/lg.txt" "$WORK/lg.err" | tr '\n' ' ')"
    fi
  fi
  stop_peer
  if [ -n "$P_ERR" ]; then
    cp "$WORK/peer-$key-$c.log" "$OUT/peer-$key-$c.log"
    log "peer $key c=$c: $P_ERR (peer log: $OUT/peer-$key-$c.log)"
    return 1
  fi
}
# measure_peer KEY LABEL "LOADGEN FLAGS" CMD... : 1/8/32 sessions, each on a fresh peer process
# (peer_point). A fresh instance per point, and one retry on a fresh instance when a point fails,
# because sparfenyuk mcp-proxy 0.13.0 (with the mcp SDK pip resolves) can crash under this load:
# its stdio client dies (anyio.BrokenResourceError in stdout_reader, then "Task group is not
# initialized" on every request) and the load generator sees its connections reset. Both peers
# are treated alike; the failures are counted and reported. Time to ready is the median of the
# starts. A point that fails twice is reported as not measured and the run goes on.
measure_peer() {
  local key=$1 label=$2 flags=$3 c calls total readies="" tries
  shift 3
  PEER_KEYS+=("$key"); PEER_LABEL[$key]=$label; PEER_CRASHES[$key]=0
  for c in 1 8 32; do
    for tries in 1 2; do
      if peer_point "$key" "$c" "$flags" "$@"; then break; fi
      PEER_CRASHES[$key]=$((PEER_CRASHES[$key] + 1))
      echo "peer $key c=$c try=$tries failed=$(tr ' ' '_' <<<"$P_ERR")" >>"$RAW"
    done
    if [ -z "$P_LINE" ]; then PEER_FAIL[$key]="$P_ERR (twice)"; break; fi
    readies="$readies $P_READY"
    calls=$(kv "$P_LINE" calls)
    total=$(awk -v c="$calls" -v d="$DURATION" 'BEGIN{print c * (d + 1) / d}')
    PEER_CPU[$key:$c]=$(awk -v t="$P_G" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.0f", n ? t / hz / n * 1e6 : 0}')
    PEER_UP_CPU[$key:$c]=$(awk -v t="$P_U" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.0f", n ? t / hz / n * 1e6 : 0}')
    PEER_LINE[$key:$c]=$P_LINE
    echo "peer $key c=$c $P_LINE peer_cpu_us_per_call=${PEER_CPU[$key:$c]} upstream_cpu_us_per_call=${PEER_UP_CPU[$key:$c]} ready_ms=$P_READY" >>"$RAW"
    log "peer $key c=$c (fresh instance, ready in $P_READY ms): $P_LINE peer_cpu_us/call=${PEER_CPU[$key:$c]}"
  done
  PEER_READY[$key]=$(tr ' ' '\n' <<<"$readies" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END{if (NR) print a[int((NR + 1) / 2)]}')
  PEER_READY_RUNS[$key]=$(sed 's/^ //; s/ /,/g' <<<"$readies")
}
rm -f "$OUT"/peer-*.log
if [ "$PEERS" = 1 ]; then
  FIXTURE_Q=$(printf '%q --name fixture' "$BIN_DIR/mcpproxy-fixture")
  # sparfenyuk mcp-proxy: stdio server exposed over HTTP (streamable HTTP on /mcp, sessions).
  measure_peer sparfenyuk "sparfenyuk mcp-proxy $MCP_PROXY_VERSION (HTTP, echo)" "" \
    "$PEER_VENV/bin/mcp-proxy" --host 127.0.0.1 --port @PORT@ --log-level WARNING \
    -- "$BIN_DIR/mcpproxy-fixture" --name fixture
  # ContextForge's bridge: streamable HTTP, stateless, JSON responses (so no session: loadgen -n).
  # It refuses to start without these secrets set; fresh random ones for this run only.
  # (base64 of 48 random bytes: its checks reject secrets that are short or of low character entropy)
  rnd() { head -c 48 /dev/urandom | base64 -w0 | tr -d '/+='; }
  measure_peer contextforge "ContextForge translate $CONTEXTFORGE_VERSION (HTTP stateless JSON, echo)" "-n" \
    env JWT_SECRET_KEY="$(rnd)" AUTH_ENCRYPTION_SECRET="$(rnd)" PLATFORM_ADMIN_PASSWORD="Bench-$(rnd)-Aa1!" \
    BASIC_AUTH_PASSWORD="Bench-$(rnd)-Bb2!" \
    "$PEER_VENV/bin/python" -m mcpgateway.translate --stdio "$FIXTURE_Q" --expose-streamable-http \
    --host 127.0.0.1 --port @PORT@ --stateless --jsonResponse --logLevel warning
fi

# ---- authentication cost at 32 sessions, one run -----------------------------------------------
# The same proxy with the admin key, an agent token and a JWT (cached after its first check), then
# a second proxy with "mcp_auth": "none". The difference in proxy CPU per call is the cost of the
# credential check.
auth_point() {  # auth_point PID PORT LABEL [TOKEN]
  local pid=$1 port=$2 label=$3 tok=${4:-} t0 t1 line calls total
  t0=$(cpu_ticks "$pid")
  if [ -n "$tok" ]; then
    "$OUT/bin/loadgen" -p "$port" -c 32 -d "$DURATION" -w 1 -a "$tok" >"$WORK/lg.txt" 2>"$WORK/lg.err" || { cat "$WORK/lg.err" >&2; return 1; }
  else
    "$OUT/bin/loadgen" -p "$port" -c 32 -d "$DURATION" -w 1 >"$WORK/lg.txt" 2>"$WORK/lg.err" || { cat "$WORK/lg.err" >&2; return 1; }
  fi
  t1=$(cpu_ticks "$pid"); line=$(cat "$WORK/lg.txt"); calls=$(kv "$line" calls)
  total=$(awk -v c="$calls" -v d="$DURATION" 'BEGIN{print c * (d + 1) / d}')
  echo "auth $label $line proxy_cpu_us_per_call=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.1f", n ? t / hz / n * 1e6 : 0}')" >>"$RAW"
  log "auth $label: $line"
}
AGENT=$(curl -sf -H "X-API-Key: $MCPPROXY_API_KEY" -H 'Content-Type: application/json' \
  -d '{"name":"bench","intent":"destructive"}' "http://127.0.0.1:$PORT/api/v1/tokens" | jq -r .token)
AUTH_ROWS=()
for round in 1 2; do
  auth_point "$PROXY_PID" "$PORT" "admin_key" "$MCPPROXY_API_KEY"
  auth_point "$PROXY_PID" "$PORT" "agent_token" "$AGENT"
  [ -n "$JWT" ] && auth_point "$PROXY_PID" "$PORT" "jwt_es256" "$JWT"
done
OPEN_PORT=$(free_port)
sed -e "s/127.0.0.1:$PORT/127.0.0.1:$OPEN_PORT/" -e 's/^{/{ "mcp_auth": "none",/' "$WORK/config.json" >"$WORK/open.json"
"$BIN_DIR/mcpproxy" serve --config "$WORK/open.json" --listen "127.0.0.1:$OPEN_PORT" --data-dir "$WORK/data-open" \
  --log-level warn </dev/null >"$WORK/open.log" 2>&1 &
OPEN_PID=$!
for _ in $(seq 1 300); do
  ST=$(curl -sf -H "X-API-Key: $MCPPROXY_API_KEY" "http://127.0.0.1:$OPEN_PORT/api/v1/servers" | jq -r '.servers[0].state' 2>/dev/null || true)
  [ "$ST" = ready ] && break; sleep 0.1
done
auth_point "$OPEN_PID" "$OPEN_PORT" "none"
auth_point "$OPEN_PID" "$OPEN_PORT" "none"
kill -TERM "$OPEN_PID"; wait "$OPEN_PID" 2>/dev/null || true

PERF_TXT=""
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
  log "perf record of the proxy at 32 sessions"
  "$OUT/bin/loadgen" -p "$PORT" -c 32 -d 6 -w 0 -a "$MCPPROXY_API_KEY" >/dev/null &
  LG=$!
  sleep 1
  timeout 60 perf record -F 999 -g -p "$PROXY_PID" -o "$WORK/perf.data" -- sleep 4 >/dev/null 2>&1 || true
  wait $LG || true
  perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -25 >"$OUT/perf-top.txt" || true
  perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -12 >"$OUT/perf-dso.txt" || true
  PERF_TXT=$OUT/perf-top.txt
fi

# ---- report -------------------------------------------------------------------------------------
floor_p50_1=$(kv "${FLOOR[1]}" p50_us); proxy_p50_1=$(kv "${PROXY[1]}" p50_us)
added=$(awk -v a="$proxy_p50_1" -v b="$floor_p50_1" 'BEGIN{printf "%.0f", a - b}')
rps32=$(kv "${PROXY[32]}" rps)
verdict_lat=$(awk -v x="$added" 'BEGIN{print (x <= 150) ? "met" : "not met"}')
verdict_rps=$(awk -v x="$rps32" 'BEGIN{print (x >= 5000) ? "met" : "not met"}')
floor_share=$(awk -v a="$rps32" -v b="$(kv "${FLOOR[32]}" rps)" 'BEGIN{printf "%.0f", b ? 100 * a / b : 0}')
verdict_share=$(awk -v x="$floor_share" 'BEGIN{print (x >= 80) ? "met" : "not met"}')
# Ratio targets against the peers (issue 13): calls/s at 32 sessions, p50 at 1 session.
declare -A PEER_TARGET=([sparfenyuk]=20 [contextforge]=4)
{
  echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/run.sh\`, binaries: $(basename "$BIN_DIR") build."
  echo
  echo "Machine: $FACTS."
  echo
  echo "| path | concurrency | calls/s | p50 µs | p90 µs | p99 µs | max µs | driver CPU | proxy CPU µs/call |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for c in 1 8 32; do
    l=${FLOOR[$c]}
    echo "| stdio floor (direct to fixture) | $c in flight | $(kv "$l" rps) | $(kv "$l" p50_us) | $(kv "$l" p90_us) | $(kv "$l" p99_us) | $(kv "$l" max_us) | $(kv "$l" driver_cpu_pct)% | – |"
  done
  for c in 1 8 32; do
    l=${PROXY[$c]}
    echo "| through mcpproxy (HTTP, call_tool) | $c session$([ "$c" = 1 ] || echo s) | $(kv "$l" rps) | $(kv "$l" p50_us) | $(kv "$l" p90_us) | $(kv "$l" p99_us) | $(kv "$l" max_us) | $(kv "$l" loadgen_cpu_pct)% | ${PROXY_CPU[$c]} |"
  done
  for key in "${PEER_KEYS[@]}"; do
    for c in 1 8 32; do
      l=${PEER_LINE[$key:$c]:-}
      if [ -n "$l" ]; then
        echo "| through ${PEER_LABEL[$key]} | $c session$([ "$c" = 1 ] || echo s) | $(kv "$l" rps) | $(kv "$l" p50_us) | $(kv "$l" p90_us) | $(kv "$l" p99_us) | $(kv "$l" max_us) | $(kv "$l" loadgen_cpu_pct)% | ${PEER_CPU[$key:$c]} |"
      else
        echo "| through ${PEER_LABEL[$key]} | $c session$([ "$c" = 1 ] || echo s) | not measured: ${PEER_FAIL[$key]:-} | | | | | | |"
      fi
    done
  done
  if [ "${#PEER_KEYS[@]}" -gt 0 ]; then
    for key in "${PEER_KEYS[@]}"; do
      echo
      l=${PEER_LINE[$key:32]:-}
      if [ -n "$l" ]; then
        r=$(awk -v a="$rps32" -v b="$(kv "$l" rps)" 'BEGIN{printf "%.1f", b ? a / b : 0}')
        v=$(awk -v r="$r" -v t="${PEER_TARGET[$key]}" 'BEGIN{print (r >= t) ? "met" : "not met"}')
        echo "mcpproxy vs ${PEER_LABEL[$key]%% (*} at 32 sessions: ${r}x calls/s (target ≥ ${PEER_TARGET[$key]}x: $v)."
      else
        echo "mcpproxy vs ${PEER_LABEL[$key]%% (*} at 32 sessions: not measured (${PEER_FAIL[$key]:-})."
      fi
    done
  fi
  echo
  echo "| measure | value |"
  echo "| --- | --- |"
  echo "| p50 added latency at 1 session (proxy p50 − floor p50) | ${added} µs (target ≤ 150 µs: $verdict_lat) |"
  echo "| calls/s at 32 sessions | $rps32 (target ≥ 5,000: $verdict_rps) |"
  echo "| calls/s at 32 sessions / stdio floor at 32 in flight | ${floor_share}% (target ≥ 80%: $verdict_share) |"
  if [ -n "${PEER_LINE[contextforge:1]:-}" ]; then
    r=$(awk -v a="$proxy_p50_1" -v b="$(kv "${PEER_LINE[contextforge:1]}" p50_us)" 'BEGIN{printf "%.2f", b ? a / b : 0}')
    echo "| p50 at 1 session, mcpproxy / ContextForge bridge | ${r}x (target ≤ 0.6x: $(awk -v r="$r" 'BEGIN{print (r <= 0.6) ? "met" : "not met"}')) |"
  fi
  for key in "${PEER_KEYS[@]}"; do
    [ -n "${PEER_LINE[$key:32]:-}" ] || continue
    echo "| ${PEER_LABEL[$key]%% (*}: fixture CPU per call 1/8/32; spawn → initialize answered (median of the starts); failed points, each retried once on a fresh instance | ${PEER_UP_CPU[$key:1]} / ${PEER_UP_CPU[$key:8]} / ${PEER_UP_CPU[$key:32]} µs; ${PEER_READY[$key]} ms (runs: ${PEER_READY_RUNS[$key]}); ${PEER_CRASHES[$key]} |"
  done
  echo "| proxy context switches per call, 1/8/32 sessions (perf stat) | ${CS[1]} / ${CS[8]} / ${CS[32]} |"
  echo "| upstream (fixture) CPU per call through the proxy, 1/8/32 | ${UP_CPU[1]} / ${UP_CPU[8]} / ${UP_CPU[32]} µs |"
  echo "| proxy RSS idle / after load / peak | $((RSS_IDLE / 1024)) / $((RSS_LOAD / 1024)) / $((HWM / 1024)) MiB |"
  echo "| time to ready: spawn → /healthz 200 (median of 5) | $(kv "$READY" health_ms) ms (runs: $(kv "$READY" health_runs)) |"
  echo "| time to ready: spawn → first tools/call answered (median of 5) | $(kv "$READY" first_call_ms) ms (runs: $(kv "$READY" first_runs)) |"
  echo
  echo "Authentication at 32 sessions (same proxy and fixture, one run; \"none\" is a second proxy with \"mcp_auth\": \"none\"; two rounds each):"
  echo
  echo "| credential | calls/s | p50 µs | p99 µs | proxy CPU µs/call |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  grep '^auth ' "$RAW" | while read -r _ label rest; do
    echo "| $label | $(kv "$rest" rps) | $(kv "$rest" p50_us) | $(kv "$rest" p99_us) | $(kv "$rest" proxy_cpu_us_per_call) |"
  done
  if [ -n "$PERF_TXT" ] && [ -s "$PERF_TXT" ]; then
    echo
    echo "perf, proxy at 32 sessions, top symbols (self time):"
    echo
    echo '```'
    cat "$PERF_TXT"
    echo '```'
  fi
} >"$OUT/gateway-core.md"
cat "$OUT/gateway-core.md"

if [ "$UPDATE_DOCS" = 1 ]; then
  DOC=$ROOT/docs/benchmarks.md
  python3 - "$DOC" "$OUT/gateway-core.md" <<'PY'
import re, sys
doc, table = sys.argv[1], open(sys.argv[2]).read().strip()
text = open(doc).read()
begin, end = "<!-- gateway-core:results:begin -->", "<!-- gateway-core:results:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc}: markers {begin} / {end} not found")
pre, rest = text.split(begin, 1)
_, post = rest.split(end, 1)
open(doc, "w").write(pre + begin + "\n" + table + "\n" + end + post)
PY
  log "updated $DOC"
fi
