#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: install packages,
# build (host release), run every test through ctest (GoogleTest units, the
# CLI end to end, the Cortex-M55 freestanding build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./toolchain/install-deps.sh
cmake --preset host-release
cmake --build --preset host-release
ctest --preset host-release -j2
