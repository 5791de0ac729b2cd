#!/usr/bin/env bash
# Installs everything millstone needs to build, test and benchmark, from
# Debian 12 packages only. Safe to run again. Uses sudo when not root.
# --build-only: just what building the millstone binary needs (the image's
# build stage, deploy/Dockerfile): the toolchain, the libraries and the
# report's npm packages; no test peers, no browser.
set -euo pipefail

build_packages=(
  # toolchain
  g++ cmake ninja-build pkg-config
  # libraries
  libyaml-cpp-dev libfmt-dev libcli11-dev libsimdjson-dev nlohmann-json3-dev libssl-dev libre2-dev
  libsqlite3-dev libcurl4-openssl-dev libnghttp2-dev
  libprotobuf-dev libprotoc-dev  # gRPC: .proto files parsed at start-up, messages from JSON
  liburing-dev  # the io_uring I/O backend (--io uring)
)
packages=(
  "${build_packages[@]}"
  clang clang-format libclang-rt-14-dev sqlite3
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev curl
  openssl  # the TLS tests run openssl s_server and s_client and make certificates
  # peers we test and benchmark against
  wrk nginx-light apache2-utils nghttp2-client nghttp2-server websocketd prometheus
  rabbitmq-server  # millstone amqp's integration test starts its own broker on private ports
  prometheus-node-exporter  # a real target-monitoring endpoint for the report tests
  # the HTML report test renders in headless Chromium
  chromium
  python3-jsonschema  # the tests validate JSON summaries against docs/summary.schema.json
  python3-yaml  # ... and serve's answers against docs/api/openapi.yaml
)

npm_dirs=(report tests/interop)
if [ "${1:-}" = "--build-only" ]; then
  packages=("${build_packages[@]}")
  npm_dirs=(report)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm: the machine's own when present (it may be newer than Debian's).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx-light and prometheus start system services on some images; our
  # tests and benches run their own instances, so stop the system ones.
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl stop nginx prometheus prometheus-node-exporter rabbitmq-server >/dev/null 2>&1 || true
  fi
fi

# npm packages, pinned by their lock files: uPlot is embedded into the HTML
# report at build time; ws (a WebSocket peer) and toxiproxy-node-client (a
# Toxiproxy API client, driving millstone proxy), @grpc/grpc-js and @grpc/proto-loader
# (a gRPC server) are third-party peers for the tests; kubernetes-models holds the
# Kubernetes API schemas the manifests are checked against.
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in "${npm_dirs[@]}"; do
  if [ ! -d "$root/$dir/node_modules" ] || [ "$root/$dir/package-lock.json" -nt "$root/$dir/node_modules" ]; then
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$root/$dir/node_modules"
  fi
done
echo "install-deps: done"
