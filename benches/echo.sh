#!/usr/bin/env bash
# Loopback echo benchmark: wsproto's echo_server (blocking and --tokio) against
# tokio-tungstenite and fastwebsockets echo servers, same load generator.
#
#   bash benches/echo.sh                 # full matrix, medians of 3 runs of 3 s
#   QUICK=1 bash benches/echo.sh         # subset: 16 B and 64 KiB, 1 and 16 conns, 1 run of 2 s
#
# Overrides: SIZES, CONNS, INFLIGHT, RUNS, SECS, SERVERS, CARGO_TARGET_DIR.
# The server runs on core 1 (taskset -c 1), the load generator on core 0.
# Server CPU per message = (utime + stime from /proc/PID/stat, after - before)
# / messages echoed, in microseconds.
# Output: a markdown table on stdout; raw lines in $OUT_DIR/raw.txt.
# Each peer runs in the shape of its crate's own echo example (see
# src/bin/peer_echo.rs); the load generator keeps INFLIGHT messages in flight
# per connection and writes the messages for echoes that came back together
# in one write, so the in-flight rows measure pipelining on both sides.
# The machine is shared: compare servers with alternating runs, not one table.
#
# Counts instead of seconds (for a busy machine):
#   COUNTS="20 120" SIZES=65536 CONNS=16 INFLIGHT=1 bash benches/echo.sh
# runs `loadgen --count N` for each N of COUNTS (messages per connection)
# and prints per echoed message the server's user-space instructions
# (valgrind --tool=callgrind, the server dumped after each load) and its
# syscalls (perf stat tracepoints, one server run per N). Each figure is the
# difference between the two loads divided by the messages between them, so
# start-up and handshakes cancel out. Needs valgrind and perf.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [[ "${QUICK:-0}" == 1 ]]; then
  SIZES="${SIZES:-16 65536}"; CONNS="${CONNS:-1 16}"; INFLIGHT="${INFLIGHT:-1 16}"
  RUNS="${RUNS:-1}"; SECS="${SECS:-2}"
else
  SIZES="${SIZES:-16 1024 65536}"; CONNS="${CONNS:-1 16 256}"; INFLIGHT="${INFLIGHT:-1 16}"
  RUNS="${RUNS:-3}"; SECS="${SECS:-3}"
fi
SERVERS="${SERVERS:-wsproto-blocking wsproto-tokio tungstenite fastwebsockets}"
OUT_DIR="${OUT_DIR:-$CARGO_TARGET_DIR/echo-bench}"
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/raw.txt"
: > "$RAW"

cargo build --release -q -p wsproto-adapters --example echo_server
cargo build --release -q -p wsproto-benches --bin loadgen --bin peer_echo
BIN="$CARGO_TARGET_DIR/release"
TICKS=$(getconf CLK_TCK)
PORT=19201

server_cmd() {
  case "$1" in
    wsproto-blocking) echo "$BIN/examples/echo_server 127.0.0.1:$PORT" ;;
    wsproto-tokio) echo "$BIN/examples/echo_server 127.0.0.1:$PORT --tokio" ;;
    tungstenite) echo "$BIN/peer_echo tungstenite 127.0.0.1:$PORT" ;;
    fastwebsockets) echo "$BIN/peer_echo fastwebsockets 127.0.0.1:$PORT" ;;
    *) echo "unknown server $1" >&2; exit 2 ;;
  esac
}

cpu_ticks() { # utime + stime (fields 14 and 15; comm may contain spaces)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }

wait_port() {
  for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $PORT did not start" >&2
  return 1
}

# One fixed load: COUNT messages per connection.
count_load() {
  taskset -c 0 "$BIN/loadgen" "127.0.0.1:$PORT" --conns "$conns" --inflight "$inflight" \
    --size "$size" --count "$1" > /dev/null
}

if [[ -n "${COUNTS:-}" ]]; then
  read -r N1 N2 <<<"$COUNTS"
  EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read
  EVENTS=$EVENTS,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev
  EVENTS=$EVENTS,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_setsockopt
  echo "| server | size | conns | in flight | instructions/msg | syscalls/msg | recvfrom+read | sendto+write+writev | epoll_wait | setsockopt |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for server in $SERVERS; do
    for size in $SIZES; do
      for conns in $CONNS; do
        for inflight in $INFLIGHT; do
          msgs=$((conns * (N2 - N1)))
          # Instructions: one server under callgrind, dumped after each load.
          PORT=$((PORT + 1))
          # shellcheck disable=SC2046
          taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/cg.%p" \
            $(server_cmd "$server") 2>/dev/null &
          VPID=$!
          wait_port
          count_load "$N1"; callgrind_control -d "$VPID" > /dev/null 2>&1
          count_load "$N2"; callgrind_control -d "$VPID" > /dev/null 2>&1
          kill "$VPID"; wait "$VPID" 2>/dev/null || true
          ir1=$(awk '/^summary:/ {print $2}' "$OUT_DIR/cg.$VPID.1")
          ir2=$(awk '/^summary:/ {print $2}' "$OUT_DIR/cg.$VPID.2")
          rm -f "$OUT_DIR/cg.$VPID"*
          # Syscalls: a server run under perf stat for each load.
          for n in "$N1" "$N2"; do
            PORT=$((PORT + 1))
            # shellcheck disable=SC2046
            taskset -c 1 perf stat -x, -e "$EVENTS" -o "$OUT_DIR/perf.$n" -- \
              $(server_cmd "$server") 2>/dev/null &
            PPID_=$!
            wait_port
            count_load "$n"
            sleep 0.2
            pkill -INT -P "$PPID_" || true
            wait "$PPID_" 2>/dev/null || true
          done
          awk -F, -v n1="$OUT_DIR/perf.$N1" -v m="$msgs" -v ir=$((ir2 - ir1)) \
            -v row="| $server | $size | $conns | $inflight" '
            FILENAME == n1 && $1 ~ /^[0-9]/ { a[$3] = $1; next }
            $1 ~ /^[0-9]/ { d[$3] = ($1 - a[$3]) / m }
            END {
              printf "%s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", row, ir / m,
                d["raw_syscalls:sys_enter"],
                d["syscalls:sys_enter_recvfrom"] + d["syscalls:sys_enter_read"],
                d["syscalls:sys_enter_sendto"] + d["syscalls:sys_enter_write"] + d["syscalls:sys_enter_writev"],
                d["syscalls:sys_enter_epoll_wait"], d["syscalls:sys_enter_setsockopt"]
            }' "$OUT_DIR/perf.$N1" "$OUT_DIR/perf.$N2"
        done
      done
    done
  done
  exit 0
fi

echo "| server | size | conns | in flight | msg/s | p50 µs | p99 µs | server CPU µs/msg |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for server in $SERVERS; do
  PORT=$((PORT + 1))
  # shellcheck disable=SC2046
  taskset -c 1 $(server_cmd "$server") 2>/dev/null &
  SPID=$!
  trap 'kill $SPID 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
  done
  for size in $SIZES; do
    for conns in $CONNS; do
      for inflight in $INFLIGHT; do
        : > "$OUT_DIR/runs.txt"
        for run in $(seq "$RUNS"); do
          before=$(cpu_ticks $SPID)
          line=$(timeout $((${SECS%.*} + 30)) taskset -c 0 "$BIN/loadgen" "127.0.0.1:$PORT" \
            --conns "$conns" --inflight "$inflight" --size "$size" --secs "$SECS" || echo "FAILED")
          after=$(cpu_ticks $SPID)
          echo "$server run=$run $line cpu_ticks=$((after - before))" >> "$RAW"
          if [[ "$line" == FAILED* ]]; then continue; fi
          msgs=$(sed -E 's/.*msgs=([0-9]+).*/\1/' <<<"$line")
          awk -v l="$line" -v t=$((after - before)) -v hz="$TICKS" -v m="$msgs" 'BEGIN {
            n = split(l, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
            printf "%s %s %s %.3f\n", v["msg_per_s"], v["p50_us"], v["p99_us"], (m > 0 ? t / hz / m * 1e6 : 0)
          }' >> "$OUT_DIR/runs.txt"
        done
        rate=$(awk '{print $1}' "$OUT_DIR/runs.txt" | median)
        p50=$(awk '{print $2}' "$OUT_DIR/runs.txt" | median)
        p99=$(awk '{print $3}' "$OUT_DIR/runs.txt" | median)
        cpu=$(awk '{print $4}' "$OUT_DIR/runs.txt" | median)
        echo "| $server | $size | $conns | $inflight | $rate | $p50 | $p99 | $cpu |"
      done
    done
  done
  kill $SPID 2>/dev/null || true
  wait $SPID 2>/dev/null || true
  trap - EXIT
done
