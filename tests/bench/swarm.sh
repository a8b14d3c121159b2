#!/usr/bin/env bash
# tests/bench/swarm.sh — the swarm benchmarks of scripts/bench (issue 10).
#
# Usage: tests/bench/swarm.sh [flash] [holders]      (default: both)
#
# On loopback only, in a temp dir; every process started is stopped on exit.
#   flash: a flash crowd. One publisher and N fetchers (N in BENCH_SWARM_CROWDS,
#       "8 16"), every peer's uploads limited to BENCH_SWARM_RATE (10M, bytes/s
#       ×1000), a BENCH_SWARM_SIZE (100000000) byte random file, every fetch
#       started at once: the time until all N hold a verified copy, the
#       publisher's uploaded bytes, and the ratio to the floor size ÷ rate
#       (the publisher must upload every byte once; target ≤ 2×, and N = 16 no
#       worse than N = 8 by more than 25 %). Peershare: fresh peerds for each
#       run, `peerctl fetch` on each fetcher at once. The reference, in the
#       same run: BitTorrent, a torrent made by transmission-create (the same
#       piece size), Debian's opentracker on 127.0.0.1, the seeder and N
#       leechers as aria2c with the same upload limit, DHT, local peer
#       discovery and peer exchange off, leechers seeding on after completing
#       (as peershare's fetchers share); a leecher's completion is the time
#       its --on-bt-download-complete hook runs (aria2c has verified every
#       piece's SHA-1). Target: peershare ÷ aria2c ≤ 1.0.
#   holders: four complete holders, each limited to BENCH_HOLDERS_RATE (20M),
#       one fetcher (no limit) fetching a BENCH_HOLDERS_SIZE (200000000) byte
#       file: from one holder (`--from`), from all four, and `aria2c -x1 -s4`
#       from the four holders' HTTP URLs (/v1/files/<id>). Rate ratios: all
#       four ÷ one holder (target ≥ 3.6), peershare ÷ aria2c (target ≥ 1.0).
#       (aria2c splits no part below its --min-split-size, 20M: under 80 MB
#       it uses fewer than four holders.)
#   BENCH_SWARM_RUNS (3) runs of each side, interleaved; medians.
# Prints `key value` lines, then a summary table; with BENCH_ROWS set, the
# summary rows are also written to that file (scripts/bench reads them).
# env: BUILD_DIR (build), BENCH_SWARM_CROWDS, BENCH_SWARM_RATE, BENCH_SWARM_SIZE,
#      BENCH_HOLDERS_RATE, BENCH_HOLDERS_SIZE, BENCH_SWARM_RUNS
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CROWDS=${BENCH_SWARM_CROWDS:-8 16}
RATE=${BENCH_SWARM_RATE:-10M}
SIZE=${BENCH_SWARM_SIZE:-100000000}
HOLDERS_RATE=${BENCH_HOLDERS_RATE:-20M}
HOLDERS_SIZE=${BENCH_HOLDERS_SIZE:-200000000}
RUNS=${BENCH_SWARM_RUNS:-3}
DEADLINE=600   # seconds any one crowd or fetch may take before the run is given up

BENCH_NAME=swarm.sh
source "$ROOT/tests/bench/lib.sh"

# A rate as peerd takes it (k, M, G ×1000) in bytes/s, for aria2c and for
# the floor.
bytes_per_s() {
    awk -v r="$1" 'BEGIN { m = 1; u = substr(r, length(r));
        if (u == "k") m = 1e3; else if (u == "M") m = 1e6; else if (u == "G") m = 1e9;
        if (m > 1) r = substr(r, 1, length(r) - 1); printf "%d", r * m }'
}
uploaded() { ctl "$1" --json status | jq -r .uploaded; }
upload_port() { ctl "$1" --json status | jq -r .port; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
max_of() { printf '%s\n' "$@" | sort -g | tail -n1; }
lists_holders() { [ "$(ctl "$1" --json search "$2" | jq '[.files[].holder_count] | max // 0')" -ge "$3" ]; }

# CPU seconds (user + system) the processes started since PIDS had $1
# entries have used so far: who spent the machine, beside who waited on a
# rate limit.
cpu_since() {
    local i total=0 tick
    tick=$(getconf CLK_TCK)
    for ((i = $1; i < ${#PIDS[@]}; i++)); do
        [ -r "/proc/${PIDS[i]}/stat" ] || continue
        total=$((total + $(sed 's/.*) //' "/proc/${PIDS[i]}/stat" | awk '{ print $12 + $13 }')))
    done
    awk -v t="$total" -v k="$tick" 'BEGIN { printf "%.1f", t / k }'
}

# Stops the processes started since PIDS had $1 entries, newest first.
stop_since() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= $1; i--)); do stop_process "${PIDS[i]}"; done
}

# ---- flash crowd: peershare -------------------------------------------------

# flash_peershare N RUN: sets RESULT to "seconds publisher_uploaded_bytes
# fetchers_that_received_from_another_fetcher".
flash_peershare() {
    local n=$1 run=$2 first=${#PIDS[@]} tag="ps$2n$1" i
    start_peerd "$tag-seed" --max-upload-rate "$RATE"
    ctl "$tag-seed" publish "$TMP/big" big >/dev/null
    for i in $(seq "$n"); do start_peerd "$tag-f$i" --max-upload-rate "$RATE"; done
    for i in $(seq "$n"); do wait_for 20 "big listed at $tag-f$i" lists_holders "$tag-f$i" big 1; done
    local up0 t0 pids=()
    up0=$(uploaded "$tag-seed")
    t0=$(now)
    for i in $(seq "$n"); do
        ( timeout "$DEADLINE" "$PEERCTL" --socket "$TMP/$tag-f$i.sock" --json fetch big \
              -o "$TMP/$tag-f$i/big" >"$TMP/$tag-f$i/fetch.json" 2>"$TMP/$tag-f$i/fetch.err"
          now >"$TMP/$tag-f$i/done" ) &
        pids+=($!)
    done
    local ok=1
    for i in "${pids[@]}"; do wait "$i" || ok=0; done
    local ends=() from_fetcher=0
    for i in $(seq "$n"); do
        [ -s "$TMP/$tag-f$i/done" ] || ok=0
        cmp -s "$TMP/big" "$TMP/$tag-f$i/big" || { ok=0; echo "$tag-f$i: $(cat "$TMP/$tag-f$i/fetch.err")" >&2; }
        ends+=("$(cat "$TMP/$tag-f$i/done")")
        jq -e --arg seed "$tag-seed" '[.sources[]? | select(. != $seed)] | length > 0' \
            "$TMP/$tag-f$i/fetch.json" >/dev/null 2>&1 && from_fetcher=$((from_fetcher + 1))
    done
    [ "$ok" = 1 ] || die "flash crowd $n (run $run): a fetch failed or its bytes differ (logs: $TMP/$tag-*.log)"
    local up cpu
    up=$(($(uploaded "$tag-seed") - up0))
    cpu=$(cpu_since "$first")
    stop_since "$first"
    for i in $(seq "$n"); do rm -f "$TMP/$tag-f$i/big"; done
    RESULT="$(elapsed "$t0" "$(max_of "${ends[@]}")") $up $from_fetcher $cpu"
}

# ---- flash crowd: BitTorrent (aria2c, opentracker) ---------------------------

# opentracker on 127.0.0.1, TCP only, the torrent's info hash whitelisted
# (Debian builds it with an access whitelist); sets OT_URL.
start_opentracker() {
    local port dir=$TMP/ot
    port=$(free_port)
    mkdir -p "$dir"
    chmod 755 "$TMP" "$dir"   # it chroots into $dir and reads the whitelist as nobody
    echo "$INFO_HASH" >"$dir/whitelist"
    chmod 644 "$dir/whitelist"
    ( cd "$dir" && exec opentracker -i 127.0.0.1 -p "$port" -d "$dir" -u nobody -w whitelist ) \
        >"$dir/log" 2>&1 &
    PIDS+=($!)
    OT_URL=http://127.0.0.1:$port
    wait_for 10 "opentracker" ot_knows 0
}
# ot_knows N: opentracker answers a scrape of the torrent, counting at least
# N seeders.
ot_knows() {
    local hash found seeders
    hash=$(echo "$INFO_HASH" | sed 's/../%&/g')
    # The body holds the binary info hash: grep bytes, not text.
    found=$(curl -sf --max-time 2 "$OT_URL/scrape?info_hash=$hash" | LC_ALL=C grep -ao 'd5:files\|8:completei[0-9]*e') ||
        return 1
    [ "$(head -n1 <<<"$found")" = d5:files ] || return 1
    seeders=$(tail -n +2 <<<"$found" | tr -dc 0-9)
    [ "${seeders:-0}" -ge "$1" ]
}

ARIA2_BT=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
          --seed-ratio=0.0 --file-allocation=none --console-log-level=warn --summary-interval=0
          --bt-max-peers=0 --allow-overwrite=true --auto-file-renaming=false)

# aria2c_bt NAME [OPTION...]: an aria2c BitTorrent peer of the torrent in
# $TMP/bt/NAME, upload limited to the crowd's rate; sets ARIA_PID.
aria2c_bt() {
    local name=$1; shift
    mkdir -p "$TMP/bt/$name"
    aria2c "${ARIA2_BT[@]}" --max-overall-upload-limit="$(bytes_per_s "$RATE")" \
        --listen-port="$(free_port)" --dir="$TMP/bt/$name" "$@" "$TMP/big.torrent" \
        >"$TMP/bt/$name.log" 2>&1 &
    ARIA_PID=$!
    PIDS+=("$ARIA_PID")
}
seeder_uploaded() {
    curl -s "http://127.0.0.1:$1/jsonrpc" -d '{"jsonrpc":"2.0","id":"b","method":"aria2.tellActive","params":[["uploadLength"]]}' |
        jq -r '.result[0].uploadLength'
}
all_done() { [ "$(find "$TMP/bt" -name done | wc -l)" -ge "$1" ]; }

# flash_bittorrent N RUN: sets RESULT to "seconds seeder_uploaded_bytes".
flash_bittorrent() {
    local n=$1 run=$2 first=${#PIDS[@]} tag="bt$2n$1" i rpc
    rm -rf "$TMP/bt" "$TMP/ot"
    # A fresh tracker each run (no peers of the last run in its answers),
    # and the torrent with its URL (the URL is not part of the info hash).
    start_opentracker
    rm -f "$TMP/big.torrent"
    transmission-create -s "$((PIECE_BYTES / 1024))" -t "$OT_URL/announce" -o "$TMP/big.torrent" "$TMP/big" >/dev/null
    mkdir -p "$TMP/bt/$tag-seed"
    ln "$TMP/big" "$TMP/bt/$tag-seed/big"
    rpc=$(free_port)
    aria2c_bt "$tag-seed" --check-integrity=true --enable-rpc --rpc-listen-all=false --rpc-listen-port="$rpc"
    wait_for 60 "the aria2c seeder announced" ot_knows 1
    local t0
    t0=$(now)
    for i in $(seq "$n"); do
        aria2c_bt "$tag-l$i" --on-bt-download-complete="$TMP/bt-done.sh"
    done
    wait_for "$DEADLINE" "all $n aria2c leechers to complete" all_done "$n"
    local ends=() ok=1
    for i in $(seq "$n"); do
        ends+=("$(cat "$TMP/bt/$tag-l$i/done")")
        cmp -s "$TMP/big" "$TMP/bt/$tag-l$i/big" || ok=0
    done
    local up cpu
    up=$(seeder_uploaded "$rpc")
    cpu=$(cpu_since "$first")
    stop_since "$first"
    [ "$ok" = 1 ] || die "BitTorrent crowd $n (run $run): bytes differ"
    rm -rf "$TMP/bt"
    RESULT="$(elapsed "$t0" "$(max_of "${ends[@]}")") $up $cpu"
}

bench_flash() {
    # peershare's piece size for the file (proto/content.cpp, choose_piece_size):
    # 256 KiB, doubled while that makes more than 2048 pieces; the torrent's too.
    PIECE_BYTES=262144
    while [ $(((BYTES + PIECE_BYTES - 1) / PIECE_BYTES)) -gt 2048 ]; do PIECE_BYTES=$((PIECE_BYTES * 2)); done
    kv flash_file_bytes "$BYTES"
    kv flash_rate_bytes_per_s "$(bytes_per_s "$RATE")"
    kv flash_piece_bytes "$PIECE_BYTES"
    # The hook aria2c runs when a leecher holds every piece, verified: the
    # time, next to the file (its third argument is the file's path).
    cat >"$TMP/bt-done.sh" <<'HOOK'
#!/bin/sh
date +%s.%N >"$(dirname "$3")/done"
HOOK
    chmod 755 "$TMP/bt-done.sh"
    # The info hash, for opentracker's whitelist.
    transmission-create -s "$((PIECE_BYTES / 1024))" -t "http://127.0.0.1:1/announce" \
        -o "$TMP/big.torrent" "$TMP/big" >/dev/null
    INFO_HASH=$(transmission-show "$TMP/big.torrent" | sed -n 's/^ *Hash: *\([0-9a-f]\{40\}\).*/\1/p')
    [ -n "$INFO_HASH" ] || die "no info hash in $(transmission-show "$TMP/big.torrent")"
    local floor
    floor=$(awk -v s="$BYTES" -v r="$(bytes_per_s "$RATE")" 'BEGIN { printf "%.3f", s / r }')
    kv flash_floor_s "$floor"
    local n run ps bt t up from cpu medians=()
    for n in $CROWDS; do
        local ps_t=() ps_up=() ps_cpu=() bt_t=() bt_up=() bt_cpu=()
        for run in $(seq "$RUNS"); do
            flash_peershare "$n" "$run"
            read -r t up from cpu <<<"$RESULT"
            ps_t+=("$t") ps_up+=("$up") ps_cpu+=("$cpu")
            kv "flash_${n}_peershare_run_${run}_s" "$t"
            kv "flash_${n}_peershare_run_${run}_publisher_uploaded_bytes" "$up"
            kv "flash_${n}_peershare_run_${run}_fetchers_fed_by_fetchers" "$from"
            kv "flash_${n}_peershare_run_${run}_cpu_s" "$cpu"
            flash_bittorrent "$n" "$run"
            read -r t up cpu <<<"$RESULT"
            bt_t+=("$t") bt_up+=("$up") bt_cpu+=("$cpu")
            kv "flash_${n}_aria2c_run_${run}_s" "$t"
            kv "flash_${n}_aria2c_run_${run}_seeder_uploaded_bytes" "$up"
            kv "flash_${n}_aria2c_run_${run}_cpu_s" "$cpu"
        done
        ps=$(median "${ps_t[@]}") bt=$(median "${bt_t[@]}")
        medians+=("$ps")
        kv "flash_${n}_peershare_median_s" "$ps"
        kv "flash_${n}_aria2c_median_s" "$bt"
        local r_floor r_bt
        r_floor=$(ratio "$ps" "$floor") r_bt=$(ratio "$ps" "$bt")
        row "flash crowd N=$n: peershare, all verified (median)" "$ps s" "-" "-"
        row "  publisher uploaded (median)" "$(mb "$(median "${ps_up[@]}")") MB ($(ratio "$(median "${ps_up[@]}")" "$BYTES")× the file)" "-" "-"
        row "  ratio to the floor $(mb "$BYTES") MB ÷ $RATE/s = $floor s" "${r_floor}×" "≤ 2×" "$(verdict "$r_floor" le 2)"
        row "  CPU of all $((n + 1)) peerds (median)" "$(median "${ps_cpu[@]}") s" "-" "-"
        row "flash crowd N=$n: aria2c BitTorrent (median)" "$bt s" "-" "-"
        row "  seeder uploaded (median)" "$(mb "$(median "${bt_up[@]}")") MB ($(ratio "$(median "${bt_up[@]}")" "$BYTES")× the file)" "-" "-"
        row "  CPU of all $((n + 1)) aria2c (median)" "$(median "${bt_cpu[@]}") s" "-" "-"
        row "  ratio peershare ÷ aria2c" "${r_bt}×" "≤ 1.0×" "$(verdict "$r_bt" le 1.0)"
    done
    if [ ${#medians[@]} -ge 2 ]; then
        local growth
        growth=$(ratio "${medians[-1]}" "${medians[0]}")
        row "flash crowd: peershare N=${CROWDS##* } ÷ N=${CROWDS%% *}" "${growth}×" "≤ 1.25×" "$(verdict "$growth" le 1.25)"
    fi
}

# ---- many complete holders ---------------------------------------------------

transfer_of() { ctl fetcher --json transfers | jq -r '.transfers[-1].id'; }

# holders_peershare [--from HOST]: one `peerctl fetch` by the fetcher; prints
# its seconds.
holders_peershare() {
    rm -f "$TMP/fetcher/big2"
    sync
    local t0 t1
    t0=$(now)
    timeout "$DEADLINE" "$PEERCTL" --socket "$TMP/fetcher.sock" fetch big2 -o "$TMP/fetcher/big2" \
        --no-share -q "$@" >/dev/null || die "peerctl fetch big2 $* failed"
    t1=$(now)
    cmp -s "$TMP/big2" "$TMP/fetcher/big2" || die "peerctl fetch big2 $*: bytes differ"
    ctl fetcher cancel "$(transfer_of)" >/dev/null   # forgets the done transfer
    elapsed "$t0" "$t1"
}

# holders_aria2c: aria2c -x1 -s4 from the four holders' URLs; prints its seconds.
holders_aria2c() {
    rm -f "$TMP/fetcher/aria2c-big2"
    sync
    local t0 t1
    t0=$(now)
    timeout "$DEADLINE" aria2c -x1 -s4 --file-allocation=none --console-log-level=warn --summary-interval=0 \
        --allow-overwrite=true --auto-file-renaming=false -d "$TMP/fetcher" -o aria2c-big2 "${HOLDER_URLS[@]}" \
        >"$TMP/aria2c-holders.log" 2>&1 || die "aria2c -x1 -s4 failed: $(tail -n 5 "$TMP/aria2c-holders.log")"
    t1=$(now)
    cmp -s "$TMP/big2" "$TMP/fetcher/aria2c-big2" || die "aria2c -x1 -s4: bytes differ"
    elapsed "$t0" "$t1"
}

bench_holders() {
    make_random_file "$TMP/big2" "$HOLDERS_SIZE"
    local first=${#PIDS[@]} h cid=''
    HOLDER_URLS=()
    # Each holder on an address of its own, as four hosts would be: aria2c's
    # -x1 counts connections by host, so four holders on one address would
    # be one server to it.
    for h in 1 2 3 4; do
        PEERD_HOST=127.0.0.$h start_peerd "holder$h" --max-upload-rate "$HOLDERS_RATE" --advertise "127.0.0.$h"
        cid=$(ctl "holder$h" --json publish "$TMP/big2" big2 | jq -r .id)
        HOLDER_URLS+=("http://127.0.0.$h:$(upload_port "holder$h")/v1/files/$cid")
    done
    start_peerd fetcher
    wait_for 20 "four holders of big2" lists_holders fetcher big2 4
    kv holders_file_bytes "$BYTES"
    local one=() all=() aria=() run t
    for run in $(seq "$RUNS"); do
        t=$(holders_peershare --from holder1); one+=("$t"); kv "holders_one_run_${run}_s" "$t"
        t=$(holders_peershare); all+=("$t"); kv "holders_four_run_${run}_s" "$t"
        t=$(holders_aria2c); aria+=("$t"); kv "holders_aria2c_run_${run}_s" "$t"
    done
    stop_since "$first"
    local o a x
    o=$(median "${one[@]}") a=$(median "${all[@]}") x=$(median "${aria[@]}")
    local r1 rx
    r1=$(ratio "$o" "$a") rx=$(ratio "$x" "$a")   # rates: the inverse of the times
    kv holders_one_median_s "$o"; kv holders_four_median_s "$a"; kv holders_aria2c_median_s "$x"
    rate() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.1f MB/s", b / s / 1e6 }'; }
    row "one holder ($HOLDERS_RATE/s), $(mb "$BYTES") MB (median)" "$o s, $(rate "$o")" "-" "-"
    row "four holders ($HOLDERS_RATE/s each), peerctl (median)" "$a s, $(rate "$a")" "-" "-"
    row "four holders, aria2c -x1 -s4 (median)" "$x s, $(rate "$x")" "-" "-"
    row "rate: four holders ÷ one" "${r1}×" "≥ 3.6×" "$(verdict "$r1" ge 3.6)"
    row "rate: peerctl ÷ aria2c -x1 -s4" "${rx}×" "≥ 1.0×" "$(verdict "$rx" ge 1.0)"
}

# ---- main --------------------------------------------------------------------

PARTS_SELECTED=("$@")
[ ${#PARTS_SELECTED[@]} -gt 0 ] || PARTS_SELECTED=(flash holders)
for f in "$TRACKERD" "$PEERD" "$PEERCTL"; do [ -x "$f" ] || die "missing $f (build first)"; done
for c in aria2c opentracker transmission-create transmission-show jq curl openssl python3; do
    command -v "$c" >/dev/null || die "missing $c"
done
TMP=$(mktemp -d)
start_trackerd --trust-advertise   # the holders' addresses (127.0.0.2-4) are theirs
for part in "${PARTS_SELECTED[@]}"; do
    case "$part" in
        flash) make_random_file "$TMP/big" "$SIZE"; bench_flash ;;
        holders) bench_holders ;;
        *) die "unknown part $part (flash, holders)" ;;
    esac
done
print_summary
[ -z "${BENCH_ROWS:-}" ] || printf '%s\n' "${SUMMARY[@]}" >"$BENCH_ROWS"
