#!/usr/bin/env bash
# The main job from a fresh Debian 12 machine: install packages, build, pack
# the default model from ../shared into a QMC image and show what went where.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./toolchain/install-deps.sh
cmake --preset host-release
cmake --build --preset host-release --target qmc
shared=${QMC_SHARED_DIR:-$root/../shared}
qmc=build/host-release/host/qmc
mkdir -p out
"$qmc" pack "$shared/models/stories260K.bin" --tokenizer "$shared/models/tok512.bin" \
  -o out/stories260K.qmc --scheme qmc --bits 3
"$qmc" inspect out/stories260K.qmc
