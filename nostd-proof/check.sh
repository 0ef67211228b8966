#!/usr/bin/env bash
# The no_std proof (see nostd-proof/src/main.rs):
#   1. build wsproto-nostd-proof with the `nostd` profile (no std, no allocator,
#      own panic handler) and run it: it must exit 0;
#   2. build it again with `--features std-leak` (std pulled in through
#      base64's default features): that build must FAIL with a duplicate
#      `panic_impl` lang item, which shows the check in step 1 has teeth.
# Usage, from anywhere: bash nostd-proof/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

pkg=wsproto-nostd-proof
bin="${CARGO_TARGET_DIR:-target}/nostd/wsproto-nostd-proof"

if ! cargo build -p "$pkg" --profile nostd; then
  echo "nostd-proof: FAIL: the no_std build failed (is something pulling in std or an allocator?)"
  exit 1
fi
echo "nostd-proof: ok: no_std build succeeded"

status=0
"$bin" || status=$?
if [ "$status" -ne 0 ]; then
  echo "nostd-proof: FAIL: $bin exited with status $status (expected 0)"
  exit 1
fi
echo "nostd-proof: ok: $bin ran and exited 0"

if leak_log=$(cargo build -p "$pkg" --profile nostd --features std-leak 2>&1); then
  printf '%s\n' "$leak_log"
  echo "nostd-proof: FAIL: the std-leak build succeeded; it must fail (the proof would not detect std)"
  exit 1
fi
pattern='error\[E0152\]: found duplicate lang item `panic_impl`'
if ! grep -qE "$pattern" <<<"$leak_log"; then
  printf '%s\n' "$leak_log"
  echo "nostd-proof: FAIL: the std-leak build failed, but not with a duplicate panic_impl lang item"
  exit 1
fi
grep -E "$pattern|first defined in crate \`std\`" <<<"$leak_log" | sed 's/^/    /'
echo "nostd-proof: ok: std-leak build failed as required (std detected: duplicate panic_impl)"
