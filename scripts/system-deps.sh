#!/usr/bin/env bash
# Install (as root on Debian/Ubuntu) or explain how to install the programs labkit needs.
#   scripts/system-deps.sh        what the tests need: the host C compiler, the ARM cross-compiler with its
#                                 C library, the Cortex-M4 emulator, Fashion-MNIST, PostgreSQL (a throwaway
#                                 server for the shared-study tests of `labkit search`) and Chromium (the
#                                 browser tests: the lessons in JupyterLab, the book); missing ones stop make
#   scripts/system-deps.sh demo   only the compilers and the emulator, for `make demo`: when they cannot be
#                                 installed it says what to install and lets the demo run the host rung alone
set -euo pipefail
mode="${1:-test}"
case "$mode" in test|demo) ;; *) echo "usage: $0 [test|demo]" >&2; exit 2 ;; esac

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
# newlib's semihosting specs ship in libnewlib-arm-none-eabi
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
  [ -n "$(arm-none-eabi-gcc -print-file-name=rdimon.specs | grep /)" ] || need+=(libnewlib-arm-none-eabi)
else
  need+=(libnewlib-arm-none-eabi)
fi
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
if [ "$mode" = test ]; then
  # lessons 05, 07 and 08 train on Fashion-MNIST, packaged by Debian (they fall back to digits)
  [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
  # `labkit search --storage postgresql://` is tested against a throwaway PostgreSQL server (initdb + pg_ctl)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
  # the browser tests drive Debian's Chromium with Playwright (never `playwright install`: it downloads)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi

[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  exit 0
fi

if [ "$mode" = demo ]; then
  cat >&2 <<MSG
The demo's emulated Cortex-M4 rung needs these system packages, which are missing: ${need[*]}
  Debian/Ubuntu (and Windows with WSL):
    sudo apt-get install --no-install-recommends ${need[*]}
  macOS (Homebrew):
    brew install --cask gcc-arm-embedded && brew install qemu
The demo runs the host rung without them; install them and run 'make demo' again for the board's CPU.
MSG
  exit 0
fi

cat >&2 <<MSG
The tests need these system packages, which are missing: ${need[*]}
  Debian/Ubuntu (and Windows with WSL):
    sudo apt-get install --no-install-recommends gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist postgresql chromium
  macOS (Homebrew):
    brew install --cask gcc-arm-embedded chromium && brew install qemu postgresql
    (then run the tests with LABKIT_CHROMIUM set to the Chromium binary)
Then run the command again.
MSG
exit 1
