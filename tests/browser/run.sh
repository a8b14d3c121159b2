#!/usr/bin/env bash
# tests/browser/run.sh — the dashboard's browser test (ctest "browser"):
# installs playwright-core from the committed lock file into the build tree
# (npm ci; no browser download: Debian's /usr/bin/chromium is used), then
# runs dashboard.test.mjs. Exit 77 (skipped) when there is no Chromium or npm.
# Usage: run.sh SOURCE_DIR BUILD_DIR TRACKERD FAKE_PEER TRACKERCTL
set -euo pipefail
src=$1 build=$2 trackerd=$3 fake_peer=$4 trackerctl=$5

[ -x /usr/bin/chromium ] || { echo "SKIP: /usr/bin/chromium is not installed (scripts/lib.sh DEPS installs it)"; exit 77; }
command -v npm >/dev/null || { echo "SKIP: npm is not installed"; exit 77; }

work=$build/browser-test
mkdir -p "$work"
cp "$src/tests/browser/package.json" "$src/tests/browser/package-lock.json" "$src/tests/browser/dashboard.test.mjs" "$work/"
if ! cmp -s "$work/package-lock.json" "$work/node_modules/.installed-lock" 2>/dev/null; then
    (cd "$work" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error </dev/null)
    cp "$work/package-lock.json" "$work/node_modules/.installed-lock"
fi
cd "$work"
exec node dashboard.test.mjs "$trackerd" "$fake_peer" "$trackerctl" "$build"
