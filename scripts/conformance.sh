#!/usr/bin/env bash
# RFC 6455 conformance with the Autobahn|Testsuite (wstest 25.10.1), both
# roles, both std drivers, permessage-deflate on and off: eight runs.
#
#   bash scripts/conformance.sh [--full] [--only NAME]...
#
#   server runs: the suite's fuzzingclient against the echo_server example
#                (blocking, then --tokio);
#   client runs: the autobahn_client example (blocking, then --tokio) against
#                the suite's fuzzingserver.
#
# By default every case outside 12.* and 13.* runs (301 cases: framing, pings,
# fragmentation, UTF-8, close handling, limits and the 9.* large-message
# cases), plus a permessage-deflate subset that touches every 12.x and 13.x
# group (COMPRESSION_SUBSET below). `--full` runs all 517 cases in every run;
# with deflate on that takes 11 to 16 minutes per run on 2 cores. `--only`
# picks runs by name, e.g. `--only "server blocking deflate"`.
# ECHO_SERVER_FLAGS adds flags to the echo_server of the server runs, e.g.
# `ECHO_SERVER_FLAGS="--deflate-memory shared"`.
#
# Each run's verdicts are read from the suite's index.json by
# scripts/autobahn/report.py; see there for what counts as failed. One line
# per run: `autobahn server tokio deflate: 514 passed, 0 failed, 3 informational`.
# The last line counts cases over all runs (acceptable / not acceptable, a run
# without a report counting as one failed case): `autobahn: N passed, M failed`.
# HTML reports stay in target/autobahn/<run>/index.html (under
# CARGO_TARGET_DIR if that is set), logs in target/autobahn/logs.
#
# wstest is installed by scripts/autobahn/install.sh into
# ~/.cache/wsproto-autobahn (once). If that fails the runs are skipped, except
# under CI=true, where it is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything below is one compound command, so bash has read all of it before
# running any of it, and editing this file during a long run does not change
# what that run executes.
{

# One or two cases from each permessage-deflate group: 12.1-12.5 differ in
# payload (German text, a bitmap, a PDF, JSON, HTML), 13.1-13.7 in the
# parameters offered and accepted (window bits, no context takeover). Every
# case sends 1,000 messages; in X.1 they are 16 bytes, in X.11 8 KiB split
# into 256-byte frames (compressed continuation frames). Later cases in a
# group only grow the messages, which is what makes a full run slow.
COMPRESSION_SUBSET=(
  12.1.1 12.1.11 12.2.1 12.3.1 12.4.1 12.5.1
  13.1.1 13.1.11 13.2.1 13.3.1 13.4.1 13.5.1 13.6.1 13.7.1
)
NON_COMPRESSION=(1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*)

full=0
only=()
while [ $# -gt 0 ]; do
  case $1 in
  --full) full=1 ;;
  --only)
    [ $# -ge 2 ] || { echo "--only needs a run name" >&2; exit 2; }
    only+=("$2")
    shift
    ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
  esac
  shift
done

if [ "$full" -eq 1 ]; then
  cases=("*")
else
  cases=("${NON_COMPRESSION[@]}" "${COMPRESSION_SUBSET[@]}")
fi

target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
out=$target/autobahn
logs=$out/logs
mkdir -p "$logs"
report=scripts/autobahn/report.py

# --- wstest -----------------------------------------------------------------
if ! wstest=$(bash scripts/autobahn/install.sh 2>"$logs/install.log" | tail -n 1) || [ ! -x "$wstest" ]; then
  cat "$logs/install.log" >&2
  if [ "${CI:-}" = true ]; then
    echo "autobahn: wstest could not be installed, and under CI that is a failure"
    echo "autobahn: 0 passed, 1 failed"
    exit 1
  fi
  echo "autobahn: skipped, wstest could not be installed (see above)"
  exit 0
fi
sed -n '$p' "$logs/install.log" >&2

# How many cases the selection resolves to, by the suite's own rules, so that
# a report with cases missing fails.
suite_python=$(sed -n '1s/^#!//p' "$wstest")
expect=$("$suite_python" - "${cases[@]}" <<'EOF'
import sys
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseBasename
from autobahntestsuite.caseset import CaseSet
cases = CaseSet("fuzzing", CaseBasename, Cases, CaseCategories, CaseSubCategories)
print(len(cases.parseSpecCases({"cases": sys.argv[1:]})))
EOF
)

# --- the examples -----------------------------------------------------------
nice cargo build --release -j1 -q -p wsproto-adapters \
  --example echo_server --example autobahn_client
bin=$target/release/examples

# --- processes we start, stopped on the way out -----------------------------
pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening PORT PID: until 127.0.0.1:PORT accepts, or PID exits, or 30 s.
wait_listening() {
  local port=$1 pid=$2 i
  for i in $(seq 300); do
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
      "$port" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- one run ----------------------------------------------------------------
passed_total=0
failed_total=0

selected() {
  local name=$1 want
  [ "${#only[@]}" -eq 0 ] && return 0
  for want in "${only[@]}"; do
    [ "$name" = "$want" ] || [ "$name" = "autobahn $want" ] && return 0
  done
  return 1
}

# run ROLE DRIVER DEFLATE: ROLE is the role of our code (server or client).
run() {
  local role=$1 driver=$2 deflate=$3
  local name="autobahn $role $driver $deflate"
  selected "$name" || return 0
  local dir=$out/$role-$driver-$deflate log=$logs/$role-$driver-$deflate
  local flags=() status=0 port
  [ "$driver" = tokio ] && flags+=(--tokio)
  [ "$deflate" = no-deflate ] && flags+=(--no-deflate)
  # shellcheck disable=SC2206 # split on purpose: several flags
  [ "$role" = server ] && flags+=(${ECHO_SERVER_FLAGS:-})
  rm -rf "$dir"
  mkdir -p "$dir"
  local t0
  t0=$(date +%s)
  if [ "$role" = server ]; then
    # emptied here, not by the redirection in the background job, so that a
    # log left by an earlier run is never read for the port
    : >"$log.echo_server.log"
    "$bin/echo_server" 127.0.0.1:0 "${flags[@]}" 2>>"$log.echo_server.log" &
    pids+=($!)
    port=""
    for _ in $(seq 100); do
      port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log.echo_server.log")
      [ -n "$port" ] && break
      sleep 0.1
    done
    if [ -z "$port" ]; then
      echo "$name: echo_server did not start:" >&2
      cat "$log.echo_server.log" >&2
      status=1
    else
      python3 "$report" spec scripts/autobahn/fuzzingclient.json "$dir/spec.json" \
        --url "ws://127.0.0.1:$port" --outdir "$dir" --cases "${cases[@]}"
      (cd "$dir" && nice "$wstest" -m fuzzingclient -s spec.json) >"$log.wstest.log" 2>&1 || status=1
    fi
  else
    port=$(free_port)
    python3 "$report" spec scripts/autobahn/fuzzingserver.json "$dir/spec.json" \
      --url "ws://127.0.0.1:$port" --outdir "$dir" --cases "${cases[@]}"
    # -u 0: no report web server (it would listen on 8080)
    (cd "$dir" && exec nice "$wstest" -m fuzzingserver -u 0 -s spec.json) >"$log.wstest.log" 2>&1 &
    local suite=$!
    pids+=("$suite")
    if wait_listening "$port" "$suite"; then
      "$bin/autobahn_client" "ws://127.0.0.1:$port" "${flags[@]}" \
        2>"$log.autobahn_client.log" || status=1
    else
      echo "$name: wstest fuzzingserver did not start:" >&2
      tail -n 20 "$log.wstest.log" >&2
      status=1
    fi
  fi
  stop
  local secs=$(($(date +%s) - t0))
  [ "$status" -eq 0 ] || echo "$name: a process failed; logs in $log.*" >&2
  local check_out
  check_out=$(python3 "$report" check "$dir/index.json" --name "$name" \
    --deflate "$([ "$deflate" = deflate ] && echo on || echo off)" --expect "$expect") || status=1
  printf '%s\n' "$check_out" | sed '$d'
  local line passed failed
  line=$(printf '%s\n' "$check_out" | tail -n 1)
  # acceptable cases: OK + INFORMATIONAL + allowed UNIMPLEMENTED
  passed=$(awk -F'[:,] *' '{ n = 0; for (i = 2; i <= NF; i++) if ($i !~ /failed/) n += $i + 0; print n }' <<<"$line")
  failed=$(sed -E 's/^.*: [0-9]+ passed, ([0-9]+) failed.*$/\1/' <<<"$line")
  passed_total=$((passed_total + passed))
  failed_total=$((failed_total + failed))
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed_total=$((failed_total + 1))
  fi
  echo "$line (${secs} s)"
}

started=$(date +%s)
for role in server client; do
  for driver in blocking tokio; do
    for deflate in deflate no-deflate; do
      run "$role" "$driver" "$deflate"
    done
  done
done

echo "autobahn: reports in $out/*/index.html; $(($(date +%s) - started)) s in all"
echo "autobahn: $passed_total passed, $failed_total failed"
[ "$failed_total" -eq 0 ]
exit
}
