#!/usr/bin/env bash
# The decompression bomb against `echo_server --tokio`, with and without a
# shared memory budget: CONNECTIONS clients (default 10) each send one
# permessage-deflate message that inflates to BYTES (default 64 MiB, the
# echo server's message limit), all at once. Prints the server's peak RSS
# (VmHWM) for each run. Linux, loopback only.
#
#   benches/bomb.sh [BUDGET_BYTES]      (default budget: 64 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-$((64 << 20))}
BYTES=${BYTES:-$((64 << 20))}
CONNECTIONS=${CONNECTIONS:-10}

cargo build --release -q -p wsproto-adapters --example echo_server
cargo test -q -p wsproto-adapters --test budget_attacks --no-run 2>/dev/null
target=${CARGO_TARGET_DIR:-target}
server=$target/release/examples/echo_server
client=$(ls -t "$target"/debug/deps/budget_attacks-* | grep -v '\.d$' | head -1)

run() { # label, extra server flags...
  local label=$1; shift
  local log; log=$(mktemp)
  "$server" 127.0.0.1:0 --tokio "$@" 2>"$log" &
  local pid=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  local before; before=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  WSPROTO_BOMB_ADDR=127.0.0.1:$port WSPROTO_BOMB_BYTES=$BYTES WSPROTO_BOMB_CONNECTIONS=$CONNECTIONS \
    timeout 300 "$client" --exact bomb_client --ignored --nocapture | grep '^bomb:' || true
  local peak; peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  sleep 1 # the last close handshakes end and are logged
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local closed; closed=$(grep -c 'budget spent' "$log" || true)
  printf '%s: peak RSS %d MiB (idle %d MiB), %s connections refused by the budget\n' \
    "$label" $((peak / 1024)) $((before / 1024)) "$closed"
  rm -f "$log"
}

echo "bomb: $CONNECTIONS x one message inflating to $((BYTES >> 20)) MiB"
run "no budget"
run "budget $((BUDGET >> 20)) MiB" --memory-budget="$BUDGET"
