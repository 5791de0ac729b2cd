#!/usr/bin/env bash
# One command for a newcomer: install dependencies, build, and run a demo.
# With a URL argument the demo load goes to that URL instead of the built-in
# mock server:  scripts/setup.sh [http://127.0.0.1:8080/path]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
if [ $# -gt 0 ]; then
  exec ./build/millstone run "$1" -c 50 -d 5s
fi
exec ./build/millstone demo
