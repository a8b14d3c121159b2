#!/usr/bin/env bash
# tests/bench/resume.sh — the resume benchmark of scripts/bench (issue 8).
#
# Usage: tests/bench/resume.sh
#
# On loopback only: a 1 GiB random file published by host1; host2 fetches it.
#   fresh:  `peerctl fetch` of the whole file, from start to the verified file.
#   resume: the same fetch started detached with host1's uploads limited
#           (`peerctl limit --up`), host2's peerd SIGKILLed once half the file
#           is verified, the limit lifted, peerd started again: the time from
#           that start to the verified file (its peerd re-verifies the pieces
#           its record claims, then fetches the rest by itself).
#   Both BENCH_RESUME_RUNS (3) times, interleaved; medians; ratio resume ÷
#   fresh (target ≤ 0.55). Also the re-verification time as peerd logs it.
# Prints `key value` lines, then a summary table; with BENCH_ROWS set, the
# summary rows are also written to that file (scripts/bench reads them).
# env: BUILD_DIR (build), BENCH_FILE_SIZE (1G), BENCH_RESUME_RUNS (3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SIZE=${BENCH_FILE_SIZE:-1G}
RUNS=${BENCH_RESUME_RUNS:-3}

BENCH_NAME=resume.sh
source "$ROOT/tests/bench/lib.sh"


# The JSON of transfer $1 on host2, as one line.
transfer_json() {
    ctl host2 --json transfers | python3 -c "
import json, sys
for t in json.load(sys.stdin)['transfers']:
    if t['id'] == int(sys.argv[1]): print(json.dumps(t))" "$1"
}
transfer_field() { transfer_json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$2"; }
half_done() { [ "$(transfer_field "$1" done)" -ge $((BYTES / 2)) ]; }
is_done() { [ "$(transfer_field "$1" state)" = done ]; }

setup() {
    for f in "$TRACKERD" "$PEERD" "$PEERCTL"; do [ -x "$f" ] || die "missing $f (build first)"; done
    TMP=$(mktemp -d)
    mkdir -p "$TMP/out"
    make_random_file "$TMP/big" "$SIZE"
    kv file_bytes "$BYTES"
    start_trackerd
    start_peerd host1
    start_peerd host2
    HOST2_PID=$PEERD_PID
    ctl host1 publish "$TMP/big" big >/dev/null
    wait_for 10 "big to be listed" sh -c "'$PEERCTL' --socket '$TMP/host2.sock' search big | grep -q host1"
}

fresh_run() {
    rm -f "$TMP/out/big"
    sync
    local t0 t1
    t0=$(now)
    ctl host2 fetch big -o "$TMP/out/big" -q >/dev/null
    t1=$(now)
    cmp -s "$TMP/big" "$TMP/out/big" || die "fresh fetch: bytes differ"
    ctl host2 cancel "$(ctl host2 --json transfers | python3 -c 'import json,sys; print(json.load(sys.stdin)["transfers"][-1]["id"])')" >/dev/null
    elapsed "$t0" "$t1"
}

# Not in a subshell: it restarts host2's peerd (HOST2_PID, PIDS). Sets
# RESUME_S and RESUME_VERIFY_S (the re-verification time peerd logs).
resume_run() {
    rm -f "$TMP/out/big"
    sync
    ctl host1 limit --up 300M >/dev/null
    local id
    id=$(ctl host2 --json fetch big -o "$TMP/out/big" --detach | python3 -c 'import json,sys; print(json.load(sys.stdin)["transfer"])')
    wait_for 60 "half the file" half_done "$id"
    kill -9 "$HOST2_PID"
    wait "$HOST2_PID" 2>/dev/null || true
    ctl host1 limit --up 0 >/dev/null
    sync
    local t0 t1
    t0=$(now)
    start_peerd host2
    HOST2_PID=$PEERD_PID
    wait_for 120 "the resumed transfer" is_done "$id"
    t1=$(now)
    cmp -s "$TMP/big" "$TMP/out/big" || die "resumed fetch: bytes differ"
    ctl host2 cancel "$id" >/dev/null
    RESUME_S=$(elapsed "$t0" "$t1")
    RESUME_VERIFY_S=$(sed -n 's/.*: re-verified [0-9]* pieces of .* in \([0-9.]*\) s;.*/\1/p' "$TMP/host2.log" | tail -n1)
    [ -n "$RESUME_VERIFY_S" ] || die "peerd did not log its re-verification: $(tail -n 5 "$TMP/host2.log")"
}

setup
fresh=() resumed=() verify=()
for i in $(seq "$RUNS"); do
    f=$(fresh_run); fresh+=("$f"); kv "fresh_run_${i}_s" "$f"
    resume_run; resumed+=("$RESUME_S"); verify+=("$RESUME_VERIFY_S")
    kv "resume_run_${i}_s" "$RESUME_S"; kv "resume_run_${i}_reverify_s" "$RESUME_VERIFY_S"
done
F=$(median "${fresh[@]}"); R=$(median "${resumed[@]}")
kv fresh_median_s "$F"
kv resume_median_s "$R"
V=$(median "${verify[@]}")
kv reverify_median_s "$V"
kv resume_ratio "$(ratio "$R" "$F")"
row "fresh fetch, $SIZE" "$F s" "-" "-"
row "restart → verified file, killed at 50 %" "$R s" "-" "-"
row "of which re-verifying the held half at start" "$V s" "-" "-"
row "ratio resume ÷ fresh" "$(ratio "$R" "$F")×" "≤ 0.55×" "$(verdict "$(ratio "$R" "$F")" le 0.55)"
print_summary
[ -z "${BENCH_ROWS:-}" ] || printf '%s\n' "${SUMMARY[@]}" >"$BENCH_ROWS"
