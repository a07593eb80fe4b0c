#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need.
# Idempotent: asks apt only for what is not installed yet.
set -euo pipefail

packages=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libssl-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libexif-dev
  libxnnpack-dev libpthreadpool-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libhiredis-dev redis-server libcurl4-openssl-dev
  libcmocka-dev python3-pytest python3-requests python3-numpy python3-opencv
  python3-cryptography openssl curl wrk npm
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
