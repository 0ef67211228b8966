#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, docs, the firmware on
# three microcontroller targets (two of them run under qemu) with its
# footprint budget, unit/integration/property/doc tests, interop with real
# peers, Autobahn|Testsuite conformance, the fuzz smoke run, and the steps
# listed below. `.ci/run` calls this script; run it yourself from the
# repository root with `bash scripts/test-all.sh`.
#
# Every step runs even if an earlier one failed, so one run shows everything
# that is wrong. A step that prints a line `NAME: N passed, M failed` is
# counted by those numbers; any other step counts as one check. The last line
# is the verdict: `all: N passed, M failed`. The exit status is 1 if anything
# failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

total_passed=0
total_failed=0
started=$(date +%s)
summary=()

# run_step NAME COMMAND...: runs the command, echoing its output, and adds
# its counts to the verdict.
run_step() {
  local name=$1
  shift
  printf '\n==> %s\n' "$name"
  local log
  log=$(mktemp)
  local t0
  t0=$(date +%s)
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  local secs=$(($(date +%s) - t0))
  local line passed failed
  line=$(grep -E '^[A-Za-z0-9 ._/-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [ -n "$line" ]; then
    passed=$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed.*$/\1/' <<<"$line")
    failed=$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed.*$/\2/' <<<"$line")
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
      failed=1 # the step failed outside what it counted
    fi
  elif [ "$status" -eq 0 ]; then
    passed=1 failed=0
  else
    passed=0 failed=1
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  summary+=("$(printf '%-44s %5d passed %3d failed %5ds' "$name" "$passed" "$failed" "$secs")")
}

# cargo test prints one `test result:` line per test binary; this adds up
# those in LOG into one line `LABEL: N passed, M failed`, the shape the step
# counter reads, and sets PASSED to N.
sum_test_results() { # LOG LABEL
  local failed
  PASSED=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) n += $i } END { print n + 0 }' "$1")
  failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) n += $i } END { print n + 0 }' "$1")
  echo "$2: ${PASSED:-0} passed, ${failed:-0} failed"
}

cargo_tests() {
  local log status
  log=$(mktemp)
  # The memory-budget attacks run in their own step, so their RSS figures show.
  cargo test --workspace --all-features -- --skip attack_ 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  sum_test_results "$log" "cargo test"
  rm -f "$log"
  return "$status"
}

# The four memory-budget attacks, with their output shown: each prints the
# server's peak RSS against the budget.
budget_attacks() {
  local log status
  log=$(mktemp)
  cargo test -p wsproto-adapters --all-features --test budget_attacks attack_ -- --nocapture --test-threads=1 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  sum_test_results "$log" "budget attacks"
  rm -f "$log"
  [ "${PASSED:-0}" -eq 4 ] || { echo "budget attacks: expected 4 attacks to run"; return 1; }
  return "$status"
}

toolchain() {
  cargo --version
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
}

run_step "toolchain" toolchain
run_step "format" cargo fmt --all --check
run_step "clippy (all targets, all features, -D warnings)" \
  cargo clippy --workspace --all-targets --all-features -- -D warnings
run_step "docs (warnings denied)" \
  env RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --all-features
run_step "mcu (firmware, 3 targets, qemu, budget)" bash firmware/scripts/check.sh
run_step "interop peers: install" bash interop/install.sh
run_step "interop: Node ws, Python websockets, headless Chromium" bash interop/run.sh
run_step "conformance: Autobahn|Testsuite, 8 runs (default subset)" bash scripts/conformance.sh
run_step "tests (unit, integration, property, doc)" cargo_tests
run_step "memory budget attacks (server RSS against the budget)" budget_attacks
run_step "fuzz smoke (every target, ${FUZZ_SECONDS:-20} s each)" bash fuzz/smoke.sh

printf '\n==> summary (%d s in all)\n' "$(($(date +%s) - started))"
printf '%s\n' "${summary[@]}"
echo "all: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
