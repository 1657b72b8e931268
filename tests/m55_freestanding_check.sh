#!/usr/bin/env bash
# Builds the whole Cortex-M55 side with the m55 preset (arm-none-eabi,
# picolibc): common/, the firmware image qmc-fw-m55.elf and the target test
# programs, and fails if the freestanding core or the linked firmware pulls
# in the heap, exceptions or stdio. It is also the build step (the ctest
# fixture m55_firmware) of the tests that run those images under QEMU.
set -euo pipefail
source_dir=$1
build_dir=${2:-$source_dir/build/m55}
cmake -S "$source_dir" -B "$build_dir" --preset m55 >/dev/null
cmake --build "$build_dir" -j2
forbidden='^(malloc|free|calloc|realloc|_sbrk|sbrk|_Znw.*|_Zna.*|_Zdl.*|_Zda.*|__cxa_throw|__cxa_allocate_exception|__gxx_personality_v0|[a-z_]*printf|puts|fopen|fwrite|abort)$'

lib=$build_dir/common/libqmc_common.a
undefined=$(arm-none-eabi-nm -u "$lib" | awk '{print $2}' | sort -u)
if bad=$(grep -E "$forbidden" <<<"$undefined"); then
  echo "common/ references forbidden symbols:"; echo "$bad"; exit 1
fi
echo "common/ builds freestanding for Cortex-M55; undefined symbols: $(tr '\n' ' ' <<<"$undefined")"

elf=$build_dir/firmware/qmc-fw-m55.elf
linked=$(arm-none-eabi-nm "$elf" | awk '{print $NF}' | sort -u)
if bad=$(grep -E "$forbidden" <<<"$linked"); then
  echo "qmc-fw-m55.elf links forbidden symbols:"; echo "$bad"; exit 1
fi
echo "qmc-fw-m55.elf links no heap, exception or stdio symbol"
