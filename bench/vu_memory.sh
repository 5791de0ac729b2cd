#!/usr/bin/env bash
# Thin wrapper: the benchmark lives in bench/lib/vu_memory.py (Python 3 stdlib only).
# Usage: bench/vu_memory.sh --help    (see bench/README.md, "Scenarios")
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found" >&2; exit 2; }
exec python3 "$here/lib/vu_memory.py" "$@"
