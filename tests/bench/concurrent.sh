#!/usr/bin/env bash
# tests/bench/concurrent.sh — peerd under many downloads at once, and the
# latency of its control plane; run by `scripts/bench concurrent latency`.
#
# Usage: tests/bench/concurrent.sh [concurrent] [latency]      (default: both)
#
# On loopback only, in a temp dir: a trackerd, one peerd per part.
#   concurrent: a 10 MB random file published by peerd (--max-uploads set to
#       the number of clients: its default of 64 answers 503 past that) and
#       served by nginx (sendfile on); tests/bench/peerd_load http opens
#       BENCH_CONC_CLIENTS (200) transfers at once against each, checks every
#       one got 200 and exactly the file's bytes, BENCH_CONC_ROUNDS (3) rounds
#       interleaved, medians. Memory: VmRSS before, VmHWM (peak, reset just
#       before the load via /proc/PID/clear_refs) after, for both servers.
#       Ratio peerd_s / nginx_s (the inverse of the throughput ratio).
#   latency: BENCH_LIST_FILES (100) files published. (a) `peerctl list` as a
#       process, BENCH_LIST_RUNS (200) times, interleaved with
#       `transmission-remote -l` against a loopback transmission-daemon holding
#       as many torrents, and with /bin/true (the floor of any process);
#       p50/p99. (b) the list round trip in-process over the control socket,
#       BENCH_CONTROL_REQUESTS (5000) on one session, then 500 whole sessions.
# Prints `key value` lines, then a summary table. Exits non-zero only when a
# measurement could not be made; failed transfers are reported, not fatal.
# With BENCH_ROWS set, the summary's rows also go to that file as
# "metric|value|target|result" lines (how scripts/bench takes them).
# env: BUILD_DIR (build), BENCH_CONC_CLIENTS (200), BENCH_CONC_SIZE (10M),
#      BENCH_CONC_ROUNDS (3), BENCH_LIST_FILES (100), BENCH_LIST_RUNS (200),
#      BENCH_CONTROL_REQUESTS (5000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CLIENTS=${BENCH_CONC_CLIENTS:-200}
SIZE=${BENCH_CONC_SIZE:-10M}
ROUNDS=${BENCH_CONC_ROUNDS:-3}
LIST_FILES=${BENCH_LIST_FILES:-100}
LIST_RUNS=${BENCH_LIST_RUNS:-200}
CONTROL_REQUESTS=${BENCH_CONTROL_REQUESTS:-5000}

LOAD=$BUILD_DIR/tests/bench/peerd_load

BENCH_NAME=concurrent.sh
source "$ROOT/tests/bench/lib.sh"
sum() { printf '%s\n' "$@" | awk '{ s += $1 } END { print s + 0 }'; }

# proc_kb PID FIELD: VmRSS or VmHWM of a process, in kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Resets a process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0), so the
# peak read after the load is the load's, not the publish's hashing.
reset_peak() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || echo "warning: cannot reset VmHWM of $1" >&2; }

setup() {
    for f in "$TRACKERD" "$PEERD" "$PEERCTL" "$LOAD"; do [ -x "$f" ] || die "missing $f (build first)"; done
    for c in nginx openssl python3 curl; do command -v "$c" >/dev/null || die "missing $c"; done
    TMP=$(mktemp -d)
    start_trackerd
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---- concurrent ----

start_uploader() {
    start_peerd up1 --max-uploads "$CLIENTS"
    UP_PID=$PEERD_PID
    "$PEERCTL" --socket "$TMP/up1.sock" publish "$TMP/www/big" big >/dev/null \
        || die "peerctl publish failed: $(tail -n 5 "$TMP/up1.log")"
    local id port
    id=$("$PEERCTL" --socket "$TMP/up1.sock" list --json |
        python3 -c 'import json, sys; print(next(f["id"] for f in json.load(sys.stdin)["files"] if f["name"] == "big"))')
    port=$("$PEERCTL" --socket "$TMP/up1.sock" status --json | json_field port)
    PEERD_URL=http://127.0.0.1:$port/v1/files/$id
    wait_for 10 "peerd's upload server" curl -sfI "$PEERD_URL"
}

# CPU seconds (user + system) a process has used so far.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# load_round SERVER PID URL ROUND: one run of CLIENTS transfers; its lines,
# with the CPU the server spent on them, go to $TMP/SERVER.ROUND and the
# telling ones, prefixed, to stdout.
load_round() {
    local out="$TMP/$1.$4" cpu0
    cpu0=$(cpu_s "$2")
    "$LOAD" http --url "$3" --concurrency "$CLIENTS" --expect-bytes "$BYTES" >"$out" \
        || die "peerd_load http failed against $1"
    awk -v a="$cpu0" -v b="$(cpu_s "$2")" 'BEGIN { printf "server_cpu_s %.2f\n", b - a }' >>"$out"
    grep -E '^(completed|failed|seconds|aggregate_mib_per_s|receiving_before_first_done|transfer_(p50|max)_s|server_cpu_s|loadgen_cpu_s|first_failure) ' \
        "$out" | sed "s/^/run$4_$1_/"
}

bench_concurrent() {
    echo "== concurrent: $CLIENTS transfers at once of a $SIZE file, nginx vs peerd, $ROUNDS rounds" >&2
    mkdir -p "$TMP/www"
    openssl enc -aes-128-ctr -pass pass:x -nosalt </dev/zero 2>/dev/null | head -c "$SIZE" >"$TMP/www/big" || true
    BYTES=$(stat -c %s "$TMP/www/big")
    [ "$BYTES" -gt 0 ] || die "could not create the test file"
    kv conc_file_bytes "$BYTES"
    kv conc_clients "$CLIENTS"
    kv peerd_max_uploads "$CLIENTS"
    start_nginx
    start_uploader
    local pr nr
    pr=$(proc_kb "$UP_PID" VmRSS); nr=$(proc_kb "$NGINX_PID" VmRSS)
    reset_peak "$UP_PID"; reset_peak "$NGINX_PID"

    local i
    for ((i = 1; i <= ROUNDS; i++)); do
        load_round nginx "$NGINX_PID" "$NGINX_URL" "$i"
        load_round peerd "$UP_PID" "$PEERD_URL" "$i"
        alive "$UP_PID" || die "peerd exited during round $i: $(tail -n 20 "$TMP/up1.log")"
    done
    report_concurrent "$pr" "$nr"
}

# Sums and medians over the rounds of one server: sets DONE, MED_S,
# MED_MIBS, MED_CPU (the server's), MED_LOADGEN_CPU and FIRST_FAILURE.
summarize_server() {
    local srv=$1 i c=() s=() m=() u=() l=()
    FIRST_FAILURE=''
    for ((i = 1; i <= ROUNDS; i++)); do
        c+=("$(value_of completed "$TMP/$srv.$i")")
        s+=("$(value_of seconds "$TMP/$srv.$i")")
        m+=("$(value_of aggregate_mib_per_s "$TMP/$srv.$i")")
        u+=("$(value_of server_cpu_s "$TMP/$srv.$i")")
        l+=("$(value_of loadgen_cpu_s "$TMP/$srv.$i")")
        [ -n "$FIRST_FAILURE" ] || FIRST_FAILURE=$(sed -n 's/^first_failure //p' "$TMP/$srv.$i")
    done
    DONE=$(sum "${c[@]}")
    MED_S=$(median "${s[@]}"); MED_MIBS=$(median "${m[@]}")
    MED_CPU=$(median "${u[@]}"); MED_LOADGEN_CPU=$(median "${l[@]}")
}

report_concurrent() {
    local peerd_rss_before=$1 nginx_rss_before=$2 total=$((ROUNDS * CLIENTS))
    local uploads_after peerd_hwm peerd_rss_after nginx_hwm
    uploads_after=$("$PEERCTL" --socket "$TMP/up1.sock" status --json | json_field uploads)
    peerd_hwm=$(proc_kb "$UP_PID" VmHWM); peerd_rss_after=$(proc_kb "$UP_PID" VmRSS)
    nginx_hwm=$(proc_kb "$NGINX_PID" VmHWM)

    summarize_server nginx
    local n_done=$DONE n_s=$MED_S n_mibs=$MED_MIBS n_why=$FIRST_FAILURE n_cpu=$MED_CPU n_lg=$MED_LOADGEN_CPU
    summarize_server peerd
    local p_done=$DONE p_s=$MED_S p_mibs=$MED_MIBS p_why=$FIRST_FAILURE p_cpu=$MED_CPU p_lg=$MED_LOADGEN_CPU
    local r
    r=$(ratio "$p_s" "$n_s")
    kv nginx_completed "$n_done/$total"; kv peerd_completed "$p_done/$total"
    kv nginx_median_s "$n_s"; kv peerd_median_s "$p_s"
    kv nginx_median_mib_per_s "$n_mibs"; kv peerd_median_mib_per_s "$p_mibs"
    kv ratio_peerd_s_over_nginx_s "$r"
    kv nginx_median_cpu_s "$n_cpu"; kv peerd_median_cpu_s "$p_cpu"
    kv ratio_peerd_cpu_over_nginx_cpu "$(ratio "$p_cpu" "$n_cpu")"
    kv loadgen_median_cpu_s_nginx "$n_lg"; kv loadgen_median_cpu_s_peerd "$p_lg"
    kv peerd_rss_before_mb "$(mb "$peerd_rss_before")"; kv peerd_hwm_mb "$(mb "$peerd_hwm")"
    kv peerd_rss_after_mb "$(mb "$peerd_rss_after")"; kv peerd_active_uploads_after "$uploads_after"
    kv nginx_rss_before_mb "$(mb "$nginx_rss_before")"; kv nginx_hwm_mb "$(mb "$nginx_hwm")"
    [ -z "$n_why" ] || kv nginx_first_failure "$n_why"
    [ -z "$p_why" ] || kv peerd_first_failure "$p_why"

    local verdict=ok
    [ "$p_done" = "$total" ] && [ "$uploads_after" = 0 ] || verdict=MISSED
    row "nginx: $CLIENTS at once × $ROUNDS rounds" "$n_done/$total ok, $n_s s ($n_mibs MiB/s)" "-" "-"
    row "peerd: $CLIENTS at once × $ROUNDS rounds" "$p_done/$total ok, $p_s s ($p_mibs MiB/s)" "all complete" "$verdict"
    row "ratio: peerd s ÷ nginx s (median)" "${r}×" "-" "-"
    row "server CPU per round: nginx, peerd (median)" "$n_cpu s, $p_cpu s" "-" "-"
    row "load generator CPU per round: vs nginx, vs peerd" "$n_lg s, $p_lg s" "-" "-"
    row "peerd RSS before → peak under load" "$(mb "$peerd_rss_before") → $(mb "$peerd_hwm") MB" "-" "-"
    row "nginx RSS before → peak under load" "$(mb "$nginx_rss_before") → $(mb "$nginx_hwm") MB" "-" "-"
}

# ---- latency ----

publish_many() {
    local i
    mkdir -p "$TMP/many"
    for ((i = 1; i <= LIST_FILES; i++)); do
        printf 'file %d\n' "$i" >"$TMP/many/f$i"
        "$PEERCTL" --socket "$TMP/ctl1.sock" publish "$TMP/many/f$i" "f$i" >/dev/null \
            || die "peerctl publish f$i failed: $(tail -n 5 "$TMP/ctl1.log")"
    done
    local n
    n=$("$PEERCTL" --socket "$TMP/ctl1.sock" list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["files"]))')
    [ "$n" = "$LIST_FILES" ] || die "peerd lists $n files, expected $LIST_FILES"
}

transmission_lists_all() {
    [ "$(transmission-remote "$TR_RPC" -l | grep -c ' f[0-9]*$')" = "$LIST_FILES" ]
}

# A transmission-daemon on loopback only (RPC, peer port; no DHT, LPD, uTP,
# port mapping) holding one torrent per file of publish_many. Sets TR_RPC.
start_transmission() {
    local cfg=$TMP/transmission rpc peer i
    mkdir -p "$cfg/torrents"
    rpc=$(free_port); peer=$(free_port)
    transmission-daemon -f -g "$cfg" -p "$rpc" -r 127.0.0.1 -T -O -Y --no-utp -M -P "$peer" \
        -i 127.0.0.1 -I ::1 -w "$TMP/many" -e "$cfg/log" >/dev/null 2>&1 &
    TR_PID=$!
    PIDS+=("$TR_PID")
    TR_RPC=127.0.0.1:$rpc
    wait_for 20 "transmission-daemon" transmission-remote "$TR_RPC" -l
    # The tracker URL is a closed loopback port: announces fail at once.
    for ((i = 1; i <= LIST_FILES; i++)); do
        transmission-create -o "$cfg/torrents/f$i.torrent" -t http://127.0.0.1:9/announce "$TMP/many/f$i" >/dev/null
        transmission-remote "$TR_RPC" -a "$cfg/torrents/f$i.torrent" >/dev/null
    done
    wait_for 30 "transmission-daemon to list $LIST_FILES torrents" transmission_lists_all
}

bench_latency() {
    echo "== latency: peerctl list with $LIST_FILES files: $LIST_RUNS processes, $CONTROL_REQUESTS in-process round trips" >&2
    start_peerd ctl1
    publish_many
    local cmds=(--command "peerctl_list=$PEERCTL --socket $TMP/ctl1.sock list" --command "true=/bin/true")
    HAVE_TR=0
    if command -v transmission-daemon >/dev/null && command -v transmission-remote >/dev/null; then
        start_transmission
        HAVE_TR=1
        cmds+=(--command "transmission_remote_l=$(command -v transmission-remote) $TR_RPC -l")
    else
        echo "transmission-daemon not installed: /bin/true is the only reference" >&2
    fi
    local out=$TMP/spawn.out
    "$LOAD" spawn --runs "$LIST_RUNS" "${cmds[@]}" >"$out" || die "peerd_load spawn failed"
    cat "$out"
    # Its retries of the unreachable tracker must not share the CPU with
    # the in-process measurement.
    [ "$HAVE_TR" = 0 ] || stop_process "$TR_PID"
    local cpu0 warmup=100 sessions=500
    cpu0=$(cpu_s "$PEERD_PID")
    "$LOAD" control --socket "$TMP/ctl1.sock" --requests "$CONTROL_REQUESTS" --warmup "$warmup" \
        --sessions "$sessions" --expect-files "$LIST_FILES" >"$TMP/control.out" \
        || die "peerd_load control failed: $(tail -n 5 "$TMP/ctl1.log")"
    # What peerd spent per list (every list of the run; the sessions' hellos
    # are a small part): the server's share of the round trip.
    awk -v a="$cpu0" -v b="$(cpu_s "$PEERD_PID")" -v n="$((CONTROL_REQUESTS + warmup + sessions))" \
        'BEGIN { printf "peerd_cpu_us_per_list %.1f\n", (b - a) * 1e6 / n }' >>"$TMP/control.out"
    cat "$TMP/control.out"
    report_latency "$out" "$TMP/control.out"
}

report_latency() {
    local spawn=$1 control=$2 pp50 pp99
    pp50=$(value_of peerctl_list_p50_ms "$spawn"); pp99=$(value_of peerctl_list_p99_ms "$spawn")
    kv list_files "$LIST_FILES"
    row "peerctl list, process ($LIST_FILES files, $LIST_RUNS runs)" "p50 $pp50 ms, p99 $pp99 ms" "-" "-"
    if [ "$HAVE_TR" = 1 ]; then
        local tp50 tp99
        tp50=$(value_of transmission_remote_l_p50_ms "$spawn"); tp99=$(value_of transmission_remote_l_p99_ms "$spawn")
        kv ratio_peerctl_over_transmission_p50 "$(ratio "$pp50" "$tp50")"
        kv ratio_peerctl_over_transmission_p99 "$(ratio "$pp99" "$tp99")"
        row "transmission-remote -l, process ($LIST_FILES torrents)" "p50 $tp50 ms, p99 $tp99 ms" "-" "-"
        row "ratio: peerctl ÷ transmission-remote (p50, p99)" \
            "$(ratio "$pp50" "$tp50")×, $(ratio "$pp99" "$tp99")×" "-" "-"
    fi
    local fp50
    fp50=$(value_of true_p50_ms "$spawn")
    kv ratio_peerctl_over_true_p50 "$(ratio "$pp50" "$fp50")"
    row "/bin/true, process (the floor)" "p50 $fp50 ms, p99 $(value_of true_p99_ms "$spawn") ms" "-" "-"
    row "list round trip in-process ($CONTROL_REQUESTS, one session)" \
        "p50 $(value_of control_list_p50_us "$control") µs, p99 $(value_of control_list_p99_us "$control") µs" "-" "-"
    row "connect + hello + list in-process" \
        "p50 $(value_of control_session_p50_us "$control") µs, p99 $(value_of control_session_p99_us "$control") µs" "-" "-"
    row "peerd CPU per list request" "$(value_of peerd_cpu_us_per_list "$control") µs" "-" "-"
}

main() {
    local selected=("$@") part
    [ ${#selected[@]} -gt 0 ] || selected=(concurrent latency)
    for part in "${selected[@]}"; do
        case "$part" in concurrent|latency) ;; *) die "unknown part '$part' (concurrent, latency)" ;; esac
    done
    setup
    for part in "${selected[@]}"; do "bench_$part"; done
    print_summary
    [ -z "${BENCH_ROWS:-}" ] || printf '%s\n' "${SUMMARY[@]}" >"$BENCH_ROWS"
}

main "$@"
