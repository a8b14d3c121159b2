#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZER SEEDS SECONDS ARTIFACTS [CORPUS] — runs a libFuzzer
# target for SECONDS: first every input of SEEDS (and of CORPUS, where new
# inputs go; a scratch directory if not given), then mutations. A crash, leak,
# hang (over FUZZ_HANG_SECONDS, default 10, of wall time on one input) or more
# than 2 GiB of memory fails it, with the input saved under ARTIFACTS/ and the
# command that replays it printed. On a heavily loaded machine raise
# FUZZ_HANG_SECONDS: libFuzzer's hang timer counts wall time, not CPU time.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 artifacts=$4 corpus=${5:-}
[ -d "$seeds" ] || { echo "no seed corpus at $seeds" >&2; exit 1; }
mkdir -p "$artifacts"
if [ -z "$corpus" ]; then
    corpus=$(mktemp -d)
    trap 'rm -rf "$corpus"' EXIT
fi
mkdir -p "$corpus"
set +e
"$fuzzer" -max_total_time="$seconds" -timeout="${FUZZ_HANG_SECONDS:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds" 2>&1 | grep -v '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    echo "$(basename "$fuzzer") failed ($rc); replay with: $fuzzer $artifacts/<crash-file>" >&2
fi
exit "$rc"
