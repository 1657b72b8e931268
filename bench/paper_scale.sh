#!/usr/bin/env bash
# The paper's four models at full size, from synthetic weights
# (docs/synthetic-weights.md), on the emulated board:
#
#   bench/paper_scale.sh [--quick] [--layers N] [--steps N] [--model NAME]... [-- PACK FLAGS...]
#
# For each ../shared/models/paper/NAME/config.json it packs an image (qmc pack
# --synthetic --seed 1 and PACK FLAGS, default qmc's defaults), checks it
# with qmc inspect, writes it to a paper-scale board's NVM
# (hal/profiles/boards/paper-scale.json: 4095 MiB windows, a 2 GiB slot each),
# generates --steps greedy tokens with qmc-fw-emu and prints one row:
#   - bytes per window: SRAM as the firmware uses it (engine arena, tokenizer
#     and sampler workspaces: the stats line's sram_used), MRAM and ReRAM as
#     the image places them, DRAM as the image's dense weights plus the f32 KV
#     cache at the served context (the stats line's kv);
#   - pack: wall seconds, f32 MB generated per second, peak resident memory;
#   - decode: tokens per second on the emulated board (the stats line's tok/s,
#     prompt and generated positions alike);
# then the firmware's code size (qmc-fw-emu's text; qmc-fw-m55.elf's ITCM
# image when the m55 build is there): the same for every model.
# --quick: one layer per model (--synthetic-layers 1), 4 tokens.
# Full size takes long: about 15 minutes of packing per 3 B model on two cores.
#
# Environment: QMC (default build/host-release/host/qmc), QMC_FW_EMU (default
# its firmware/qmc-fw-emu), QMC_M55_BUILD (default build/m55), QMC_SHARED
# (default ../shared), TMPDIR (the images and NVM files: up to 4 GB at once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qmc=${QMC:-$root/build/host-release/host/qmc}
firmware=${QMC_FW_EMU:-$(dirname "$(dirname "$qmc")")/firmware/qmc-fw-emu}
m55=${QMC_M55_BUILD:-$root/build/m55}/firmware/qmc-fw-m55.elf
shared=${QMC_SHARED:-$root/../shared}
board=$root/hal/profiles/boards/paper-scale.json

layers=0
steps=16
models=()
pack_flags=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) layers=1 steps=4 ;;
    --layers) layers=$2; shift ;;
    --steps) steps=$2; shift ;;
    --model) models+=("$2"); shift ;;
    --) shift; pack_flags=("$@"); break ;;
    *) echo "usage: $0 [--quick] [--layers N] [--steps N] [--model NAME]... [-- PACK FLAGS...]" >&2; exit 2 ;;
  esac
  shift
done
[ ${#models[@]} -gt 0 ] || models=(llama-3.2-3b qwen2.5-1.5b-instruct phi-1_5 hymba-1.5b-base)
for f in "$qmc" "$firmware"; do
  [ -x "$f" ] || { echo "$0: $f is missing (build it first)" >&2; exit 2; }
done
layer_flags=()
[ "$layers" -eq 0 ] || layer_flags=(--synthetic-layers "$layers")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The value of key=VALUE in a stats line.
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

echo "paper-scale models on the emulated board (${layers/#0/all} layers, $steps greedy tokens; pack flags: ${pack_flags[*]:-defaults})"
printf '%-22s %5s %9s %9s %9s %9s %8s %8s %8s %8s\n' model layers "SRAM MB" "MRAM MB" "ReRAM MB" "DRAM MB" "pack s" "pack MB/s" "pack GB" "tok/s"
for name in "${models[@]}"; do
  config=$shared/models/paper/$name/config.json
  [ -f "$config" ] || { echo "$0: $config is missing" >&2; exit 2; }
  image=$work/$name.qmc nvm=$work/$name.nvm
  /usr/bin/time -f '%M' -o "$work/rss" \
    "$qmc" pack --synthetic "$config" --seed 1 "${layer_flags[@]}" "${pack_flags[@]}" -o "$image" \
    >"$work/pack.out" 2>"$work/pack.err" || { cat "$work/pack.err" >&2; exit 1; }
  # "qmc pack: 12851.2 MB of synthetic f32 weights in 812.34 s (15.8 MB/s)"
  timing=$(grep '^qmc pack: .* MB of synthetic' "$work/pack.err")
  pack_s=$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<<"$timing")
  pack_rate=$(sed -n 's/.*(\([0-9.]*\) MB\/s).*/\1/p' <<<"$timing")
  pack_gb=$(awk -v k="$(cat "$work/rss")" 'BEGIN { printf "%.2f", k * 1024 / 1e9 }')

  summary=$("$qmc" inspect --json "$image")
  window() { python3 -c "import json,sys; print(json.load(sys.stdin)['bytes_by_window']['$1'])" <<<"$summary"; }
  n_layers=$(python3 -c "import json,sys; print(json.load(sys.stdin)['model']['n_layers'])" <<<"$summary")
  mram=$(window mram) reram=$(window reram) dram=$(window dram)

  "$qmc" nvm write "$image" "$nvm" --board "$board" >/dev/null
  rm -f "$image"  # the NVM files hold it now
  out=$(printf 'steps=%s The capital of France is\n' "$steps" | "$firmware" --nvm "$nvm" --board "$board")
  stats=$(grep '^qmc-fw: stats ' <<<"$out") || { echo "$0: $name: the firmware ran nothing:" >&2; echo "$out" >&2; exit 1; }
  rm -rf "$nvm"
  printf '%-22s %5s %9s %9s %9s %9s %8s %8s %8s %8s\n' "$name" "$n_layers" "$(mb "$(field sram_used "$stats")")" \
    "$(mb "$mram")" "$(mb "$reram")" "$(mb $((dram + $(field kv "$stats"))))" "$pack_s" "$pack_rate" "$pack_gb" \
    "$(field 'tok\/s' "$stats")"
done
echo "(SRAM: workspaces in use; DRAM: image + f32 KV cache at the served context; pack GB: peak resident memory)"
printf 'firmware code: qmc-fw-emu text %s bytes' "$(size -A "$firmware" | awk '$1 == ".text" { print $2 }')"
if [ -f "$m55" ]; then
  printf '; qmc-fw-m55.elf ITCM image (text, rodata, data load) %s bytes of 524288' \
    "$(arm-none-eabi-size -A "$m55" | awk '$1 == ".vectors" || $1 == ".text" || $1 == ".ARM.exidx" || $1 == ".data" { n += $2 } END { print n }')"
fi
echo
