#!/usr/bin/env bash
# Builds common/ with the m55 preset (arm-none-eabi, picolibc) and fails if the
# freestanding core pulls in the heap, exceptions or stdio.
set -euo pipefail
source_dir=$1
cd "$source_dir"
cmake --preset m55 >/dev/null
cmake --build --preset m55 --target qmc_common
lib=build/m55/common/libqmc_common.a
undefined=$(arm-none-eabi-nm -u "$lib" | awk '{print $2}' | sort -u)
forbidden='^(malloc|free|calloc|realloc|_Znw.*|_Zna.*|_Zdl.*|_Zda.*|__cxa_throw|__cxa_allocate_exception|__gxx_personality_v0|printf|puts|fopen|fwrite|abort)$'
if bad=$(grep -E "$forbidden" <<<"$undefined"); then
  echo "common/ references forbidden symbols:"; echo "$bad"; exit 1
fi
echo "common/ builds freestanding for Cortex-M55; undefined symbols: $(tr '\n' ' ' <<<"$undefined")"
