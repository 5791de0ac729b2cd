#!/usr/bin/env bash
# Thin wrapper: the benchmark lives in bench/lib/tls_handshakes.py (Python 3 stdlib only).
# Usage: bench/tls_handshakes.sh --help    (see bench/README.md)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found" >&2; exit 2; }
exec python3 "$here/lib/tls_handshakes.py" "$@"
