#!/usr/bin/env bash
# Installs everything millstone needs to build, test and benchmark, from
# Debian 12 packages only. Safe to run again. Uses sudo when not root.
set -euo pipefail

packages=(
  # toolchain
  g++ clang clang-format cmake ninja-build pkg-config libclang-rt-14-dev
  # libraries
  libyaml-cpp-dev libfmt-dev libcli11-dev libsimdjson-dev nlohmann-json3-dev libssl-dev libre2-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev curl
  # peers we test and benchmark against
  wrk nginx-light apache2-utils nghttp2-client
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light starts a system nginx on port 80 on some images; our benches
# run their own instance, so stop the system one if it was just started.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop nginx >/dev/null 2>&1 || true; fi
echo "install-deps: done"
