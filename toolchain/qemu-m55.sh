#!/usr/bin/env bash
# Runs a packed QMC image on the Cortex-M55 under QEMU (MPS3 AN547) for one
# console line and prints what the firmware says:
#
#   toolchain/qemu-m55.sh IMAGE 'steps=64 Once upon a time'
#
# The image goes into NVM files (`qmc nvm write`), which QEMU loads at the
# windows' bases in linker/mps3_an547.ld; the line goes to UART0. A UART
# never closes, so the firmware would wait for the next line for ever: QEMU
# is stopped once the firmware has printed its stats line (exit 0), an
# error, a fault or "no image" (exit 1), or after QMC_QEMU_TIMEOUT seconds
# (exit 124).
#
# QEMU runs with -icount shift=0: every guest instruction advances virtual
# time by 1 ns, so runs are deterministic and the firmware's clock (SysTick
# at the AN547's 32 MHz, counting virtual time) measures instructions:
# instructions = cycles × 31.25, printed after the stats line. tok/s is then
# tokens per second of a core retiring one instruction per nanosecond.
#
# Environment: QMC (the qmc binary; default build/host-release/host/qmc),
# QMC_M55_ELF (default build/m55/firmware/qmc-fw-m55.elf, made by
# `cmake --preset m55 && cmake --build --preset m55`), QMC_QEMU_TIMEOUT
# (default 600).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ne 2 ]; then
  echo "usage: $0 IMAGE CONSOLE_LINE" >&2
  exit 2
fi
image=$1
line=$2
qmc=${QMC:-$root/build/host-release/host/qmc}
elf=${QMC_M55_ELF:-$root/build/m55/firmware/qmc-fw-m55.elf}
timeout_s=${QMC_QEMU_TIMEOUT:-600}
for f in "$qmc" "$elf"; do
  [ -f "$f" ] || { echo "$0: $f is missing (build it first)" >&2; exit 2; }
done

work=$(mktemp -d)
qemu_pid=
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$qmc" nvm write "$image" "$work/nvm" >/dev/null

# The window bases of linker/mps3_an547.ld.
mram_base=0x60000000
reram_base=0x64000000
dram_base=0x68000000

# A pipe chardev (not -nographic's stdio multiplexer, which lost input
# that arrived before the firmware enabled the UART's receiver).
mkfifo "$work/uart.in" "$work/uart.out"
timeout "$timeout_s" qemu-system-arm -M mps3-an547 -display none -monitor none -icount shift=0 \
  -chardev pipe,id=uart,path="$work/uart" -serial chardev:uart \
  -kernel "$elf" \
  -device loader,file="$work/nvm/mram.bin",addr=$mram_base,force-raw=on \
  -device loader,file="$work/nvm/reram.bin",addr=$reram_base,force-raw=on \
  -device loader,file="$work/nvm/dram.bin",addr=$dram_base,force-raw=on 2>"$work/qemu.err" &
qemu_pid=$!

# Both FIFOs opened read-write, so neither open blocks should QEMU not start.
exec 3<>"$work/uart.in" 4<>"$work/uart.out"
printf '%s\n' "$line" >&3

# Lines as they come; a line still streaming when `read` times out is kept
# and completed by the next read.
status=
pending=
while [ -z "$status" ]; do
  if IFS= read -r -t 1 -u 4 out; then
    out=$pending$out
    pending=
    printf '%s\n' "$out"
    case $out in
      "qmc-fw: stats "*)
        if [[ $out =~ cycles/token=([0-9]+) ]]; then
          echo "qemu-m55: instructions/token=$((BASH_REMATCH[1] * 125 / 4)) (-icount shift=0: cycles/token x 31.25)"
        fi
        status=0
        ;;
      "qmc-fw: error:"* | "qmc-fw: fault:"* | "qmc-fw: no image to run"*) status=1 ;;
    esac
  else
    pending+=$out
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      [ -z "$pending" ] || printf '%s\n' "$pending"
      rc=0
      wait "$qemu_pid" || rc=$?
      qemu_pid=
      cat "$work/qemu.err" >&2
      echo "$0: QEMU stopped before the firmware finished (exit $rc; 124: timed out after ${timeout_s} s)" >&2
      status=$((rc == 124 ? 124 : 1))
    fi
  fi
done
exit $status
