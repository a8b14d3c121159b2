#!/usr/bin/env bash
# tests/packaging/prepare_root.sh BUILD_DIR — makes the system test's Debian
# root (root.sh, the packages in root-packages) under BUILD_DIR/system-test
# if it is not cached yet. scripts/test runs it in the background while the
# code builds: debootstrap waits on the network and the disk, the compiler on
# the CPU. The test itself then finds the root made, or waits for this to
# finish (root.sh's lock). Does nothing where the test would skip.
set -euo pipefail
skip() { echo "prepare_root: $*" >&2; exit 0; }
source "$(dirname "${BASH_SOURCE[0]}")/root.sh"

[ "$(id -u)" = 0 ] || skip "not root: the system test will skip"
command -v debootstrap >/dev/null || skip "no debootstrap"
started=$SECONDS
# shellcheck disable=SC2046   # one package per word
root=$(cached_root "$1/system-test" "$ROOT_SUITE" $(root_packages))
echo "prepare_root: $root ready after $((SECONDS - started)) s"
