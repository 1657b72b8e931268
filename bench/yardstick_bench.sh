#!/usr/bin/env bash
# qmc run against what a user would otherwise run on kjv6M: llama2.c's run.c
# (f32) and runq.c (int8, groups of 32) from ../shared/yardsticks, built as
# their users build them for speed (cc -Ofast -march=native), measured in the
# same run (docs/benchmarks.md):
#
#   bench/yardstick_bench.sh [--quick] [--runs N] [--steps N]
#
# It packs kjv6M with kjv_tok2048.bin as an f32 image and as each quantized
# layout (the 3-bit presets paper-3mlc, paper-2mlc and exact-outliers, rtn
# 3-bit, mxint4, fp16), then for each image runs its yardstick and qmc run
# alternately (yardstick, qmc, yardstick, qmc, ...; one untimed warm-up of
# each first): same prompt, --steps positions, greedy. The f32 image pairs
# with run.c on ../models/kjv6M.bin, every quantized image with runq.c on
# kjv6M_q80.bin. Per image it prints
#   - the median whole-process wall seconds of each side;
#   - the median of the paired ratios yardstick seconds / qmc seconds (> 1:
#     qmc is faster), with their min and max as the spread;
#   - the median decode tok/s each side reports ("achieved tok/s": every
#     position after the first, so without loading and warm-up);
#   - f32 only: whether qmc's greedy text equals run.c's in every pair (same
#     model, tokenizer and argmax): OK, or the first differing byte, and then
#     the script exits 1. Quantized texts differ from runq.c's by design.
# --runs N: pairs per image (default 7); --steps N: positions, prompt included
# (default 256); --quick: 3 pairs of 64 positions.
#
# Environment: QMC (default build/host-release/host/qmc), QMC_SHARED (default
# ../shared), CC (default cc), TMPDIR (the yardstick binaries and images).
set -euo pipefail
export LC_ALL=C  # a '.' decimal point in EPOCHREALTIME and awk
root=$(cd "$(dirname "$0")/.." && pwd)
qmc=${QMC:-$root/build/host-release/host/qmc}
shared=${QMC_SHARED:-$root/../shared}
cc=${CC:-cc}
prompt="And God said"

runs=7
steps=256
while [ $# -gt 0 ]; do
  case $1 in
    --quick) runs=3 steps=64 ;;
    --runs) runs=$2; shift ;;
    --steps) steps=$2; shift ;;
    *) echo "usage: $0 [--quick] [--runs N] [--steps N]" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ && $steps =~ ^[1-9][0-9]*$ ]] || { echo "$0: --runs and --steps take positive integers" >&2; exit 2; }
[ -x "$qmc" ] || { echo "$0: qmc is missing: $qmc (build it, or set QMC)" >&2; exit 1; }
model=$shared/models/kjv6M.bin tokenizer=$shared/models/kjv_tok2048.bin q80=$shared/yardsticks/kjv6M_q80.bin
for f in "$model" "$tokenizer" "$q80" "$shared/yardsticks/run.c" "$shared/yardsticks/runq.c"; do
  [ -f "$f" ] || { echo "$0: $f is missing (../shared, or set QMC_SHARED)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for y in run runq; do
  "$cc" -Ofast -march=native -o "$work/$y" "$shared/yardsticks/$y.c" -lm 2>"$work/cc.err" ||
    { cat "$work/cc.err" >&2; echo "$0: $cc failed on $y.c" >&2; exit 1; }
done

# Image name, then its qmc pack flags.
layouts=(
  "f32 --scheme f32"
  "paper-3mlc --preset paper-3mlc"
  "paper-2mlc --preset paper-2mlc"
  "exact-outliers --preset exact-outliers"
  "rtn-3b --scheme rtn --bits 3"
  "mxint4 --scheme mxint4"
  "fp16 --scheme fp16"
)
for layout in "${layouts[@]}"; do
  read -r name flags <<<"$layout"
  # shellcheck disable=SC2086 # flags are words
  "$qmc" pack "$model" --tokenizer "$tokenizer" $flags -q -o "$work/$name.qmc" >/dev/null 2>"$work/pack.err" ||
    { cat "$work/pack.err" >&2; echo "$0: qmc pack $flags failed" >&2; exit 1; }
done

# Runs a command with stdout to $1.out and stderr to $1.err; sets `seconds`
# to its whole-process wall time and `tps` to the tok/s it reports.
timed() {
  local out=$1; shift
  local t0=$EPOCHREALTIME
  "$@" >"$out.out" 2>"$out.err" || { cat "$out.err" >&2; echo "$0: failed: $*" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  tps=$(sed -n 's/^achieved tok\/s: \([0-9.]*\).*/\1/p' "$out.err")
}
# Median, min and max of the arguments: "median min max".
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

echo "kjv6M, prompt \"$prompt\", $steps greedy positions, $runs alternated pairs per image;"
echo "whole-process wall seconds (medians), ratio = yardstick s / qmc s per pair (> 1: qmc faster)"
printf '%-15s %-9s %8s %8s %7s %15s %10s %10s  %s\n' image yardstick "yard s" "qmc s" ratio "ratio min-max" \
  "yard tok/s" "qmc tok/s" "greedy text"
mismatch=0
for layout in "${layouts[@]}"; do
  read -r name _ <<<"$layout"
  if [ "$name" = f32 ]; then
    yard=(run "$work/run" "$model")
  else
    yard=(runq "$work/runq" "$q80")
  fi
  yard_cmd=("${yard[@]:1}" -z "$tokenizer" -t 0 -n "$steps" -i "$prompt")
  qmc_cmd=("$qmc" run "$work/$name.qmc" -t 0 -n "$steps" -p "$prompt" --seed 1)
  timed "$work/y" "${yard_cmd[@]}"  # warm-up: page cache, CPU frequency
  timed "$work/q" "${qmc_cmd[@]}"
  ys=() qs=() ratios=() ytps=() qtps=() text=OK
  [ "$name" = f32 ] || text=-
  for ((i = 0; i < runs; i++)); do
    timed "$work/y" "${yard_cmd[@]}"; ys+=("$seconds") ytps+=("$tps")
    timed "$work/q" "${qmc_cmd[@]}"; qs+=("$seconds") qtps+=("$tps")
    ratios+=("$(awk -v y="${ys[-1]}" -v q="$seconds" 'BEGIN { print y / q }')")
    if [ "$name" = f32 ] && [ "$text" = OK ]; then
      [ -s "$work/y.out" ] || { echo "$0: ${yard[0]} printed no text" >&2; exit 1; }
      # cmp: "y.out q.out differ: char N, line L", or "cmp: EOF on y.out after byte N, ..."
      if ! diff=$(cmp "$work/y.out" "$work/q.out" 2>&1); then
        byte=$(sed -n 's/.*\(byte\|char\) \([0-9]*\).*/\2/p' <<<"$diff")
        case $diff in
          *EOF*) text="differs: one text ends after byte ${byte:-0}" ;;
          *) text="differs at byte $byte" ;;
        esac
      fi
    fi
  done
  read -r ymed _ _ < <(stats "${ys[@]}")
  read -r qmed _ _ < <(stats "${qs[@]}")
  read -r rmed rmin rmax < <(stats "${ratios[@]}")
  read -r ytmed _ _ < <(stats "${ytps[@]}")
  read -r qtmed _ _ < <(stats "${qtps[@]}")
  [ "${text:0:3}" != "dif" ] || mismatch=1
  printf '%-15s %-9s %8.3f %8.3f %7.3f %15s %10.0f %10.0f  %s\n' "$name" "${yard[0]}.c" "$ymed" "$qmed" "$rmed" \
    "$(printf '%.3f-%.3f' "$rmin" "$rmax")" "$ytmed" "$qtmed" "$text"
done
if [ "$mismatch" -ne 0 ]; then
  echo "$0: qmc run's greedy text on the f32 image differs from run.c's" >&2
  exit 1
fi
