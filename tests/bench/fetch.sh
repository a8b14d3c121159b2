#!/usr/bin/env bash
# tests/bench/fetch.sh — the hashing and transfer benchmarks of scripts/bench.
#
# Usage: tests/bench/fetch.sh [hash] [fetch]      (default: both)
#
# On loopback only: a 1 GiB random file (page cache warmed), nginx serving it,
# a trackerd and two peerds (host1 publishes, host2 fetches).
#   hash:  `openssl dgst -sha256 FILE` vs `peerctl publish FILE big` on host1,
#          BENCH_FETCH_RUNS times interleaved, medians;
#          ratio openssl_s / publish_s (target ≥ 1.5).
#   fetch: curl and aria2c -x4 from nginx vs `peerctl fetch` on host2, each
#          BENCH_FETCH_RUNS (3) times interleaved, medians; ratios
#          peerctl/curl (target ≤ 1.0, stretch ≤ 0.7) and peerctl/aria2c.
# Prints `key value` lines, then a summary table. Exits non-zero only when a
# measurement could not be made.
# env: BUILD_DIR (build), BENCH_FILE_SIZE (1G), BENCH_FETCH_RUNS (3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SIZE=${BENCH_FILE_SIZE:-1G}
RUNS=${BENCH_FETCH_RUNS:-3}

TRACKERD=$BUILD_DIR/tracker/trackerd
PEERD=$BUILD_DIR/daemon/peerd
PEERCTL=$BUILD_DIR/ctl/peerctl

BENCH_NAME=fetch.sh
source "$ROOT/tests/bench/lib.sh"

setup() {
    for f in "$TRACKERD" "$PEERD" "$PEERCTL"; do [ -x "$f" ] || die "missing $f (build first)"; done
    for c in nginx curl aria2c openssl python3; do
        command -v "$c" >/dev/null || die "missing $c"
    done
    TMP=$(mktemp -d)
    mkdir -p "$TMP/www" "$TMP/out" "$TMP/nginx"

    echo "== creating a $SIZE random file" >&2
    openssl enc -aes-128-ctr -pass pass:x -nosalt </dev/zero 2>/dev/null | head -c "$SIZE" >"$TMP/www/big" || true
    BYTES=$(stat -c %s "$TMP/www/big")
    [ "$BYTES" -gt 0 ] || die "could not create the test file"
    cat "$TMP/www/big" >/dev/null   # warm the page cache
    kv file_bytes "$BYTES"

    start_nginx
    URL=$NGINX_URL
    start_trackerd
    start_peerd host1
    start_peerd host2
}

PUBLISHED=0   # set once "big" is published (publish_big runs in $(...) subshells)
# Publishes the file as "big", unpublished first (if it was) so that it is
# hashed again; prints the seconds `peerctl publish` took.
publish_big() {
    local t0 t1
    "$PEERCTL" --socket "$TMP/host1.sock" unpublish big >/dev/null 2>&1 || true
    t0=$(now)
    "$PEERCTL" --socket "$TMP/host1.sock" publish "$TMP/www/big" big >/dev/null \
        || die "peerctl publish failed: $(tail -n 5 "$TMP/host1.log")"
    t1=$(now)
    elapsed "$t0" "$t1"
}

run_openssl() {
    local t0 t1
    t0=$(now)
    openssl dgst -sha256 "$TMP/www/big" >/dev/null
    t1=$(now)
    elapsed "$t0" "$t1"
}

bench_hash() {
    echo "== hash: openssl dgst -sha256 vs peerctl publish ($BYTES bytes), $RUNS runs each, interleaved" >&2
    local o=() p=() i
    for ((i = 1; i <= RUNS; i++)); do
        o+=("$(run_openssl)")
        p+=("$(publish_big)")
        kv "run${i}_openssl_s" "${o[-1]}"
        kv "run${i}_publish_s" "${p[-1]}"
    done
    PUBLISHED=1
    local mo mp r mibs
    mo=$(median "${o[@]}"); mp=$(median "${p[@]}")
    r=$(ratio "$mo" "$mp")
    mibs=$(awk -v b="$BYTES" -v s="$mp" 'BEGIN { printf "%.0f", b / 1048576 / s }')
    kv openssl_sha256_s "$mo"
    kv publish_s "$mp"
    kv publish_mib_per_s "$mibs"
    kv hash_ratio_openssl_over_publish "$r"
    row "openssl dgst -sha256 (median of $RUNS)" "$mo s" "-" "-"
    row "peerctl publish, hash + announce (median of $RUNS)" "$mp s ($mibs MiB/s)" "-" "-"
    row "ratio: openssl s ÷ publish s" "${r}×" "≥ 1.5×" "$(verdict "$r" ge 1.5)"
}

host2_sees_big() {
    "$PEERCTL" --socket "$TMP/host2.sock" search big 2>/dev/null | grep -q big
}

run_curl() {
    local t0 t1
    t0=$(now)
    curl -sf -o "$TMP/out/curl" "$URL" || die "curl failed"
    t1=$(now)
    [ "$(stat -c %s "$TMP/out/curl")" = "$BYTES" ] || die "curl: wrong size"
    rm -f "$TMP/out/curl"
    elapsed "$t0" "$t1"
}

run_aria2c() {
    local t0 t1
    t0=$(now)
    aria2c -x4 -d "$TMP/out" -o aria2c --allow-overwrite=true --file-allocation=none -q "$URL" \
        || die "aria2c failed"
    t1=$(now)
    [ "$(stat -c %s "$TMP/out/aria2c")" = "$BYTES" ] || die "aria2c: wrong size"
    rm -f "$TMP/out/aria2c"
    elapsed "$t0" "$t1"
}

VERIFIED=0
run_peerctl() {
    local t0 t1
    t0=$(now)
    "$PEERCTL" --socket "$TMP/host2.sock" fetch big -o "$TMP/out/peerctl" --force --quiet >/dev/null \
        || die "peerctl fetch failed: $(tail -n 5 "$TMP/host2.log")"
    t1=$(now)
    if [ "$VERIFIED" = 0 ]; then
        cmp -s "$TMP/www/big" "$TMP/out/peerctl" || die "peerctl fetch: content differs"
        VERIFIED=1
    fi
    rm -f "$TMP/out/peerctl"
    elapsed "$t0" "$t1"
}

bench_fetch() {
    if [ "$PUBLISHED" = 0 ]; then publish_big >/dev/null; PUBLISHED=1; fi
    wait_for 30 "host2 to see 'big' at the tracker" host2_sees_big
    echo "== fetch: curl, aria2c -x4 (nginx, sendfile) vs peerctl fetch, $RUNS runs each, interleaved" >&2
    local c=() a=() p=() i
    for ((i = 1; i <= RUNS; i++)); do
        c+=("$(run_curl)")
        a+=("$(run_aria2c)")
        p+=("$(run_peerctl)")
        kv "run${i}_curl_s" "${c[-1]}"
        kv "run${i}_aria2c_s" "${a[-1]}"
        kv "run${i}_peerctl_s" "${p[-1]}"
    done
    local mc ma mp rc ra
    mc=$(median "${c[@]}"); ma=$(median "${a[@]}"); mp=$(median "${p[@]}")
    rc=$(ratio "$mp" "$mc"); ra=$(ratio "$mp" "$ma")
    mibs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
    kv curl_median_s "$mc"
    kv aria2c_median_s "$ma"
    kv peerctl_median_s "$mp"
    kv fetch_verified cmp_ok
    kv ratio_peerctl_over_curl "$rc"
    kv ratio_peerctl_over_aria2c "$ra"
    row "curl from nginx (median of $RUNS)" "$mc s ($(mibs "$mc") MiB/s)" "-" "-"
    row "aria2c -x4 from nginx (median of $RUNS)" "$ma s ($(mibs "$ma") MiB/s)" "-" "-"
    row "peerctl fetch host1→host2 (median of $RUNS)" "$mp s ($(mibs "$mp") MiB/s)" "-" "-"
    row "ratio: peerctl ÷ curl" "${rc}×" "≤ 1.0× (stretch ≤ 0.7×)" \
        "$(verdict "$rc" le 1.0)$( [ "$(verdict "$rc" le 0.7)" = ok ] && echo ", stretch ok" || true)"
    row "ratio: peerctl ÷ aria2c" "${ra}×" "-" "-"
}

main() {
    local selected=("$@") part
    [ ${#selected[@]} -gt 0 ] || selected=(hash fetch)
    for part in "${selected[@]}"; do
        case "$part" in hash|fetch) ;; *) die "unknown part '$part' (hash, fetch)" ;; esac
    done
    setup
    for part in "${selected[@]}"; do "bench_$part"; done
    print_summary
}

main "$@"
