#!/usr/bin/env bash
# Installs every Debian 12 package QMC needs to build, test and run.
# Idempotent: packages already present are left alone, so re-runs are quick.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  zlib1g-dev libcli11-dev nlohmann-json3-dev libftdi1-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  gcc-arm-none-eabi binutils-arm-none-eabi picolibc-arm-none-eabi
  libstdc++-arm-none-eabi-picolibc libstdc++-arm-none-eabi-dev
  qemu-system-arm gdb-multiarch
  gnuplot-nox
  strace dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
