#!/usr/bin/env bash
# Prepares IDEMIA's WebCapture demo server (../shared/clients/webcapture-demo, kept
# unmodified) for tests/api/test_webcapture_demo.py:
#   - copies it into build/webcapture-demo/ (the demo writes front/dist/ when it starts,
#     and the shared folder is read-only);
#   - points the COPY's dependency parse-multipart (no longer published on npm; only
#     server/gips-api.js, the ID&V path, requires it) at the local stand-in
#     tests/webcapture/parse-multipart;
#   - pins the copy's webpack to 5.102.0, the release current when the demo was
#     published (2025-10-01): its "^5.95.0" now resolves to webpacks (5.113 here) whose
#     Dependency.loc setter throws on the undefined loc that @zainulbr/i18n-webpack-plugin
#     2.0.3 passes, so the front pages fail to build ("pack errors ... Cannot use 'in'
#     operator to search for 'start' in undefined");
#   - runs npm install (all dependencies: index.js runs webpack at start-up).
# Idempotent and quick when nothing changed: the copy is refreshed only when a source
# file is newer than build/webcapture-demo/.copied-stamp, npm only runs when the source
# package.json, the stand-in or this script is newer than node_modules/.installed-stamp.
#   WEBCAPTURE_DEMO_SRC  the demo folder (default ../shared/clients/webcapture-demo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${WEBCAPTURE_DEMO_SRC:-$ROOT/../shared/clients/webcapture-demo}"
DEST="$ROOT/build/webcapture-demo"
STANDIN="$ROOT/tests/webcapture/parse-multipart"
SELF="$ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"
COPY_STAMP="$DEST/.copied-stamp"
INSTALL_STAMP="$DEST/node_modules/.installed-stamp"

die() { echo "setup-webcapture-demo: $*" >&2; exit 1; }

[ -f "$SRC/package.json" ] || die "the demo is missing: $SRC/package.json"
command -v node >/dev/null 2>&1 || die "node is not installed (make deps)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (make deps)"

# 1. The copy (node_modules, package-lock.json and front/dist are ours, kept across refreshes).
if [ ! -f "$COPY_STAMP" ] || [ -n "$(find "$SRC" -newer "$COPY_STAMP" -print -quit)" ] \
   || [ "$SELF" -nt "$COPY_STAMP" ]; then
  echo "setup-webcapture-demo: copying $SRC -> build/webcapture-demo"
  mkdir -p "$DEST"
  chmod -R u+w "$DEST"
  cp -R --preserve=timestamps "$SRC/." "$DEST/"
  chmod -R u+w "$DEST"   # the shared files are read-only; the demo writes front/dist
  # Only the copy's package.json is changed (see above).
  (cd "$DEST" && npm pkg set "dependencies.parse-multipart=file:../../tests/webcapture/parse-multipart" \
                             "dependencies.webpack=5.102.0")
  touch "$COPY_STAMP"
fi

# 2. The dependencies.
newest_input() {
  [ "$SRC/package.json" -nt "$INSTALL_STAMP" ] || [ "$STANDIN/package.json" -nt "$INSTALL_STAMP" ] \
    || [ "$STANDIN/index.js" -nt "$INSTALL_STAMP" ] || [ "$SELF" -nt "$INSTALL_STAMP" ]
}
if [ ! -f "$INSTALL_STAMP" ] || newest_input; then
  echo "setup-webcapture-demo: npm install in build/webcapture-demo (first time: about a minute)"
  start=$(date +%s)
  (cd "$DEST" && npm install --no-audit --no-fund --loglevel=error)
  touch "$INSTALL_STAMP"
  echo "setup-webcapture-demo: npm install took $(( $(date +%s) - start ))s"
fi

# A last sanity check: the modules index.js and the stand-in load.
(cd "$DEST" && node -e 'require("express"); require("webpack"); require("multer"); require("parse-multipart").getBoundary("a; boundary=b") === "b" || process.exit(1)') \
  || die "build/webcapture-demo/node_modules is incomplete; remove build/webcapture-demo and retry"
