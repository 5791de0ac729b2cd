#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY loads, one
# per line: what deploy/Dockerfile's runtime stage installs, so its list can
# never fall behind the libraries the build links.
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}
ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
  path=$(readlink -f "$lib")
  # Debian 12 merges /lib into /usr/lib; dpkg knows a file by either path.
  dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null ||
    { echo "runtime-packages: no package holds $path" >&2; exit 1; }
done | cut -d: -f1 | sort -u
