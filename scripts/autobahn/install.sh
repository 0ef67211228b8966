#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (wstest 25.10.1) for scripts/conformance.sh,
# natively, without Docker.
#
#   bash scripts/autobahn/install.sh        # prints the path of wstest last
#
# The suite only runs on Python 2, which current Debian no longer ships. So:
#   1. the CPython 2.7.18 source is fetched from Debian bullseye's `python2.7`
#      source package, through a private apt configuration (its own
#      sources.list, lists and cache in a temporary folder; the system's apt
#      state is not changed). The mirror is the one the system already uses.
#      Only the upstream tarball is used, checked against upstream's SHA-256.
#   2. missing build dependencies are installed with the system's apt.
#   3. CPython is built (UCS-4, with pip) into the cache folder.
#   4. autobahntestsuite==25.10.1 is pip-installed with the dependency
#      versions its upstream pins for Python 2.
#   5. a `wstest` launcher is written that binds every listener the suite
#      opens to 127.0.0.1 (stock wstest listens on all interfaces).
#
# Everything lives under $WSPROTO_AUTOBAHN_CACHE (default
# ~/.cache/wsproto-autobahn). A step whose result is already there and works
# is skipped, so a second run takes about a second.
set -euo pipefail

CACHE=${WSPROTO_AUTOBAHN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsproto-autobahn}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

PYTHON_VERSION=2.7.18
# SHA-256 of upstream Python-2.7.18.tgz (Debian's orig tarball is the same file)
PYTHON_SHA256=da3080e3b488f648a3d7a4560ddee895284c3380b11d6de75edb986526b9a814
SUITE_VERSION=25.10.1

PY_HOME=$CACHE/python-$PYTHON_VERSION
PY=$PY_HOME/bin/python2.7
WSTEST=$CACHE/bin/wstest

# The versions upstream's Docker image and setup.py use on Python 2. Newer
# releases of most of these no longer support Python 2.
CONSTRAINTS="autobahn==0.10.9 Twisted==19.10.0 txaio==2.1.0 pyOpenSSL==19.1.0
cryptography==3.3.2 zope.interface==4.6.0 klein==17.10.0 Jinja2==2.11.3
MarkupSafe==1.1.1 Werkzeug==1.0.1 service-identity==18.1.0 incremental==16.10.1
six==1.16.0 unittest2==1.1.0 wsaccel==0.6.6 ujson==2.0.3"

BUILD_DEPS="build-essential dpkg-dev ca-certificates libssl-dev zlib1g-dev libffi-dev
libbz2-dev libsqlite3-dev libreadline-dev libncurses-dev libexpat1-dev"

started=$(date +%s)
say() { printf 'autobahn install [%3ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ] || fail "cannot write to $CACHE"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsproto-autobahn.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    fail "need root to run: $*"
  fi
}

wstest_works() {
  [ -x "$WSTEST" ] && "$WSTEST" -a 2>/dev/null | grep -q "AutobahnTestSuite $SUITE_VERSION"
}

python_works() {
  [ -x "$PY" ] && "$PY" - >/dev/null 2>&1 <<'EOF'
import sys, ssl, zlib, ctypes, bz2, pyexpat
assert sys.version_info[:3] == (2, 7, 18)
assert sys.maxunicode > 0xffff
EOF
}

suite_works() {
  "$PY" - "$SUITE_VERSION" >/dev/null 2>&1 <<'EOF'
import sys, pkg_resources
assert pkg_resources.get_distribution("autobahntestsuite").version == sys.argv[1]
assert pkg_resources.get_distribution("autobahn").version == "0.10.9"
import autobahntestsuite.wstest, autobahn.twisted.websocket, twisted.internet.reactor
EOF
}

# The URI of the Debian archive the system's apt already uses: from a deb822
# `.sources` file or, failing that, a one-line `sources.list`.
system_mirror() {
  local uri="" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '
      function stanza() {
        if (uri != "" && types ~ /deb/ && comps ~ /main/ && suites ~ /(^| )[a-z]+( |$)/) { print uri; done = 1; exit }
        uri = ""; types = ""; comps = ""; suites = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { stanza(); next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "components:" { $1 = ""; comps = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
      END { if (!done) stanza() }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) !~ /-(security|updates|backports)/) { print $i; exit }
      }')
  fi
  [ -n "$uri" ] || return 1
  printf '%s\n' "${uri%/}"
}

install_build_deps() {
  local missing=() pkg
  for pkg in $BUILD_DEPS; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return
  fi
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

fetch_python_source() {
  local mirror apt keyring tarball
  mirror=$(system_mirror) || fail "no Debian mirror found in the system's apt sources"
  apt=$tmp/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/src"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ -f "$keyring" ]; then
    echo "deb-src [signed-by=$keyring] $mirror bullseye main" >"$apt/sources.list"
  else
    echo "deb-src $mirror bullseye main" >"$apt/sources.list"
  fi
  # apt downloads as the `_apt` user when run as root
  chmod 755 "$tmp" "$apt" "$apt/src"
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
    chown -R _apt "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/src"
  fi
  local opts=(
    -o "Dir::Etc::SourceList=$apt/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
  )
  say "fetching python2.7 sources (deb-src $mirror bullseye main, private apt config)"
  apt-get -qq "${opts[@]}" update
  (cd "$apt/src" && apt-get -qq "${opts[@]}" source --download-only python2.7 >/dev/null)
  tarball=$(find "$apt/src" -maxdepth 1 -name "python2.7_$PYTHON_VERSION.orig.tar.*" | head -n 1)
  [ -n "$tarball" ] || fail "bullseye's python2.7 source package has no $PYTHON_VERSION tarball"
  echo "$PYTHON_SHA256  $tarball" | sha256sum --check --quiet - ||
    fail "$tarball does not match upstream Python-$PYTHON_VERSION.tgz"
  tar -xf "$tarball" -C "$tmp"
  [ -x "$tmp/Python-$PYTHON_VERSION/configure" ] || fail "unexpected layout in $tarball"
}

build_python() {
  local src=$tmp/Python-$PYTHON_VERSION
  say "building CPython $PYTHON_VERSION into $PY_HOME (make -j$JOBS, a few minutes)"
  rm -rf "$PY_HOME"
  (
    cd "$src"
    ./configure --prefix="$PY_HOME" --enable-unicode=ucs4 --with-ensurepip=install \
      --with-system-ffi --with-system-expat >"$tmp/configure.log" 2>&1 ||
      { tail -n 40 "$tmp/configure.log" >&2; exit 1; }
    nice make -j"$JOBS" >"$tmp/make.log" 2>&1 || { tail -n 60 "$tmp/make.log" >&2; exit 1; }
    nice make install >"$tmp/install.log" 2>&1 || { tail -n 60 "$tmp/install.log" >&2; exit 1; }
  ) || fail "building CPython $PYTHON_VERSION failed"
  python_works || fail "the new $PY cannot import ssl, zlib, ctypes, bz2 or pyexpat"
}

install_suite() {
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
  tr ' ' '\n' <<<"$CONSTRAINTS" | sed '/^$/d' >"$tmp/constraints.txt"
  say "pip install autobahntestsuite==$SUITE_VERSION"
  # the last pip, setuptools and wheel releases for Python 2
  "$PY" -m pip install -q --no-warn-script-location \
    'pip==20.3.4' 'setuptools==44.1.1' 'wheel==0.37.1'
  # pip notes that the suite asks for setuptools==44.0.0; 44.1.1 works.
  "$PY" -m pip install -q --no-warn-script-location -c "$tmp/constraints.txt" \
    "autobahntestsuite==$SUITE_VERSION" 'autobahn[twisted]' service-identity unittest2
  # C accelerators for the suite; it runs without them, only slower
  "$PY" -m pip install -q --no-warn-script-location -c "$tmp/constraints.txt" wsaccel ujson ||
    say "wsaccel/ujson did not install (optional)"
  suite_works || fail "autobahntestsuite $SUITE_VERSION does not import"
}

write_launcher() {
  mkdir -p "$CACHE/bin"
  cat >"$WSTEST.new" <<EOF
#!$PY
# wstest from autobahntestsuite $SUITE_VERSION, written by wsproto's
# scripts/autobahn/install.sh. The suite runs unchanged, except that a TCP or
# TLS listener that names no interface binds 127.0.0.1 instead of all of them.
import sys
import warnings

warnings.filterwarnings("ignore", message="Python 2 is no longer supported")

from twisted.internet import posixbase


def loopback(listen, interface_index):
    def wrapper(self, *args, **kwargs):
        args = list(args)
        if len(args) > interface_index:
            args[interface_index] = args[interface_index] or "127.0.0.1"
        else:
            kwargs["interface"] = kwargs.get("interface") or "127.0.0.1"
        return listen(self, *args, **kwargs)
    return wrapper


# listenTCP(port, factory, backlog, interface)
# listenSSL(port, factory, contextFactory, backlog, interface)
posixbase.PosixReactorBase.listenTCP = loopback(posixbase.PosixReactorBase.listenTCP, 3)
posixbase.PosixReactorBase.listenSSL = loopback(posixbase.PosixReactorBase.listenSSL, 4)

from autobahntestsuite import wstest

if __name__ == "__main__":
    sys.exit(wstest.run())
EOF
  chmod 755 "$WSTEST.new"
  mv -f "$WSTEST.new" "$WSTEST"
}

if wstest_works && [ "${FORCE:-0}" != 1 ]; then
  say "wstest $SUITE_VERSION already in $CACHE"
  echo "$WSTEST"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (this installer needs Debian or a derivative)"
install_build_deps
if python_works && [ "${FORCE:-0}" != 1 ]; then
  say "CPython $PYTHON_VERSION already in $PY_HOME"
else
  fetch_python_source
  build_python
fi
suite_works || install_suite
write_launcher
wstest_works || fail "$WSTEST -a does not report AutobahnTestSuite $SUITE_VERSION"
say "installed $WSTEST"
echo "$WSTEST"
