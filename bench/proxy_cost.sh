#!/usr/bin/env bash
# The fault proxy's own cost: nginx directly vs through `millstone proxy` (no
# toxic), in one run. The benchmark lives in bench/lib/proxy_cost.py (Python 3
# stdlib only). Usage: bench/proxy_cost.sh --help    (see bench/README.md)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found" >&2; exit 2; }
exec python3 "$here/lib/proxy_cost.py" "$@"
