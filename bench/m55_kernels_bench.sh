#!/usr/bin/env bash
# Helium vs scalar matvec kernels on the Cortex-M55 under QEMU (MPS3 AN547),
# in instructions: QEMU runs with -icount shift=0 (one virtual nanosecond per
# guest instruction), so the board's SysTick (32 MHz of virtual time) counts
# one cycle per 31.25 instructions; see hal/mps3_an547/systick_clock.h.
#
#   bench/m55_kernels_bench.sh [--quick] [--model stories260K|kjv6M] [--only REGEX]
#
# For each layout (qmc in every bits x cell-bits pair, the paper's split
# scheme with 3-bit inliers in 3- and 2-bit cells, mxint4, fp16, f32) it
# packs the model and prints
#   - per token: the firmware's greedy generation with kernel=scalar and
#     kernel=helium (toolchain/qemu-m55.sh; the whole forward pass, so
#     attention, norms and sampling count too);
#   - per matvec: one ffn_down and one ffn_gate matvec by each kernel, from
#     the target program kernel-equality-m55 (which also checks both kernels
#     against the reference; its verdict is printed).
# --quick: stories260K, one layout, 4 tokens (a smoke run for ctest).
# --only: the layouts whose names match REGEX (e.g. 'c3$' or '^split').
#
# Environment: QMC (default build/host-release/host/qmc), QMC_M55_BUILD
# (default build/m55: the m55 preset's build, with qmc-fw-m55.elf and
# tests/target/kernel-equality-m55.elf), QMC_SHARED (default ../shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qmc=${QMC:-$root/build/host-release/host/qmc}
m55=${QMC_M55_BUILD:-$root/build/m55}
shared=${QMC_SHARED:-$root/../shared}
firmware=$m55/firmware/qmc-fw-m55.elf
checker=$m55/tests/target/kernel-equality-m55.elf

model=stories260K
quick=
only=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --model) model=$2; shift ;;
    --only) only=$2; shift ;;
    *) echo "usage: $0 [--quick] [--model stories260K|kjv6M] [--only REGEX]" >&2; exit 2 ;;
  esac
  shift
done
case $model in
  stories260K) checkpoint=$shared/models/stories260K.bin tokenizer=$shared/models/tok512.bin prompt="Once upon a time" ;;
  kjv6M) checkpoint=$shared/models/kjv6M.bin tokenizer=$shared/models/kjv_tok2048.bin prompt="In the beginning" ;;
  *) echo "$0: unknown model $model" >&2; exit 2 ;;
esac
for f in "$qmc" "$firmware" "$checker" "$checkpoint"; do
  [ -f "$f" ] || { echo "$0: $f is missing (build it first)" >&2; exit 2; }
done
steps=$([ -n "$quick" ] && echo 4 || echo 16)

work=$(mktemp -d)
qemu_pid=
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Instructions per token of greedy generation with `kernel`.
per_token() {
  local out
  out=$(QMC=$qmc QMC_M55_ELF=$firmware "$root/toolchain/qemu-m55.sh" "$1" "kernel=$2 steps=$steps temp=0 $prompt")
  [[ $out =~ qemu-m55:\ instructions/token=([0-9]+) ]] || { echo "$0: no figure from the firmware: $out" >&2; exit 1; }
  echo "${BASH_REMATCH[1]}"
}

# The target program's report on the image in $work/nvm; QEMU is stopped
# once it has printed its verdict (a halted M55 never exits).
check_on_target() {
  rm -rf "$work/nvm" && "$qmc" nvm write "$1" "$work/nvm" >/dev/null
  : >"$work/check.txt"
  qemu-system-arm -M mps3-an547 -display none -monitor none -serial stdio -icount shift=0 -kernel "$checker" \
    -device loader,file="$work/nvm/mram.bin",addr=0x60000000,force-raw=on \
    -device loader,file="$work/nvm/reram.bin",addr=0x64000000,force-raw=on \
    -device loader,file="$work/nvm/dram.bin",addr=0x68000000,force-raw=on >"$work/check.txt" 2>&1 &
  qemu_pid=$!
  for _ in $(seq 600); do
    grep -qE "kernel-equality: (PASS|FAIL)|qmc-fw: fault" "$work/check.txt" && break
    sleep 0.5
  done
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
}

# Instructions of one matvec of `tensor` by `kernel`, from the report.
per_matvec() {
  local line
  line=$(grep -m1 "kernel-equality: $1 " "$work/check.txt")
  line=${line#* cycles }  # past the error figures, which use the same names
  [[ $line =~ $2=([0-9]+) ]] || { echo "$0: no $2 cycles for $1" >&2; exit 1; }
  echo $((BASH_REMATCH[1] * 125 / 4))
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

layouts=()
if [ -n "$quick" ]; then
  layouts=("qmc_b3c3:--scheme qmc --bits 3 --cell-bits 3")
else
  for bits in 2 3 4; do
    for cells in 1 2 3; do layouts+=("qmc_b${bits}c${cells}:--scheme qmc --bits $bits --cell-bits $cells"); done
  done
  # split: rho 0.3 outliers as 5-bit codes, 3-bit inliers per channel (the paper's layout)
  for cells in 3 2; do
    layouts+=("split_b3c${cells}:--scheme qmc --bits 3 --cell-bits $cells --group channel --outlier-ratio 0.3 --outlier-bits 5")
  done
  layouts+=("mxint4_c2:--scheme mxint4 --cell-bits 2" "fp16:--scheme fp16" "f32:--scheme f32")
fi

echo "# $model on the Cortex-M55 (QEMU mps3-an547, -icount shift=0): instructions, scalar vs Helium kernels"
printf '%-10s | %14s %14s %6s | %-22s %12s %12s %6s | %s\n' layout "scalar/token" "helium/token" ratio \
  "matvec" scalar helium ratio check
status=0
for entry in "${layouts[@]}"; do
  name=${entry%%:*}
  [[ -z $only || $name =~ $only ]] || continue
  image=$work/$name.qmc
  # shellcheck disable=SC2086  # the options are words
  "$qmc" pack "$checkpoint" --tokenizer "$tokenizer" -q ${entry#*:} -o "$image" >/dev/null
  scalar=$(per_token "$image" scalar)
  helium=$(per_token "$image" helium)
  check_on_target "$image"
  verdict=$(grep -oE "kernel-equality: (PASS|FAIL)" "$work/check.txt" | awk '{print $2}')
  [ "$verdict" = PASS ] || { status=1; cat "$work/check.txt" >&2; }
  first=1
  for tensor in blk.0.ffn_down.weight blk.0.ffn_gate.weight; do
    line=$(grep -m1 "kernel-equality: $tensor " "$work/check.txt" | awk '{print $2 " " $3}')
    s=$(per_matvec "$tensor" scalar)
    h=$(per_matvec "$tensor" helium)
    if [ -n "$first" ]; then
      printf '%-10s | %14s %14s %6s | %-22s %12s %12s %6s | %s\n' "$name" "$scalar" "$helium" "$(ratio "$scalar" "$helium")" \
        "${line#blk.0.}" "$s" "$h" "$(ratio "$s" "$h")" "${verdict:-none}"
      first=
    else
      printf '%-10s | %14s %14s %6s | %-22s %12s %12s %6s |\n' "" "" "" "" "${line#blk.0.}" "$s" "$h" "$(ratio "$s" "$h")"
    fi
  done
done
exit $status
