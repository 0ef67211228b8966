#!/usr/bin/env bash
# Memory per idle connection: opens N WebSocket connections to each loopback
# echo server in turn (ours on tokio and blocking, tokio-tungstenite,
# fastwebsockets, Node ws), one 5-byte echo on each, and reports the server's
# RSS growth divided by N while they sit idle.
#
#   bash benches/idle_memory.sh               # N = 5000 (2000 for the blocking server)
#   CONNS=1000 bash benches/idle_memory.sh
#   SERVERS="wsproto-tokio wsproto-tokio-deflate-15 wsproto-tokio-deflate-12 wsproto-tokio-deflate-9 wsproto-tokio-deflate-shared" \
#     bash benches/idle_memory.sh          # compressed connections, per mode
#
# The deflate rows (wsproto-tokio-deflate-15, -12, -9, -shared) run our tokio
# server with `--deflate-memory MODE`; their clients offer permessage-deflate
# and the one echo on each connection is compressed both ways.
#
# Overrides: CONNS, BLOCKING_CONNS (thread per connection), SERVERS,
# CARGO_TARGET_DIR. Node ws needs interop/node/node_modules (bash
# interop/install.sh); without it that row says so.
# Output: a markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
CONNS="${CONNS:-5000}"
BLOCKING_CONNS="${BLOCKING_CONNS:-2000}"
SERVERS="${SERVERS:-wsproto-tokio wsproto-blocking fastwebsockets tungstenite node-ws}"
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/wsproto-idle.XXXXXX")"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p wsproto-adapters --example echo_server
cargo build --release -q -p wsproto-benches --bin idle_clients --bin peer_echo

SPID="" CPID=""
cleanup() {
  for pid in $CPID $SPID; do kill "$pid" 2>/dev/null || true; done
  for pid in $CPID $SPID; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

server_cmd() { # $1 = server, $2 = port
  case "$1" in
    wsproto-tokio) echo "$BIN/examples/echo_server 127.0.0.1:$2 --tokio" ;;
    wsproto-tokio-deflate-*)
      echo "$BIN/examples/echo_server 127.0.0.1:$2 --tokio --deflate-memory ${1#wsproto-tokio-deflate-}" ;;
    wsproto-blocking) echo "$BIN/examples/echo_server 127.0.0.1:$2" ;;
    tungstenite) echo "$BIN/peer_echo tungstenite 127.0.0.1:$2" ;;
    fastwebsockets) echo "$BIN/peer_echo fastwebsockets 127.0.0.1:$2" ;;
    node-ws) echo "node interop/node/ws_echo_server.js $2 127.0.0.1" ;;
    *) echo "unknown server $1" >&2; exit 2 ;;
  esac
}

echo "| server | connections | RSS before (KiB) | RSS with them idle (KiB) | KiB per idle connection |"
echo "|---|---:|---:|---:|---:|"
for server in $SERVERS; do
  n="$CONNS"
  [[ "$server" == wsproto-blocking ]] && n="$BLOCKING_CONNS"
  if [[ "$server" == node-ws && ! -d interop/node/node_modules/ws ]]; then
    echo "| $server | - | - | - | not installed (bash interop/install.sh) |"
    continue
  fi
  port="$(free_port)"
  # shellcheck disable=SC2046
  $(server_cmd "$server" "$port") >"$WORK/server.log" 2>&1 &
  SPID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5 # let the probe connection's resources go
  before="$(rss_kib "$SPID")"
  rm -f "$WORK/hold" && mkfifo "$WORK/hold"
  client_flags=()
  [[ "$server" == wsproto-tokio-deflate-* ]] && client_flags=(--deflate)
  "$BIN/idle_clients" "127.0.0.1:$port" --conns "$n" "${client_flags[@]}" <"$WORK/hold" >"$WORK/client.out" 2>&1 &
  CPID=$!
  exec 7>"$WORK/hold" # the clients hold their connections until this closes
  ready=""
  for _ in $(seq 1200); do
    if grep -q '^ready ' "$WORK/client.out"; then ready=1; break; fi
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n "$ready" ]]; then
    sleep 1 # idle: whatever the server does after an echo has been done
    after="$(rss_kib "$SPID")"
    awk -v s="$server" -v n="$n" -v b="$before" -v a="$after" \
      'BEGIN { printf "| %s | %d | %d | %d | %.1f |\n", s, n, b, a, (a - b) / n }'
  else
    echo "| $server | $n | $before | - | FAILED: $(tail -1 "$WORK/client.out") |"
  fi
  exec 7>&-
  wait "$CPID" 2>/dev/null || true
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  CPID="" SPID=""
done
