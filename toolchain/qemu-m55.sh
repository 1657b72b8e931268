#!/usr/bin/env bash
# Runs the QMC firmware on the Cortex-M55 under QEMU (MPS3 AN547), one of
# three ways:
#
#   toolchain/qemu-m55.sh IMAGE 'steps=64 Once upon a time'
#   toolchain/qemu-m55.sh --nvm DIR 'steps=64 Once upon a time'
#   qmc flash IMAGE --port "exec:toolchain/qemu-m55.sh --nvm DIR --link"
#
# --gdb [PORT] before any of these starts QEMU with its GDB stub on TCP
# PORT (default 1234), halted at reset, and without the timeout: connect
# with `gdb-multiarch build/m55/firmware/qmc-fw-m55.elf -ex 'target remote
# :PORT'`, then set breakpoints and continue.
#
# IMAGE LINE: the image goes into NVM files (`qmc nvm write`), which QEMU
# loads at the windows' bases in linker/mps3_an547.ld; what the firmware
# writes dies with QEMU.
#
# --nvm DIR: a board whose NVM persists like the real one's. The AN547's
# 2 GiB DDR at 0x60000000 (QEMU's machine RAM on this board: it holds the
# MRAM, ReRAM and DRAM windows) is the sparse file DIR/an547-ddr.bin, mapped
# shared, so what a flash writes is there at the next boot. A new DIR is a
# blank board (all zeros: no image, waiting for a flash).
#   With LINE, the board boots what DIR holds and answers the line.
#   With --link, stdin/stdout are UART0 byte for byte (a pipe chardev, no
#   terminal or monitor in between), the board's link for `qmc flash` and
#   `qmc read`; QEMU stops when stdin closes.
#
# For a LINE, the line goes to UART0. A UART never closes, so the firmware
# would wait for the next line for ever: QEMU is stopped once the firmware
# has printed its stats line (exit 0), an error, a fault or "no image"
# (exit 1), or after QMC_QEMU_TIMEOUT seconds (exit 124).
#
# QEMU runs a LINE with -icount shift=0: every guest instruction advances
# virtual time by 1 ns, so runs are deterministic and the firmware's clock
# (SysTick at the AN547's 32 MHz, counting virtual time) measures
# instructions: instructions = cycles × 31.25, printed after the stats line.
# tok/s is then tokens per second of a core retiring one instruction per
# nanosecond. A --link runs without it: nothing is counted there, and
# flashing was 10-20 % faster without it.
#
# Environment: QMC (the qmc binary; default build/host-release/host/qmc),
# QMC_M55_ELF (default build/m55/firmware/qmc-fw-m55.elf, made by
# `cmake --preset m55 && cmake --build --preset m55`), QMC_QEMU_TIMEOUT
# (default 600; a --link has none: its host ends it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() {
  echo "usage: $0 [--gdb [PORT]] IMAGE CONSOLE_LINE | $0 [--gdb [PORT]] --nvm DIR CONSOLE_LINE | $0 [--gdb [PORT]] --nvm DIR --link" >&2
  exit 2
}
gdb=()
if [ "${1-}" = --gdb ]; then
  port=1234
  shift
  if [[ ${1-} =~ ^[0-9]+$ ]]; then
    port=$1
    shift
  fi
  gdb=(-S -gdb "tcp::$port")
fi
[ $# -eq 2 ] || [ $# -eq 3 ] || usage
image=
nvm=
if [ "$1" = --nvm ]; then
  [ $# -eq 3 ] || usage
  nvm=$2
  shift 2
else
  [ $# -eq 2 ] || usage
  image=$1
  shift
fi
line=$1
qmc=${QMC:-$root/build/host-release/host/qmc}
elf=${QMC_M55_ELF:-$root/build/m55/firmware/qmc-fw-m55.elf}
timeout_s=${QMC_QEMU_TIMEOUT:-600}
[ ${#gdb[@]} -eq 0 ] || timeout_s=0  # no limit while someone debugs (0 disables timeout)
for f in ${image:+"$qmc"} "$elf"; do
  [ -f "$f" ] || { echo "$0: $f is missing (build it first)" >&2; exit 2; }
done
[ ${#gdb[@]} -eq 0 ] || echo "qemu-m55: halted at reset, GDB stub on port $port: gdb-multiarch $elf -ex 'target remote :$port'" >&2

work=$(mktemp -d)
qemu_pid=
relays=()
cleanup() {
  for pid in $qemu_pid "${relays[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$image" ]; then
  "$qmc" nvm write "$image" "$work/nvm" >/dev/null
  # The window bases of linker/mps3_an547.ld.
  memory=(-device loader,file="$work/nvm/mram.bin",addr=0x60000000,force-raw=on
          -device loader,file="$work/nvm/reram.bin",addr=0x64000000,force-raw=on
          -device loader,file="$work/nvm/dram.bin",addr=0x68000000,force-raw=on)
else
  mkdir -p "$nvm"
  ddr=$nvm/an547-ddr.bin
  [ -f "$ddr" ] || truncate -s 2G "$ddr"
  memory=(-object memory-backend-file,id=ddr,size=2G,mem-path="$ddr",share=on -machine memory-backend=ddr)
fi

# A pipe chardev (not -nographic's stdio multiplexer, which lost input
# that arrived before the firmware enabled the UART's receiver).
mkfifo "$work/uart.in" "$work/uart.out"
icount=(-icount shift=0)
[ "$line" != --link ] || icount=()
qemu=(qemu-system-arm -M mps3-an547 -display none -monitor none "${icount[@]}" "${gdb[@]}"
      -chardev pipe,id=uart,path="$work/uart" -serial chardev:uart -kernel "$elf" "${memory[@]}")

if [ "$line" = --link ]; then
  "${qemu[@]}" 2>"$work/qemu.err" &
  qemu_pid=$!
  # Both FIFOs opened read-write, so neither open blocks should QEMU not start.
  # fd 5: stdin, which a background command without job control would not get.
  exec 3<>"$work/uart.in" 4<>"$work/uart.out" 5<&0
  cat <&4 &  # UART0 -> stdout
  relays+=($!)
  cat <&5 >&3 &  # stdin -> UART0, until the host closes the link
  relays+=($!)
  wait -n "$qemu_pid" "${relays[1]}" || true
  if ! kill -0 "$qemu_pid" 2>/dev/null; then
    qemu_pid=
    cat "$work/qemu.err" >&2
    echo "$0: QEMU stopped" >&2
    exit 1
  fi
  exit 0
fi

timeout "$timeout_s" "${qemu[@]}" 2>"$work/qemu.err" &
qemu_pid=$!

exec 3<>"$work/uart.in" 4<>"$work/uart.out"
printf '%s\n' "$line" >&3

# UART0 goes to a file; its complete lines are printed as they come. (Not
# `read -t` on the FIFO: a timeout landing as a line's newline is read loses
# that newline, which joined two lines of text under load.)
: >"$work/uart.log"  # before the loop reads it: the relay below may not have started yet
cat <&4 >>"$work/uart.log" &
relays+=($!)
status=
printed=0
while [ -z "$status" ]; do
  complete=$(wc -l <"$work/uart.log")
  if [ "$complete" -gt "$printed" ]; then
    while IFS= read -r out; do
      printf '%s\n' "$out"
      case $out in
        "qmc-fw: stats "*)
          if [[ $out =~ cycles/token=([0-9]+) ]]; then
            echo "qemu-m55: instructions/token=$((BASH_REMATCH[1] * 125 / 4)) (-icount shift=0: cycles/token x 31.25)"
          fi
          status=0
          break
          ;;
        "qmc-fw: error:"* | "qmc-fw: fault:"* | "qmc-fw: no image to run"*) status=1; break ;;
      esac
    done < <(sed -n "$((printed + 1)),${complete}p" "$work/uart.log")
    printed=$complete
  elif ! kill -0 "$qemu_pid" 2>/dev/null; then
    # What QEMU wrote last, a partial line included.
    sed -n "$((printed + 1)),\$p" "$work/uart.log"
    rc=0
    wait "$qemu_pid" || rc=$?
    qemu_pid=
    cat "$work/qemu.err" >&2
    echo "$0: QEMU stopped before the firmware finished (exit $rc; 124: timed out after ${timeout_s} s)" >&2
    status=$((rc == 124 ? 124 : 1))
  else
    sleep 0.1
  fi
done
exit $status
