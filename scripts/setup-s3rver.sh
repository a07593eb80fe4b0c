#!/usr/bin/env bash
# Installs the S3-compatible server that the API tests keep liveness evidence in
# (s3rver 3.7.1 and its dependencies, pinned in tests/s3rver/package-lock.json)
# into build/s3rver. `npm ci` installs exactly the locked versions and checks every
# package against its sha512 integrity in the lock file; install scripts are not
# run. The s3rver entry of the lock must carry the integrity pinned here, so a
# changed lock file is noticed. Nothing is fetched when build/s3rver is current.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/s3rver
integrity='sha512-H9KIX6n8NqcfoE4ziFNbQASBQfjcNJgb+3wbT9L5iotEqfOncFO1c38cfJSFSo7xXTu1zM9HA6t2u9xKNlYRaA=='
stamp="$dest/.installed"
lock_sum=$(cat tests/s3rver/package.json tests/s3rver/package-lock.json | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$lock_sum" ]]; then exit 0; fi
/usr/bin/python3 - "$integrity" <<'PY'
import json, sys
entry = json.load(open("tests/s3rver/package-lock.json"))["packages"]["node_modules/s3rver"]
if entry.get("version") != "3.7.1" or entry.get("integrity") != sys.argv[1]:
    sys.exit("setup-s3rver: tests/s3rver/package-lock.json does not pin s3rver 3.7.1 with the expected integrity")
PY
rm -rf "$dest" && mkdir -p "$dest"
cp tests/s3rver/package.json tests/s3rver/package-lock.json "$dest/"
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --silent)
echo "$lock_sum" > "$stamp"
echo "setup-s3rver: s3rver 3.7.1 -> $dest"
