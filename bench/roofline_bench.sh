#!/usr/bin/env bash
# Paper-scale decode against the memory roofline:
#
#   bench/roofline_bench.sh [--model NAME] [--layers N] [--tokens N] [--runs R] [-- PACK FLAGS...]
#
# Packs a synthetic image of ../shared/models/paper/NAME/config.json (default
# qwen2.5-1.5b-instruct, its first --layers 6 layers at full width: with the
# 151,936 x 1,536 embedding about 510 M weights; 0 = every layer) with qmc
# pack --synthetic --seed 1 and PACK FLAGS (default --preset paper-3mlc), then
# runs roofline_bench on it: greedy one-token decode on the host engine
# (--tokens, default 8, timed after a warm-up position, --runs times, default
# 3), the bytes it reads per token, a streaming read of as many bytes on 1
# thread and on every core in the same process, and the fraction
# bytes/token x tok/s / bandwidth.
#
# Environment: QMC (default build/host-release/host/qmc), ROOFLINE_BENCH
# (default its bench/roofline_bench), QMC_SHARED (default ../shared), TMPDIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qmc=${QMC:-$root/build/host-release/host/qmc}
bench=${ROOFLINE_BENCH:-$(dirname "$(dirname "$qmc")")/bench/roofline_bench}
shared=${QMC_SHARED:-$root/../shared}

model=qwen2.5-1.5b-instruct layers=6 tokens=8 runs=3
pack_flags=(--preset paper-3mlc)
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift ;;
    --layers) layers=$2; shift ;;
    --tokens) tokens=$2; shift ;;
    --runs) runs=$2; shift ;;
    --) shift; pack_flags=("$@"); break ;;
    *) echo "usage: $0 [--model NAME] [--layers N] [--tokens N] [--runs R] [-- PACK FLAGS...]" >&2; exit 2 ;;
  esac
  shift
done
for f in "$qmc" "$bench"; do
  [ -x "$f" ] || { echo "$0: $f is missing (build it first)" >&2; exit 2; }
done
config=$shared/models/paper/$model/config.json
[ -f "$config" ] || { echo "$0: $config is missing" >&2; exit 2; }
layer_flags=()
[ "$layers" -eq 0 ] || layer_flags=(--synthetic-layers "$layers")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image=$work/$model.qmc
"$qmc" pack --synthetic "$config" --seed 1 "${layer_flags[@]}" "${pack_flags[@]}" -o "$image" >/dev/null 2>"$work/pack.err" ||
  { cat "$work/pack.err" >&2; exit 1; }
weights=$("$qmc" inspect --json "$image" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(sum(t['rows'] * t['cols'] for t in s['tensors']))" 2>/dev/null || echo '?')
echo "$model, ${layers/#0/all} layers, pack flags: ${pack_flags[*]}; $weights weights; $(grep '^qmc pack:' "$work/pack.err" || true)"
"$bench" "$image" --tokens "$tokens" --runs "$runs"
