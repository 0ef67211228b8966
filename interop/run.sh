#!/usr/bin/env bash
# Runs wsproto against real peers nobody here wrote. Install them first with interop/install.sh.
#
#   (a) Node ws client matrix        -> our echo_server (blocking), echo_server --tokio and the
#                                       axum_echo example (the axum extractor over hyper)
#   (b) our client matrix            -> Node ws echo server
#   (c) Python websockets matrix     -> the same three servers
#   (d) our client matrix            -> Python websockets echo server
#   (e) headless Chromium chat test  -> our chat_server, alone and as two processes on one Redis
#   (f) chat load test (Node ws)      -> two chat_server processes on that Redis
#   (g) wss:// (a self-signed certificate made with openssl): the Node ws and Python websockets
#       client matrices and headless Chromium -> our echo_server --tls (blocking and --tokio);
#       our client matrix and the `client` example -> a Node ws server on https
#   (h) WebSockets over HTTP/2 (RFC 8441) over TLS: headless Chromium loads a page from our
#       axum_echo --tls that opens four WebSockets at once -> all four must arrive as HTTP/2
#       streams of one TCP connection (the server's /stats says so)
#
# (a)-(d) run twice: plain (the peer offers or accepts no extension; every connection asserts
# none was agreed) and with permessage-deflate (the peer offers or accepts it; every connection
# asserts it was agreed, so the whole matrix runs compressed both ways). (e) asserts the
# browser's socket negotiated permessage-deflate.
#
# Prints one line per step (`PASS name`, `FAIL name`, `SKIP name (reason)`) and finally
# `interop: N passed, M failed` (`, K skipped` when K > 0). Exits 1 if anything failed. Under CI=true a
# missing peer is a FAIL, never a skip. Servers listen on free loopback ports only; every child is
# killed on exit; every step runs under `timeout` (STEP_TIMEOUT, default 120 s).
# Logs go to $INTEROP_LOG_DIR (default: a fresh temp dir, kept and printed when a step fails).
# INTEROP_ONLY=LETTERS runs only those groups (e.g. INTEROP_ONLY=g for the wss:// steps).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
IS_CI=false
[ "${CI:-}" = "true" ] && IS_CI=true
STEP_TIMEOUT="${STEP_TIMEOUT:-120}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
LOGS="${INTEROP_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/wsproto-interop.XXXXXX")}"
mkdir -p "$LOGS"
VENV_PY="$HERE/python/.venv/bin/python"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH="$CHROMIUM" ARTIFACT_DIR="$LOGS"

ONLY="${INTEROP_ONLY:-}"
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *"$1"* ]]; }

passed=0 failed=0 skipped=0
CHILDREN=()

cleanup() {
  local pid
  for pid in "${CHILDREN[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${CHILDREN[@]}"; do
    # Give each child a moment to exit on SIGTERM, then insist.
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  CHILDREN=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

say() { printf '[interop] %s\n' "$*"; }

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { # $1 = step, $2 = log file (optional), $3 = why (optional)
  echo "FAIL $1${3:+ ($3)}"
  failed=$((failed + 1))
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    tail -n 25 "$2" | sed 's/^/    | /'
    echo "    (full log: $2)"
  fi
}
missing() { # $1 = step, $2 = reason: SKIP locally, FAIL under CI
  if $IS_CI; then
    fail "$1" "" "peer missing under CI=true: $2"
  else
    echo "SKIP $1 ($2)"
    skipped=$((skipped + 1))
    say "!!! SKIPPED $1: $2 -- run interop/install.sh (under CI=true this is a FAIL)"
  fi
}

free_port() {
  python3 - 2>/dev/null <<'PY' || node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})" 2>/dev/null || echo $((20000 + RANDOM % 30000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# start NAME LOG CMD... : starts a server in the background (sets STARTED_PID).
start() {
  local log="$2"
  shift 2
  "$@" >"$log" 2>&1 </dev/null &
  STARTED_PID=$!
  CHILDREN+=("$STARTED_PID")
}

# wait_ready PID PORT : bounded retries until 127.0.0.1:PORT accepts a TCP connection.
wait_ready() {
  local pid="$1" port="$2" i
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# launch VAR NAME CMD... (with @PORT@ replaced): picks a free port, starts, waits.
# On success sets VAR to the port; on failure leaves it empty and keeps the log.
launch() {
  local var="$1" name="$2" port log
  shift 2
  port="$(free_port)"
  log="$LOGS/server-$name.log"
  local args=() a
  for a in "$@"; do args+=("${a//@PORT@/$port}"); done
  start "$name" "$log" "${args[@]}"
  if wait_ready "$STARTED_PID" "$port"; then
    printf -v "$var" '%s' "$port"
    say "$name listening on 127.0.0.1:$port (pid $STARTED_PID)"
  else
    printf -v "$var" '%s' ""
    say "$name did not become ready on 127.0.0.1:$port; its log:"
    tail -n 20 "$log" | sed 's/^/    | /'
  fi
}

# step NAME CMD... : runs a client under timeout and records PASS/FAIL.
step() {
  local name="$1" log
  shift
  log="$LOGS/step-$(echo "$name" | tr -c 'A-Za-z0-9._-' '_').log"
  local t0=$SECONDS
  timeout --kill-after=5 "$STEP_TIMEOUT" "$@" >"$log" 2>&1 </dev/null
  local rc=$?
  if [ "$rc" = 0 ]; then
    pass "$name"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail "$name" "$log" "timed out after ${STEP_TIMEOUT}s"
  else
    fail "$name" "$log" "exit $rc after $((SECONDS - t0))s"
  fi
}

# --- what is available ------------------------------------------------------------------------
node_ok="" py_ok="" chromium_ok=""
if ! command -v node >/dev/null 2>&1; then node_ok="node not installed"
elif [ ! -f "$HERE/node/node_modules/ws/package.json" ]; then node_ok="interop/node/node_modules/ws missing (npm ci)"
fi
if [ ! -x "$VENV_PY" ]; then py_ok="interop/python/.venv missing"
elif ! "$VENV_PY" -c 'import websockets' >/dev/null 2>&1; then py_ok="websockets not installed in interop/python/.venv"
fi
if [ -n "$node_ok" ]; then chromium_ok="$node_ok"
elif [ ! -f "$HERE/node/node_modules/playwright-core/package.json" ]; then chromium_ok="playwright-core missing (npm ci)"
elif [ ! -x "$CHROMIUM" ]; then chromium_ok="$CHROMIUM missing (apt-get install chromium)"
fi

# --- build ------------------------------------------------------------------------------------
say "logs in $LOGS"
built=true
if (cd "$ROOT" && cargo build --release -p wsproto-adapters --features axum --examples && cargo build --release -p wsproto-interop) >"$LOGS/build.log" 2>&1; then
  pass "build (wsproto-adapters examples, wsproto-interop)"
else
  fail "build (wsproto-adapters examples, wsproto-interop)" "$LOGS/build.log"
  built=false
fi
ECHO_BIN="$TARGET/release/examples/echo_server"
CHAT_BIN="$TARGET/release/examples/chat_server"
AXUM_BIN="$TARGET/release/examples/axum_echo"
OUR_CLIENT="$TARGET/release/wsproto-interop"

# our_server VAR NAME BIN ARGS... : starts one of our example servers (empty VAR when not built).
our_server() {
  local var="$1" name="$2" bin="$3"
  shift 3
  if $built && [ -x "$bin" ]; then
    launch "$var" "$name" "$bin" "$@"
  else
    printf -v "$var" '%s' ""
  fi
}
# needs STEP PORT : FAIL the step when our server is not up.
our_up() {
  if [ -n "$2" ]; then return 0; fi
  if $built; then fail "$1" "" "our server did not start"; else fail "$1" "" "build failed"; fi
  return 1
}

ECHO_PORT="" TOKIO_PORT="" AXUM_PORT="" CHAT_PORT=""
if { want a || want c; } && { [ -z "$node_ok" ] || [ -z "$py_ok" ]; }; then
  our_server ECHO_PORT echo_server "$ECHO_BIN" "127.0.0.1:@PORT@"
  our_server TOKIO_PORT echo_server_tokio "$ECHO_BIN" "127.0.0.1:@PORT@" --tokio
  our_server AXUM_PORT axum_echo "$AXUM_BIN" "127.0.0.1:@PORT@"
fi

# (a) Node ws client -> our echo servers, plain then permessage-deflate
want a && for mode in plain deflate; do
  for variant in blocking tokio axum; do
    name="node-ws client matrix -> wsproto echo_server ($variant)"
    flag=()
    if [ "$mode" = deflate ]; then
      name="node-ws client matrix (permessage-deflate) -> wsproto echo_server ($variant)"
      flag=(--deflate)
    fi
    port="$ECHO_PORT"; [ "$variant" = tokio ] && port="$TOKIO_PORT"; [ "$variant" = axum ] && port="$AXUM_PORT"
    if [ -n "$node_ok" ]; then missing "$name" "$node_ok"; continue; fi
    our_up "$name" "$port" && step "$name" node "$HERE/node/ws_client_matrix.js" "ws://127.0.0.1:$port/" "${flag[@]}"
  done
done

# (b) our client -> Node ws echo server, without and with permessage-deflate
want b && for mode in plain deflate; do
  name="wsproto client matrix -> node-ws echo server"
  flag=()
  if [ "$mode" = deflate ]; then
    name="wsproto client matrix (permessage-deflate) -> node-ws echo server (perMessageDeflate)"
    flag=(--deflate)
  fi
  if [ -n "$node_ok" ]; then
    missing "$name" "$node_ok"
  elif ! $built; then
    fail "$name" "" "build failed"
  else
    launch NODE_PORT "node_ws_echo_$mode" node "$HERE/node/ws_echo_server.js" @PORT@ "${flag[@]}"
    if [ -n "$NODE_PORT" ]; then
      step "$name" "$OUR_CLIENT" client-matrix "ws://127.0.0.1:$NODE_PORT/" "${flag[@]}"
    else
      fail "$name" "$LOGS/server-node_ws_echo_$mode.log" "node-ws echo server did not start"
    fi
  fi
done

# (c) Python websockets client -> our echo servers, plain then permessage-deflate
want c && for mode in plain deflate; do
  for variant in blocking tokio axum; do
    name="python-websockets client matrix -> wsproto echo_server ($variant)"
    flag=()
    if [ "$mode" = deflate ]; then
      name="python-websockets client matrix (permessage-deflate) -> wsproto echo_server ($variant)"
      flag=(--deflate)
    fi
    port="$ECHO_PORT"; [ "$variant" = tokio ] && port="$TOKIO_PORT"; [ "$variant" = axum ] && port="$AXUM_PORT"
    if [ -n "$py_ok" ]; then missing "$name" "$py_ok"; continue; fi
    our_up "$name" "$port" && step "$name" "$VENV_PY" "$HERE/python/ws_client_matrix.py" "ws://127.0.0.1:$port/" "${flag[@]}"
  done
done

# (d) our client -> Python websockets echo server, without and with permessage-deflate
want d && for mode in plain deflate; do
  name="wsproto client matrix -> python-websockets echo server"
  flag=()
  if [ "$mode" = deflate ]; then
    name="wsproto client matrix (permessage-deflate) -> python-websockets echo server (compression)"
    flag=(--deflate)
  fi
  if [ -n "$py_ok" ]; then
    missing "$name" "$py_ok"
  elif ! $built; then
    fail "$name" "" "build failed"
  else
    launch PY_PORT "python_websockets_echo_$mode" "$VENV_PY" "$HERE/python/ws_echo_server.py" @PORT@ "${flag[@]}"
    if [ -n "$PY_PORT" ]; then
      step "$name" "$OUR_CLIENT" client-matrix "ws://127.0.0.1:$PY_PORT/" "${flag[@]}"
    else
      fail "$name" "$LOGS/server-python_websockets_echo_$mode.log" "python echo server did not start"
    fi
  fi
done

# (e) Chromium -> our chat_server: one process on its own, then two processes sharing one room
# through a Redis started here (Debian's redis-server, on a free loopback port, no persistence).
# The test starts (and restarts) the chat_server processes itself. Screenshots are kept in
# $TARGET/chat-screenshots.
CHAT_SHOTS="$TARGET/chat-screenshots"
redis_ok=""
REDIS_BIN="$(command -v redis-server || true)"
[ -z "$REDIS_BIN" ] && redis_ok="redis-server missing (apt-get install redis-server)"
REDIS_PORT=""
if [ -z "$redis_ok" ] && $built && { want e || want f; }; then
  launch REDIS_PORT redis "$REDIS_BIN" --port @PORT@ --bind 127.0.0.1 --save "" --appendonly no --protected-mode yes
fi
want e && for mode in single redis; do
  if [ "$mode" = single ]; then
    name="chromium chat pages (permessage-deflate) -> wsproto chat_server"
  else
    name="chromium chat pages -> two wsproto chat_server processes sharing one room through Redis"
  fi
  if [ -n "$chromium_ok" ]; then missing "$name" "$chromium_ok"; continue; fi
  if ! $built || [ ! -x "$CHAT_BIN" ]; then fail "$name" "" "build failed"; continue; fi
  if [ "$mode" = single ]; then
    step "$name" env CHAT_SCREENSHOT_DIR="$CHAT_SHOTS" node "$HERE/node/chat_browser_test.js" --bin "$CHAT_BIN"
    continue
  fi
  if [ -n "$redis_ok" ]; then missing "$name" "$redis_ok"; continue; fi
  if [ -z "$REDIS_PORT" ]; then fail "$name" "$LOGS/server-redis.log" "redis-server did not start"; continue; fi
  step "$name" env CHAT_SCREENSHOT_DIR="$CHAT_SHOTS" node "$HERE/node/chat_browser_test.js" --bin "$CHAT_BIN" --redis "redis://127.0.0.1:$REDIS_PORT/"
done

# (f) load: 1,000 Node ws pages over two chat_server processes on the Redis of (e); every message
# reaches every page exactly once; a page that stops reading is dropped while 20 others keep
# getting everything; RSS after round 2 stays within 10 % of round 1 (servers on
# MALLOC_ARENA_MAX=1, see the test's header). Prints its figures (deliveries/s, round trips, RSS
# before and after each round, peak) into the step log, shown here.
name="chat load: 1000 node-ws pages over two wsproto chat_server processes on Redis"
if ! want f; then
  :
elif [ -n "$node_ok" ]; then
  missing "$name" "$node_ok"
elif [ -n "$redis_ok" ]; then
  missing "$name" "$redis_ok"
elif ! $built || [ ! -x "$CHAT_BIN" ]; then
  fail "$name" "" "build failed"
elif [ -z "$REDIS_PORT" ]; then
  fail "$name" "$LOGS/server-redis.log" "redis-server did not start"
else
  step "$name" node "$HERE/node/chat_load_test.js" --bin "$CHAT_BIN" --redis "redis://127.0.0.1:$REDIS_PORT/" --clients 1000
  grep -E '^\[load\] ' "$LOGS/step-$(echo "$name" | tr -c 'A-Za-z0-9._-' '_').log" | sed 's/^/    /' || true
fi

# (g) wss://. One self-signed certificate (CA:FALSE, for localhost and 127.0.0.1) made here with
# openssl: our echo_server serves it with --tls, the clients trust exactly it (--ca), Chromium
# ignores certificate errors (it has no --ca). Plain (no permessage-deflate) matrices: (a)-(d)
# cover compression; these steps are about the TLS transport, the lingering close over TLS included.
make_cert() { # CERT KEY
  local conf="$LOGS/wss-cert.cnf"
  cat >"$conf" <<'CNF'
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
CNF
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$2" -out "$1" -config "$conf"
}
if want g; then
  CERT="$LOGS/wss-cert.pem" KEY="$LOGS/wss-key.pem"
  cert_ok=""
  if ! command -v openssl >/dev/null 2>&1; then
    cert_ok="openssl missing (apt-get install openssl)"
  elif ! make_cert "$CERT" "$KEY" >"$LOGS/wss-cert.log" 2>&1; then
    fail "wss: self-signed certificate (openssl)" "$LOGS/wss-cert.log"
    cert_ok="no certificate"
  fi
  WSS_PORT="" WSS_TOKIO_PORT=""
  if [ -z "$cert_ok" ]; then
    our_server WSS_PORT echo_server_wss "$ECHO_BIN" "127.0.0.1:@PORT@" --tls "$CERT" "$KEY"
    our_server WSS_TOKIO_PORT echo_server_wss_tokio "$ECHO_BIN" "127.0.0.1:@PORT@" --tokio --tls "$CERT" "$KEY"
  fi
  for variant in blocking tokio; do
    port="$WSS_PORT"; [ "$variant" = tokio ] && port="$WSS_TOKIO_PORT"
    name="node-ws client matrix over wss -> wsproto echo_server --tls ($variant)"
    if [ -n "$cert_ok" ]; then missing "$name" "$cert_ok"
    elif [ -n "$node_ok" ]; then missing "$name" "$node_ok"
    else our_up "$name" "$port" && step "$name" node "$HERE/node/ws_client_matrix.js" "wss://localhost:$port/" --ca "$CERT"
    fi
    name="python-websockets client matrix over wss -> wsproto echo_server --tls ($variant)"
    if [ -n "$cert_ok" ]; then missing "$name" "$cert_ok"
    elif [ -n "$py_ok" ]; then missing "$name" "$py_ok"
    else our_up "$name" "$port" && step "$name" "$VENV_PY" "$HERE/python/ws_client_matrix.py" "wss://localhost:$port/" --ca "$CERT"
    fi
  done
  name="chromium (--ignore-certificate-errors) over wss -> wsproto echo_server --tls (blocking, tokio)"
  if [ -n "$cert_ok" ]; then missing "$name" "$cert_ok"
  elif [ -n "$chromium_ok" ]; then missing "$name" "$chromium_ok"
  elif our_up "$name" "$WSS_PORT" && our_up "$name" "$WSS_TOKIO_PORT"; then
    step "$name" node "$HERE/node/wss_browser_test.js" "wss://127.0.0.1:$WSS_PORT/" "wss://127.0.0.1:$WSS_TOKIO_PORT/"
  fi
  for who in matrix example; do
    if [ "$who" = matrix ]; then
      name="wsproto client matrix over wss -> node-ws echo server (https)"
    else
      name="wsproto client example (wss://, --ca) -> node-ws echo server (https)"
    fi
    if [ -n "$cert_ok" ]; then missing "$name" "$cert_ok"; continue; fi
    if [ -n "$node_ok" ]; then missing "$name" "$node_ok"; continue; fi
    if ! $built; then fail "$name" "" "build failed"; continue; fi
    if [ -z "${NODE_WSS_PORT:-}" ]; then
      launch NODE_WSS_PORT node_ws_echo_https node "$HERE/node/ws_echo_server.js" @PORT@ --tls "$CERT" "$KEY"
    fi
    if [ -z "$NODE_WSS_PORT" ]; then
      fail "$name" "$LOGS/server-node_ws_echo_https.log" "node-ws https echo server did not start"
    elif [ "$who" = matrix ]; then
      step "$name" "$OUR_CLIENT" client-matrix "wss://localhost:$NODE_WSS_PORT/" --ca "$CERT"
    else
      # Two lines in, both echoed back out; stdin's end closes the connection cleanly.
      step "$name" bash -c 'out="$(printf "hello over wss\nsecond line\n" | "$@")" || exit 1
        printf "%s\n" "$out"; [ "$out" = "$(printf "hello over wss\nsecond line")" ]' \
        client "$TARGET/release/examples/client" "wss://localhost:$NODE_WSS_PORT/" --ca "$CERT"
    fi
  done
fi

# (h) WebSockets over HTTP/2 over TLS (RFC 8441). A self-signed certificate as in (g); our
# axum_echo serves it with --tls (ALPN h2 and http/1.1, SETTINGS_ENABLE_CONNECT_PROTOCOL on
# HTTP/2). Chromium (--ignore-certificate-errors) loads /h2test over h2, the page opens four
# WebSockets at once and checks an echo and a clean close on each; then /stats must list exactly
# those four, each over HTTP/2.0, all on one TCP connection (one peer address).
if want h; then
  H2_CERT="$LOGS/h2-cert.pem" H2_KEY="$LOGS/h2-key.pem"
  name="chromium (--ignore-certificate-errors): 4 WebSockets as HTTP/2 streams of one TLS connection -> wsproto axum_echo --tls"
  h2_cert_ok=""
  if ! command -v openssl >/dev/null 2>&1; then
    h2_cert_ok="openssl missing (apt-get install openssl)"
  elif ! make_cert "$H2_CERT" "$H2_KEY" >"$LOGS/h2-cert.log" 2>&1; then
    fail "h2: self-signed certificate (openssl)" "$LOGS/h2-cert.log"
    h2_cert_ok="no certificate"
  fi
  H2_PORT=""
  if [ -n "$h2_cert_ok" ]; then missing "$name" "$h2_cert_ok"
  elif [ -n "$chromium_ok" ]; then missing "$name" "$chromium_ok"
  else
    our_server H2_PORT axum_echo_tls "$AXUM_BIN" "127.0.0.1:@PORT@" --tls "$H2_CERT" "$H2_KEY"
    our_up "$name" "$H2_PORT" && step "$name" node "$HERE/node/h2_browser_test.js" "https://127.0.0.1:$H2_PORT/"
    grep -E '^chromium h2 test: ' "$LOGS/step-$(echo "$name" | tr -c 'A-Za-z0-9._-' '_').log" | sed 's/^/    /' || true
    # The chat over TLS: the page over h2, its WebSocket a stream of that connection.
    name="chromium (--ignore-certificate-errors): the chat page and its WebSocket over one HTTP/2 connection -> wsproto chat_server --tls"
    CHAT_H2_PORT=""
    our_server CHAT_H2_PORT chat_server_tls "$CHAT_BIN" "127.0.0.1:@PORT@" --tls "$H2_CERT" "$H2_KEY"
    our_up "$name" "$CHAT_H2_PORT" && step "$name" node "$HERE/node/chat_h2_browser_test.js" \
      "https://127.0.0.1:$CHAT_H2_PORT/" "$LOGS/server-chat_server_tls.log"
    grep -E '^chat h2 test: ' "$LOGS/step-$(echo "$name" | tr -c 'A-Za-z0-9._-' '_').log" | sed 's/^/    /' || true
  fi
fi

cleanup
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
if [ "$failed" -gt 0 ]; then say "logs kept in $LOGS"; elif [ -z "${INTEROP_LOG_DIR:-}" ]; then rm -rf "$LOGS"; fi
echo "interop: $summary"
[ "$failed" -eq 0 ]
