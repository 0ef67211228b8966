#!/usr/bin/env bash
# Installs the interop peers (idempotent; safe to run again):
#   * Node `ws` + `playwright-core`, pinned in node/package-lock.json  (npm ci in interop/node)
#   * Python `websockets`, pinned in python/requirements.txt            (venv at interop/python/.venv)
#   * Debian's `chromium` package, only if /usr/bin/chromium is missing (apt-get; needs root)
#   * Debian's `redis-server` package, only if redis-server is missing (apt-get; needs root): the
#     chat test runs two chat_server processes on one Redis
# Playwright's own browser download is never used (`npx playwright install` cannot work here):
# chat_browser_test.js drives Debian's /usr/bin/chromium through playwright-core.
#
# Under CI=true any failure is fatal (exit 1). Locally a failure prints a loud SKIP notice for
# that peer, and run.sh later reports that peer's steps as SKIP.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IS_CI=false
[ "${CI:-}" = "true" ] && IS_CI=true
failed=0

say() { printf '[interop/install] %s\n' "$*"; }

skip_or_die() { # $1 = peer, $2 = reason
  if $IS_CI; then
    say "ERROR: $1 could not be installed: $2 (CI=true: fatal)"
    failed=1
  else
    say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    say "!!! SKIP $1: $2"
    say "!!! run.sh will report its steps as SKIP (under CI=true they would FAIL)."
    say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}

apt_updated=false
apt_install() { # packages...
  if ! command -v apt-get >/dev/null 2>&1; then return 1; fi
  if ! $apt_updated; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
    apt_updated=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# --- Node: ws + playwright-core --------------------------------------------------------------
install_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "node/npm not found; trying Debian's nodejs + npm"
    apt_install nodejs npm || { skip_or_die "node peers (ws, playwright-core)" "node/npm missing and apt-get failed"; return; }
  fi
  say "node $(node --version), npm $(npm --version 2>/dev/null)"
  local stamp="$HERE/node/node_modules/.wsproto-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$HERE/node/package-lock.json" \
     && [ -f "$HERE/node/node_modules/ws/package.json" ] && [ -f "$HERE/node/node_modules/playwright-core/package.json" ]; then
    say "node_modules already matches package-lock.json"
    return
  fi
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core downloads nothing anyway.
  if (cd "$HERE/node" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error); then
    cp "$HERE/node/package-lock.json" "$stamp"
    say "node peers installed: ws $(node -p "require('$HERE/node/node_modules/ws/package.json').version"), playwright-core $(node -p "require('$HERE/node/node_modules/playwright-core/package.json').version")"
  else
    skip_or_die "node peers (ws, playwright-core)" "npm ci failed"
  fi
}

# --- Python: websockets in a venv -------------------------------------------------------------
install_python() {
  local venv="$HERE/python/.venv"
  local py
  py="$(command -v python3 || true)"
  if [ -z "$py" ]; then
    apt_install python3 python3-venv || { skip_or_die "python websockets" "python3 missing and apt-get failed"; return; }
    py="$(command -v python3)"
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! "$py" -m venv "$venv"; then
      say "python3 -m venv failed; trying Debian's python3-venv"
      rm -rf "$venv"
      apt_install python3-venv && "$py" -m venv "$venv" || { skip_or_die "python websockets" "cannot create a venv"; return; }
    fi
  fi
  if "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/python/requirements.txt"; then
    say "python peer installed: websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)')"
  else
    skip_or_die "python websockets" "pip install -r requirements.txt failed"
  fi
}

# --- Chromium (Debian's package) --------------------------------------------------------------
install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
    return
  fi
  say "installing Debian's chromium (takes a few minutes)"
  if apt_install chromium && [ -x /usr/bin/chromium ]; then
    say "chromium installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
  else
    skip_or_die "chromium" "apt-get install chromium failed"
  fi
}

# --- Redis (Debian's package), for the chat room shared between processes ----------------------
install_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    say "redis-server present: $(redis-server --version 2>/dev/null | head -n1)"
    return
  fi
  if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
    skip_or_die "redis-server" "not root and no password-less sudo for apt-get"
    return
  fi
  say "installing Debian's redis-server"
  if apt_install redis-server && command -v redis-server >/dev/null 2>&1; then
    say "redis-server installed: $(redis-server --version 2>/dev/null | head -n1)"
  else
    skip_or_die "redis-server" "apt-get install redis-server failed"
  fi
}

start=$SECONDS
install_node
install_python
install_chromium
install_redis
say "done in $((SECONDS - start)) s"
if [ "$failed" != 0 ]; then
  say "FAILED (CI=true): see the errors above"
  exit 1
fi
exit 0
