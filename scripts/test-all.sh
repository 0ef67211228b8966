#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, all tests, docs, the
# no_std proof, interop with real peers and a fuzz smoke run. `.ci/run` calls this script; run it
# yourself from the repository root with `bash scripts/test-all.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "format"
cargo fmt --all --check

step "clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs (warnings denied)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --all-features

step "no_std proof"
bash nostd-proof/check.sh

if [ -f interop/run.sh ]; then
  step "interop peers: install"
  bash interop/install.sh
  step "interop: Node ws, Python websockets, headless Chromium"
  bash interop/run.sh
fi

step "tests (unit, integration, property, doc)"
cargo test --workspace --all-features

step "fuzz smoke: every target for ${FUZZ_SECONDS:-20} s on its seed corpus (installs cargo-fuzz)"
bash fuzz/smoke.sh
