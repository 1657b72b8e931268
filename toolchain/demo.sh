#!/usr/bin/env bash
# The main job from a fresh Debian 12 machine: install packages, build, pack
# the default model from ../shared into a QMC image, show what went where,
# flash it to an emulated board over its link and generate text with the firmware.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./toolchain/install-deps.sh
cmake --preset host-release
cmake --build --preset host-release --target qmc qmc-fw-emu
shared=${QMC_SHARED_DIR:-$root/../shared}
qmc=build/host-release/host/qmc
firmware=build/host-release/firmware/qmc-fw-emu
mkdir -p out
"$qmc" pack "$shared/models/stories260K.bin" --tokenizer "$shared/models/tok512.bin" \
  -o out/stories260K.qmc --scheme qmc --bits 3
"$qmc" inspect out/stories260K.qmc
# Flash the emulated board (window files in out/nvm) over its link, as a
# board on a UART is flashed, then talk to the firmware over the same link
# (stdin/stdout): one prompt per line, greedy unless the line sets temp=.
mkdir -p out/nvm
"$qmc" flash out/stories260K.qmc --port "exec:$firmware --nvm out/nvm"
printf 'steps=128 Once upon a time\n' | "$firmware" --nvm out/nvm
