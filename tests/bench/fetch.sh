#!/usr/bin/env bash
# tests/bench/fetch.sh — the hashing and transfer benchmarks of scripts/bench.
#
# Usage: tests/bench/fetch.sh [hash] [fetch] [fetch-tmpfs]   (default: hash fetch)
#
# On loopback only: a 1 GiB random file (page cache warmed), nginx serving it,
# a trackerd and two peerds (host1 publishes, host2 fetches).
#   hash:  `openssl dgst -sha256 FILE` vs `peerctl publish FILE big` on host1,
#          BENCH_FETCH_RUNS times interleaved, medians;
#          ratio openssl_s / publish_s (target ≥ 1.5).
#   fetch: curl and aria2c -x4 from nginx vs `peerctl fetch` on host2, each
#          BENCH_FETCH_RUNS (3) times interleaved, medians; ratios
#          peerctl/curl (target ≤ 1.0, stretch ≤ 0.7) and peerctl/aria2c.
#          Every run starts after a `sync`; each is also timed until a `sync`
#          after it returns (peerctl fsyncs, curl and aria2c do not), the
#          "on disk" figures. peerctl's bytes are compared once, untimed.
#   fetch-tmpfs: the same with every destination on a tmpfs mounted for the
#          run (root only), so no disk decides: the network, hashing and
#          copying path alone (target ≤ 1.0× curl there too).
# Prints `key value` lines, then a summary table. Exits non-zero only when a
# measurement could not be made.
# env: BUILD_DIR (build), BENCH_FILE_SIZE (1G), BENCH_FETCH_RUNS (3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SIZE=${BENCH_FILE_SIZE:-1G}
RUNS=${BENCH_FETCH_RUNS:-3}

BENCH_NAME=fetch.sh
source "$ROOT/tests/bench/lib.sh"

setup() {
    for f in "$TRACKERD" "$PEERD" "$PEERCTL"; do [ -x "$f" ] || die "missing $f (build first)"; done
    for c in nginx curl aria2c openssl python3; do
        command -v "$c" >/dev/null || die "missing $c"
    done
    TMP=$(mktemp -d)
    mkdir -p "$TMP/www" "$TMP/out" "$TMP/nginx"

    make_random_file "$TMP/www/big" "$SIZE"
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

# timed OUT CMD...: runs a download that writes OUT and prints two times:
# until CMD returns, and until `sync` has also put its bytes on disk (peerctl
# fsyncs before it returns; curl and aria2c leave their dirty pages to the
# kernel). Every run starts after a `sync`, so no tool pays for the last one's
# writeback.
timed() {
    local out=$1; shift
    local t0 t1 t2
    sync
    t0=$(now)
    "$@" >/dev/null || die "$1 failed${LOG:+: $(tail -n 5 "$LOG")}"
    t1=$(now)
    sync
    t2=$(now)
    [ "$(stat -c %s "$out")" = "$BYTES" ] || die "$1: wrong size"
    [ -z "${CHECK_BYTES:-}" ] || cmp -s "$TMP/www/big" "$out" || die "$1: content differs"
    rm -f "$out"
    echo "$(elapsed "$t0" "$t1") $(elapsed "$t0" "$t2")"
}

run_curl() { timed "$TMP/out/curl" curl -sf -o "$TMP/out/curl" "$URL"; }

run_aria2c() {
    timed "$TMP/out/aria2c" aria2c -x4 -d "$TMP/out" -o aria2c --allow-overwrite=true \
        --file-allocation=none -q "$URL"
}

run_peerctl() {
    LOG=$TMP/host2.log timed "$TMP/out/peerctl" \
        "$PEERCTL" --socket "$TMP/host2.sock" fetch big -o "$TMP/out/peerctl" --force --quiet
}

bench_fetch() { fetch_runs "" "disk"; }

# The same runs with every destination on a tmpfs (mounted over $TMP/out).
bench_fetch-tmpfs() {
    [ "$(id -u)" = 0 ] || die "fetch-tmpfs mounts a tmpfs: run as root"
    mount -t tmpfs -o size=$((BYTES * 3 + (64 << 20))) peershare-bench "$TMP/out" || die "cannot mount a tmpfs"
    TMPFS_MOUNTED=$TMP/out
    fetch_runs tmpfs_ "tmpfs"
    umount "$TMP/out" && TMPFS_MOUNTED=''
}

# fetch_runs PREFIX WHERE: RUNS interleaved runs of curl, aria2c and peerctl
# into $TMP/out; `key value` lines named PREFIX…, rows saying WHERE.
fetch_runs() {
    local k=$1 where=$2
    if [ "$PUBLISHED" = 0 ]; then publish_big >/dev/null; PUBLISHED=1; fi
    wait_for 30 "host2 to see 'big' at the tracker" host2_sees_big
    echo "== fetch to $where: curl, aria2c -x4 (nginx, sendfile) vs peerctl fetch, $RUNS runs each, interleaved" >&2
    CHECK_BYTES=1 run_peerctl >/dev/null   # once, compared byte for byte; not timed
    local c=() a=() p=() cd=() ad=() pd=() i t
    for ((i = 1; i <= RUNS; i++)); do
        read -r -a t <<<"$(run_curl)";    c+=("${t[0]}"); cd+=("${t[1]}")
        read -r -a t <<<"$(run_aria2c)";  a+=("${t[0]}"); ad+=("${t[1]}")
        read -r -a t <<<"$(run_peerctl)"; p+=("${t[0]}"); pd+=("${t[1]}")
        kv "${k}run${i}_curl_s" "${c[-1]}"
        kv "${k}run${i}_aria2c_s" "${a[-1]}"
        kv "${k}run${i}_peerctl_s" "${p[-1]}"
        kv "${k}run${i}_curl_synced_s" "${cd[-1]}"
        kv "${k}run${i}_aria2c_synced_s" "${ad[-1]}"
        kv "${k}run${i}_peerctl_synced_s" "${pd[-1]}"
    done
    local mc ma mp mcd mad mpd rc ra rcd
    mc=$(median "${c[@]}"); ma=$(median "${a[@]}"); mp=$(median "${p[@]}")
    mcd=$(median "${cd[@]}"); mad=$(median "${ad[@]}"); mpd=$(median "${pd[@]}")
    rc=$(ratio "$mp" "$mc"); ra=$(ratio "$mp" "$ma"); rcd=$(ratio "$mpd" "$mcd")
    mibs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
    kv "${k}curl_median_s" "$mc"
    kv "${k}aria2c_median_s" "$ma"
    kv "${k}peerctl_median_s" "$mp"
    kv "${k}curl_synced_median_s" "$mcd"
    kv "${k}aria2c_synced_median_s" "$mad"
    kv "${k}peerctl_synced_median_s" "$mpd"
    kv "${k}fetch_verified" cmp_ok
    kv "${k}ratio_peerctl_over_curl" "$rc"
    kv "${k}ratio_peerctl_over_aria2c" "$ra"
    kv "${k}ratio_peerctl_over_curl_synced" "$rcd"
    row "curl from nginx to $where (median of $RUNS)" "$mc s ($(mibs "$mc") MiB/s)" "-" "-"
    row "aria2c -x4 from nginx to $where (median of $RUNS)" "$ma s ($(mibs "$ma") MiB/s)" "-" "-"
    row "peerctl fetch host1→host2 to $where, verified + fsync (median of $RUNS)" "$mp s ($(mibs "$mp") MiB/s)" "-" "-"
    row "ratio to $where: peerctl ÷ curl" "${rc}×" "≤ 1.0× (stretch ≤ 0.7×)" \
        "$(verdict "$rc" le 1.0)$( [ "$(verdict "$rc" le 0.7)" = ok ] && echo ", stretch ok" || true)"
    row "ratio to $where: peerctl ÷ aria2c" "${ra}×" "-" "-"
    row "until on $where (then sync): curl, aria2c, peerctl" "$mcd s, $mad s, $mpd s" "-" "-"
    row "ratio until synced on $where: peerctl ÷ curl" "${rcd}×" "$( [ "$where" = disk ] && echo "≤ 1.0×" || echo -)" \
        "$( [ "$where" = disk ] && verdict "$rcd" le 1.0 || echo -)"
}

main() {
    local selected=("$@") part
    [ ${#selected[@]} -gt 0 ] || selected=(hash fetch)
    for part in "${selected[@]}"; do
        case "$part" in hash|fetch|fetch-tmpfs) ;; *) die "unknown part '$part' (hash, fetch, fetch-tmpfs)" ;; esac
    done
    setup
    for part in "${selected[@]}"; do "bench_$part"; done
    print_summary
}

main "$@"
