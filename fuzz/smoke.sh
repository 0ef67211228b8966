#!/usr/bin/env bash
# Smoke run of every fuzz target: build them all, then run each for
# ${FUZZ_SECONDS:-20} seconds on a copy of its committed seed corpus (so the
# repository is never written to). Fails on any crash. Prints one line per
# target with executions, exec/s and coverage from libFuzzer's final stats.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

# cargo fuzz needs nightly flags (-Z sanitizer); fall back to stable with
# RUSTC_BOOTSTRAP=1 and no sanitizer when no nightly toolchain is installed.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    sanitizer=()
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo +stable fuzz)
    sanitizer=(--sanitizer none)
fi

targets=$("${fuzz[@]}" list)
"${fuzz[@]}" build "${sanitizer[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
ok=0
bad=0
for target in $targets; do
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
    if [ -d "corpus/$target" ]; then
        cp corpus/"$target"/seed-* "$work/corpus/$target/" 2>/dev/null || true
    fi
    log="$work/$target.log"
    if "${fuzz[@]}" run "${sanitizer[@]}" "$target" "$work/corpus/$target" -- \
        -max_total_time="$seconds" \
        -artifact_prefix="$work/artifacts/$target/" >"$log" 2>&1; then
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
        printf '%-26s ok     %s\n' "$target" "${done_line:-<no DONE line>}"
        ok=$((ok + 1))
    else
        status=1
        bad=$((bad + 1))
        printf '%-26s CRASH  see below\n' "$target"
        grep -E 'panicked at|assertion|ERROR: libFuzzer|Test unit written' "$log" | head -n 20 || tail -n 40 "$log"
        for crash in "$work/artifacts/$target"/*; do
            [ -e "$crash" ] || continue
            echo "  input (base64): $(base64 -w0 "$crash")"
        done
    fi
done
echo "fuzz: $ok passed, $bad failed"
exit "$status"
