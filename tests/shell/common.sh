# tests/shell/common.sh — sourced by the shell tests (tests/packaging,
# tests/multihost). Gives:
#   fail MESSAGE       print FAIL: MESSAGE and exit 1
#   $tmp               a scratch directory, removed on exit
#   pids+=($!)         processes to stop on exit (SIGTERM, then reaped)
#   cleanup_extra      if the test defines it, run on exit before $tmp goes
#   wait_until CMD...  run CMD until it succeeds or $deadline_s (default 30)
#                      seconds pass: waiting on a condition, never a bare sleep
fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

wait_until() {
    local end=$((SECONDS + ${deadline_s:-30}))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}
