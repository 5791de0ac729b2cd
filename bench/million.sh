#!/usr/bin/env bash
# Thin wrapper: the benchmark lives in bench/lib/million.py (Python 3 stdlib only).
# Usage: bench/million.sh ws|http|tcp [-n N] [--rate R] [--hold S] [--long]
#        N=300000 HOLD=60 bench/million.sh ws
# See bench/README.md ("A million connections") and docs/scale.md. Needs root
# for the sysctls it raises for the run (printed, and restored at exit).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found" >&2; exit 2; }
exec python3 "$here/lib/million.py" "$@"
