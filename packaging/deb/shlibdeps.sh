#!/usr/bin/env bash
# Prints the Depends: list for a binary (dpkg-shlibdeps wants a debian/control in
# its current folder, so it runs in a throw-away one).
set -euo pipefail
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/debian"
printf 'Source: bioserver\n\nPackage: bioserver\nArchitecture: amd64\n' > "$tmp/debian/control"
cd "$tmp"
dpkg-shlibdeps -O -e "$bin" 2>/dev/null | sed -n 's/^shlibs:Depends=//p'
