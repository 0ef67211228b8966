#!/usr/bin/env bash
# WebSockets over HTTP/1.1 against WebSockets over HTTP/2 (RFC 8441), to the
# same server (the axum_echo example, in the clear: HTTP/1.1 upgrades and
# h2c with prior knowledge; no TLS in either row).
#
#   bash benches/h1_vs_h2.sh                       # 1000 WebSockets, 10 HTTP/2 connections, 5 s
#   SOCKETS=2000 H2_CONNS=20 SECS=10 bash benches/h1_vs_h2.sh
#
# Each row starts a fresh server, opens SOCKETS WebSockets (HTTP/1.1: one
# TCP connection each; HTTP/2: SOCKETS streams over H2_CONNS connections),
# one echo on each, and reads the server's VmRSS before and with them open;
# then every WebSocket sends 16-byte text messages and checks each echo, one
# in flight at a time, for SECS seconds. Same client driver in both rows
# (wsproto-adapters), permessage-deflate off. Client and server share the
# machine's cores, so the rate is the pair's, not the server's alone.
# Output: a markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
SOCKETS="${SOCKETS:-1000}"
H2_CONNS="${H2_CONNS:-10}"
SECS="${SECS:-5}"
BIN="$CARGO_TARGET_DIR/release"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p wsproto-adapters --features axum --example axum_echo
cargo build --release -q -p wsproto-benches --bin h1_vs_h2

SPID=""
cleanup() {
  if [[ -n "$SPID" ]]; then
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run() { # $1 = h1 | h2; prints the client's result line
  local port
  port="$(free_port)"
  "$BIN/examples/axum_echo" "127.0.0.1:$port" 2>/dev/null &
  SPID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  # Give the server a moment to settle after the probe connection.
  sleep 0.3
  timeout $((SECS + 120)) "$BIN/h1_vs_h2" "127.0.0.1:$port" --mode "$1" \
    --sockets "$SOCKETS" --conns "$H2_CONNS" --secs "$SECS" --server-pid "$SPID"
  cleanup
  SPID=""
}

h1="$(run h1)"
h2="$(run h2)"

echo "| transport | WebSockets | TCP connections | server RSS before (KiB) | server RSS with them open (KiB) | growth (KiB) | KiB per WebSocket | echoes/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for line in "$h1" "$h2"; do
  read -r mode sockets tcp before open echoes secs <<<"$line"
  label="HTTP/1.1"
  [[ "$mode" == h2 ]] && label="HTTP/2 (h2c)"
  awk -v l="$label" -v s="$sockets" -v t="$tcp" -v b="$before" -v o="$open" -v e="$echoes" -v d="$secs" \
    'BEGIN { g = o - b; printf "| %s | %d | %d | %d | %d | %d | %.1f | %.0f |\n", l, s, t, b, o, g, g / s, e / d }'
done
