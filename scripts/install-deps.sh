#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages kiln needs to build, test and bench.
# Idempotent and quick when everything is present: it asks dpkg first and only runs
# apt-get for what is missing. Needs root (or sudo) only when something must be installed.
set -euo pipefail

pkgs=(
    build-essential cmake ninja-build pkg-config
    clang libclang-rt-14-dev          # ASan/UBSan and libFuzzer builds
    libsimdjson-dev                   # JSON parsing (json/json_simdjson.cpp)
    zlib1g-dev libzstd-dev liblz4-dev # envelope and blob compression, queue checksums
    libdeflate-dev                    # fast whole-buffer gzip/deflate decoding
    libsqlite3-dev                    # embedded store
    libmicrohttpd-dev                 # HTTP server
    libmsgpack-dev                    # Relay->Sentry message decoding
    python3 time gzip zstd curl       # test drivers (tests/cli/serve.sh posts with curl)
)
if [ "${KL_BENCH_DEPS:-0}" = 1 ]; then
    pkgs+=(wrk hyperfine)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
