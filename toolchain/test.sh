#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: install packages,
# build (host release), run every test through ctest (GoogleTest units, the
# CLI end to end, the Cortex-M55 freestanding build and its QEMU runs), then
# build the host again with AddressSanitizer + UndefinedBehaviorSanitizer
# (the host-debug preset, clang) and run the host suite once more under them,
# each libFuzzer target included for a few seconds. The sanitized run leaves
# out the M55 tests (target code, not built by the host compiler) and the
# paper-scale and package tests (the same host code at full size, and an
# install: minutes under ASan for nothing the other tests do not reach).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./toolchain/install-deps.sh
cmake --preset host-release
cmake --build --preset host-release
ctest --preset host-release -j2
cmake --preset host-debug
cmake --build --preset host-debug
ctest --preset host-debug -j2 -LE "m55|paper-scale|package"
