#!/usr/bin/env bash
# Installs, once, the toolchain the firmware is built and run with, and prints
# the environment that selects it as KEY=VALUE lines (for `env $(...)`).
#
# The compiler is Debian's `rustc-web` with `cargo-web`, `rust-web-clippy`
# and the library
# sources of exactly the same version (`rust-web-src`), unpacked with
# `dpkg-deb -x` into a private cache folder; nothing of it is installed
# system-wide. With `RUSTC_BOOTSTRAP=1` and `-Zbuild-std=core` that compiler
# builds `core` for any bare-metal target, so no target needs downloading.
# The Cortex-M builds run under Debian's `qemu-system-arm`, the RISC-V build
# under `qemu-system-riscv32` (package `qemu-system-misc`); they and
# `libgit2-1.5`, which Debian's cargo links, are installed through apt.
#
# usage: firmware/scripts/toolchain.sh          install if needed, print env
#        firmware/scripts/toolchain.sh --check  exit 0 if installed and working
# env:   WSPROTO_MCU_CACHE   cache folder (default ~/.cache/wsproto-mcu)
set -euo pipefail

cache=${WSPROTO_MCU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsproto-mcu}
root="$cache/rust-debian"
libdir="$root/usr/lib/x86_64-linux-gnu"

say() { echo "toolchain: $*" >&2; }

# Root runs apt itself; anyone else through password-less sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    say "need root or password-less sudo to run: $*"
    return 1
  fi
}

rust_works() {
  [ -x "$root/usr/bin/rustc" ] && [ -x "$root/usr/bin/cargo" ] &&
    [ -f "$root/usr/lib/rustlib/src/rust/library/Cargo.lock" ] &&
    LD_LIBRARY_PATH="$libdir" "$root/usr/bin/rustc" -V >/dev/null 2>&1 &&
    LD_LIBRARY_PATH="$libdir" "$root/usr/bin/cargo" -V >/dev/null 2>&1 &&
    LD_LIBRARY_PATH="$libdir" "$root/usr/bin/clippy-driver" -V >/dev/null 2>&1 &&
    LD_LIBRARY_PATH="$libdir" "$root/usr/bin/rust-lld" -flavor gnu --version >/dev/null 2>&1
}

all_works() {
  rust_works && command -v qemu-system-arm >/dev/null && command -v qemu-system-riscv32 >/dev/null
}

if [ "${1:-}" = "--check" ]; then
  all_works
  exit $?
fi

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
}

apt_install() {
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

if ! command -v qemu-system-arm >/dev/null; then
  say "installing qemu-system-arm"
  apt_install qemu-system-arm
fi
if ! command -v qemu-system-riscv32 >/dev/null; then
  say "installing qemu-system-misc (qemu-system-riscv32)"
  apt_install qemu-system-misc
fi
if ! ldconfig -p | grep -q 'libgit2\.so\.1\.5'; then
  say "installing libgit2-1.5 (Debian's cargo links it)"
  apt_install libgit2-1.5
fi

if ! rust_works; then
  # Old package lists may only know a rustc-web too old for the workspace:
  # the security suite carries the current one (with rust-web-llvm).
  if ! apt-cache show rust-web-llvm >/dev/null 2>&1; then
    apt_update
  fi
  version=$(apt-cache policy rustc-web | awk '$1 == "Candidate:" { print $2 }')
  [ -n "$version" ] && [ "$version" != "(none)" ] || { say "apt knows no rustc-web"; exit 1; }
  # The first Depends line of a package that names PATTERN.
  dependency() {
    apt-cache depends "$1=$version" 2>/dev/null |
      awk -v pattern="$2" '$1 == "Depends:" && $2 ~ pattern { print $2; exit }'
  }
  libstd=$(dependency libstd-rust-web-dev '^libstd-rust-web-[0-9]')
  libllvm=$(apt-cache depends "$libstd" | awk '$1 == "Depends:" && $2 ~ /^libllvm[0-9]+$/ { print $2; exit }')
  [ -n "$libstd" ] && [ -n "$libllvm" ] || { say "cannot resolve rustc-web $version's libraries"; exit 1; }
  say "installing rustc-web $version into $root"
  staging="$cache/rust-debian.partial"
  rm -rf "$staging"
  mkdir -p "$staging/debs"
  (
    cd "$staging/debs"
    apt-get download -qq "rustc-web=$version" "cargo-web=$version" "rust-web-src=$version" \
      "rust-web-clippy=$version" \
      "libstd-rust-web-dev=$version" "$libstd" "rust-web-llvm=$version" \
      "$libllvm" "lld-${libllvm#libllvm}" >&2
  )
  for deb in "$staging"/debs/*.deb; do
    dpkg-deb -x "$deb" "$staging/root"
  done
  rm -rf "$root"
  mv "$staging/root" "$root"
  rm -rf "$staging"
  rust_works || { say "installed, but rustc, cargo or rust-lld does not run"; exit 1; }
fi
say "$(LD_LIBRARY_PATH="$libdir" "$root/usr/bin/rustc" -V), $(qemu-system-arm --version | head -n 1)"

echo "PATH=$root/usr/bin:$PATH"
echo "LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "RUSTC_BOOTSTRAP=1"
echo "RUSTC=$root/usr/bin/rustc"
echo "CARGO=$root/usr/bin/cargo"
