#!/usr/bin/env bash
# Builds the firmware for every microcontroller target, runs it under qemu,
# and holds the footprint to firmware/budget.toml. Installs its toolchain
# first (scripts/toolchain.sh; cached), and checks formatting and lints.
#
# For each variant (a target with the plain job, or a target and another
# job; see `variants` below):
#   * a footprint build (no semihosting): text, rodata, data and bss of the
#     linked firmware, each checked against the budget;
#   * a qemu build (feature `qemu`), run on an MPS2 board: it must exit 0 and
#     prints its peak stack (painted at reset) and the state sizes, which are
#     checked against the budget too. Cortex-M runs on qemu's mps2-an386
#     (M4F) and mps2-an385 (M3) boards, riscv32 on its `virt` board.
# Then the same job with embedded-websocket 0.9.5 (feature `reference`) is
# built, run and printed beside ours, the embassy example (embassy-echo/)
# is built, and a build with the `std-leak` feature must fail for want of std.
#
# A figure fails when it exceeds its budget by more than `margin_percent`.
# Ends with the line `mcu: N passed, M failed`.
#
# usage: bash firmware/scripts/check.sh [--update-budget]
#   --update-budget   write the measured figures into budget.toml instead
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CARGO_TERM_COLOR=never

update=0
if [ "${1:-}" = "--update-budget" ]; then
  update=1
fi

# TARGET for the plain job, TARGET+FEATURE for another job (see Cargo.toml):
# `deflate` on a permessage-deflate connection, `adapter` through
# wsproto-adapters' embedded driver.
variants=(thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf
  thumbv7em-none-eabihf+deflate thumbv7em-none-eabihf+adapter)
budget_file="$here/budget.toml"
margin_percent=5

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "mcu: ok: $*"
}
fail() {
  failed=$((failed + 1))
  echo "mcu: FAIL: $*"
}
finish() {
  echo "mcu: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# Formatting, with the project's own toolchain (Debian's has no rustfmt).
for crate in . embassy-echo; do
  if (cd "$crate" && cargo fmt --check); then
    pass "cargo fmt --check ($crate)"
  else
    fail "cargo fmt --check ($crate): run cargo fmt in firmware/$crate"
  fi
done

toolchain_env=$(bash "$here/scripts/toolchain.sh") || {
  fail "toolchain install"
  finish
  exit 1
}
while IFS='=' read -r key value; do
  export "$key=$value"
done <<<"$toolchain_env"

# cargo_build TARGET [FEATURES]: a size-optimised firmware build; prints
# the executable's path.
cargo_build() {
  local target=$1 features=${2:-}
  local args=(build --release -Zbuild-std=core --target "$target")
  if [ -n "$features" ]; then
    args+=(--features "$features")
  fi
  nice cargo "${args[@]}" >&2 || return 1
  local dir=${CARGO_TARGET_DIR:-target}
  local exe="$dir/$target/release/wsproto-firmware"
  local copy="$dir/firmware/$target/${features:-footprint}"
  mkdir -p "$(dirname "$copy")"
  cp "$exe" "$copy"
  echo "$copy"
}

# sections EXE: "text rodata data bss" in bytes, from the section headers
# (.vectors, the 16-byte Cortex-M table, is not counted).
sections() {
  size -A "$1" | awk '
    $1 ~ /^\.text/ { text += $2 }
    $1 ~ /^\.s?rodata/ { rodata += $2 }
    $1 ~ /^\.s?data/ { data += $2 }
    $1 ~ /^\.s?bss/ { bss += $2 }
    END { printf "%d %d %d %d\n", text, rodata, data, bss }'
}

# qemu_run TARGET EXE: runs a qemu build; prints its output (qemu writes
# semihosting text to stderr), returns its status.
qemu_run() {
  local target=$1 exe=$2 machine
  local cmd=()
  case "$target" in
    thumbv7em-*) cmd=(qemu-system-arm -M mps2-an386) ;;
    thumbv6m-* | thumbv7m-*) cmd=(qemu-system-arm -M mps2-an385) ;;
    riscv32*) cmd=(qemu-system-riscv32 -M virt -bios none) ;;
  esac
  timeout 120 "${cmd[@]}" -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$exe" 2>&1
}

# Lints on the bare-metal targets, where the architecture's code is compiled.
for lint in thumbv7em-none-eabihf:qemu riscv32imc-unknown-none-elf:qemu \
  thumbv7em-none-eabihf:deflate,qemu thumbv7em-none-eabihf:adapter,qemu \
  thumbv7em-none-eabihf:reference,qemu; do
  if nice cargo clippy --release -Zbuild-std=core --target "${lint%%:*}" \
    --features "${lint#*:}" -- -D warnings; then
    pass "clippy ($lint)"
  else
    fail "clippy ($lint)"
  fi
done

# Measured figures: "TARGET.name value" lines.
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT
record() { echo "$1 $2" >>"$figures"; }

for variant in "${variants[@]}"; do
  target=${variant%%+*}
  job=""
  if [ "$variant" != "$target" ]; then
    job=${variant#*+}
  fi
  echo "==> $variant"
  if exe=$(cargo_build "$target" "$job"); then
    pass "$variant: footprint build"
    read -r text rodata data bss < <(sections "$exe")
    record "$variant.text" "$text"
    record "$variant.rodata" "$rodata"
    record "$variant.data" "$data"
    record "$variant.bss" "$bss"
  else
    fail "$variant: footprint build"
    continue
  fi

  if ! run_exe=$(cargo_build "$target" "${job:+$job,}qemu"); then
    fail "$variant: qemu build"
    continue
  fi
  pass "$variant: qemu build"
  case "$target" in
    riscv32*)
      if ! command -v qemu-system-riscv32 >/dev/null; then
        echo "mcu: $target: not run (no qemu-system-riscv32); built and measured only"
        continue
      fi
      ;;
  esac
  status=0
  output=$(qemu_run "$target" "$run_exe") || status=$?
  printf '%s\n' "$output" | sed '/^$/d; s/^/    /'
  if [ "$status" -eq 0 ] && grep -q '^firmware: status=0$' <<<"$output"; then
    pass "$variant: ran under qemu, every byte matched"
  else
    fail "$variant: qemu run exited $status (the firmware's status names the failing step)"
  fi
  stack=$(sed -n 's/^stack: peak=\([0-9]*\)$/\1/p' <<<"$output")
  if [ -n "$stack" ]; then
    record "$variant.stack" "$stack"
  fi
  # The state sizes are the same on every 32-bit target: keep each once.
  sed -n 's/^sizeof: //p' <<<"$output" | tr ' ' '\n' |
    sed -n 's/^\([A-Za-z0-9]*\)=\([0-9]*\)$/sizeof.\1 \2/p' |
    while read -r key value; do
      if ! grep -q "^$key " "$figures"; then
        record "$key" "$value"
      fi
    done
done

# The same job done with embedded-websocket 0.9.5 on the same runtime
# (feature `reference`), measured alike; printed beside ours, not budgeted.
reference_target=thumbv7em-none-eabihf
reference=""
echo "==> $reference_target, embedded-websocket 0.9.5 (reference)"
if exe=$(cargo_build "$reference_target" reference) &&
  run_exe=$(cargo_build "$reference_target" reference,qemu); then
  status=0
  output=$(qemu_run "$reference_target" "$run_exe") || status=$?
  printf '%s\n' "$output" | sed '/^$/d; s/^/    /'
  if [ "$status" -eq 0 ] && grep -q '^firmware: status=0$' <<<"$output"; then
    pass "reference job ran under qemu, every byte matched"
  else
    fail "reference job: qemu run exited $status"
  fi
  reference="$(sections "$exe") $(sed -n 's/^stack: peak=\([0-9]*\)$/\1/p' <<<"$output")"
else
  fail "reference job: build"
fi

# The embassy example only has to build (its network and clock are
# stand-ins); it shares the target folder, so core is compiled once.
echo "==> embassy-echo (build only)"
if (cd embassy-echo && nice cargo build --release -Zbuild-std=core \
  --target thumbv7em-none-eabihf --target-dir "${CARGO_TARGET_DIR:-$here/target}"); then
  read -r text rodata data bss < <(sections \
    "${CARGO_TARGET_DIR:-$here/target}/thumbv7em-none-eabihf/release/wsproto-embassy-echo")
  pass "embassy-echo builds for thumbv7em-none-eabihf (text=$text rodata=$rodata data=$data bss=$bss)"
else
  fail "embassy-echo: build"
fi

echo "==> std in the graph must not build"
if log=$(nice cargo build --release -Zbuild-std=core --target thumbv7em-none-eabihf \
  --features std-leak 2>&1); then
  fail "a build with std in the graph succeeded: the build would not notice std"
elif grep -q "can't find crate for \`std\`" <<<"$log"; then
  pass "a build with std in the graph fails (can't find crate for \`std\`)"
else
  printf '%s\n' "$log" | tail -n 20
  fail "the std-leak build failed, but not for want of std"
fi

if [ "$update" -eq 1 ]; then
  {
    echo "# Footprint budget of the firmware (firmware/scripts/check.sh)."
    echo "# Bytes; profile: opt-level z, fat LTO, one codegen unit, panic=abort."
    echo "# The check fails when a figure exceeds its budget by more than ${margin_percent} %."
    echo "# Rewrite with: bash firmware/scripts/check.sh --update-budget"
    section=""
    sort -t. -k1,1 -s "$figures" | while read -r key value; do
      name=${key##*.}
      group=${key%.*}
      if [ "$group" != "$section" ]; then
        section=$group
        printf '\n["%s"]\n' "$group"
      fi
      printf '%s = %s\n' "$name" "$value"
    done
  } >"$budget_file"
  echo "mcu: wrote $budget_file"
fi

# budget GROUP NAME: the figure's budget, or nothing.
budget() {
  awk -v group="[\"$1\"]" -v name="$2" '
    /^\[/ { in_group = ($0 == group); next }
    in_group && $1 == name && $2 == "=" { print $3; exit }' "$budget_file"
}

echo "==> footprint (bytes)"
printf '%-34s %9s %9s %9s %9s %9s\n' firmware text rodata data bss stack
for variant in "${variants[@]}"; do
  row=$(printf '%-34s' "$variant")
  for name in text rodata data bss stack; do
    value=$(awk -v k="$variant.$name" '$1 == k { print $2 }' "$figures")
    row+=$(printf ' %9s' "${value:--}")
  done
  echo "$row"
done
if [ -n "$reference" ]; then
  read -r text rodata data bss stack <<<"$reference"
  printf '%-34s %9s %9s %9s %9s %9s\n' "$reference_target (ew 0.9.5)" \
    "$text" "$rodata" "$data" "$bss" "${stack:--}"
fi
sed -n 's/^sizeof\.\([A-Za-z0-9]*\) \([0-9]*\)$/size_of::<\1>() = \2/p' "$figures"

while read -r key value; do
  group=${key%.*}
  name=${key##*.}
  limit=$(budget "$group" "$name")
  if [ -z "$limit" ]; then
    fail "$key = $value has no budget in budget.toml"
  elif [ $((value * 100)) -gt $((limit * (100 + margin_percent))) ]; then
    fail "$key = $value is over its budget $limit by more than ${margin_percent} %"
  else
    pass "$key = $value (budget $limit)"
  fi
done <"$figures"

finish
