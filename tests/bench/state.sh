#!/usr/bin/env bash
# tests/bench/state.sh — what a publish costs as peerd's publications grow,
# and whether serving waits on it: peerd's SQLite state against the JSON
# state file of the previous peerd (commit 4457ca3, built from git in the
# run); run by `scripts/bench state`.
#
# Usage: tests/bench/state.sh
#
# On loopback only, in a temp dir: one trackerd (--max-files-per-peer 20000),
# and for every level N of BENCH_STATE_LEVELS (10 1000 10000) and each peerd
# (json: 4457ca3, sqlite: this tree), a fresh peerd whose state directory is
# seeded with N publications of small files (a publications.json made here,
# which the SQLite peerd imports at start, as on an upgrade). Once the tracker
# lists them, tests/bench/peerd_load publish makes BENCH_STATE_PUBLISHES (300)
# more publishes over one control session, each timed, while a second thread
# GETs a 64 KiB published file from the same peerd every 5 ms (a new
# connection each); 50 GETs before publishing give the idle floor.
# BENCH_STATE_ROUNDS (3) rounds, the levels and peerds interleaved in each;
# medians over the rounds of each run's median (p99, max).
# Prints `key value` lines, then a summary table; with BENCH_ROWS set, the
# summary's rows also go to that file (how scripts/bench takes them).
# env: BUILD_DIR (build), BENCH_STATE_LEVELS, BENCH_STATE_PUBLISHES,
#      BENCH_STATE_ROUNDS, BENCH_OLD_PEERD (a peerd of 4457ca3 already built:
#      skips building it)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
read -r -a LEVELS <<<"${BENCH_STATE_LEVELS:-10 1000 10000}"
PUBLISHES=${BENCH_STATE_PUBLISHES:-300}
ROUNDS=${BENCH_STATE_ROUNDS:-3}
OLD_COMMIT=4457ca3   # the last peerd with the JSON state file

TRACKERD=$BUILD_DIR/tracker/trackerd
NEW_PEERD=$BUILD_DIR/daemon/peerd
PEERCTL=$BUILD_DIR/ctl/peerctl
TRACKERCTL=$BUILD_DIR/ctl/trackerctl
LOAD=$BUILD_DIR/tests/bench/peerd_load

BENCH_NAME=state.sh
source "$ROOT/tests/bench/lib.sh"

# The previous peerd, from git into the temp dir (ccache makes a rebuild cheap).
build_old_peerd() {
    if [ -n "${BENCH_OLD_PEERD:-}" ]; then
        OLD_PEERD=$BENCH_OLD_PEERD
        return
    fi
    echo "== building peerd of $OLD_COMMIT (the JSON state file) in $TMP/old" >&2
    mkdir -p "$TMP/old"
    git -C "$ROOT" archive "$OLD_COMMIT" | tar -x -C "$TMP/old"
    cmake -S "$TMP/old" -B "$TMP/old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$TMP/old/build" -j "$(nproc)" --target peerd >"$TMP/old/build.log" 2>&1 ||
        die "building peerd of $OLD_COMMIT failed: $(tail -n 20 "$TMP/old/build.log")"
    OLD_PEERD=$TMP/old/build/daemon/peerd
}

# The seed: files seed0..seed{max-1} and a 64 KiB probe in $TMP/seed, and for
# each level a publications.json of the previous peerd's format listing that
# many of them and the probe (piece hashes and content ids computed here, as
# proto/content.hpp defines them). Sets PROBE_ID.
make_seed() {
    local max=0 n
    for n in "${LEVELS[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
    mkdir -p "$TMP/seed/files"
    PROBE_ID=$(python3 - "$TMP/seed" "$max" "${LEVELS[@]}" <<'PY'
import hashlib, json, os, struct, sys
seed, top, levels = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3:]]
PIECE = 256 * 1024
def entry(name, path, data):
    pieces = [hashlib.sha256(data[i:i + PIECE]).digest() for i in range(0, len(data), PIECE)]
    cid = hashlib.sha256(struct.pack('>Q', PIECE) + b''.join(pieces)).hexdigest()
    return {"name": name, "path": path, "size": len(data), "mtime_ns": os.stat(path).st_mtime_ns,
            "id": cid, "piece_size": PIECE, "published_at": 1700000000,
            "pieces": [p.hex() for p in pieces]}
def make(name, data):
    path = os.path.join(seed, "files", name)
    with open(path, "wb") as f:
        f.write(data)
    return entry(name, path, data)
probe = make("probe", bytes(range(256)) * 256)
seeds = [make("seed%d" % i, b"seed file %d\n" % i) for i in range(top)]
for n in levels:
    with open(os.path.join(seed, "publications-%d.json" % n), "w") as f:
        json.dump({"version": 1, "publications": seeds[:n] + [probe]}, f)
print(probe["id"])
PY
    )
}

tracker_files() { "$TRACKERCTL" --socket "$TMP/tracker.sock" --json stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["files"])'; }
tracker_has() { [ "$(tracker_files)" -ge "$1" ]; }
tracker_empty() { [ "$(tracker_files)" -eq 0 ]; }

# run_one KIND LEVEL ROUND: a seeded peerd of KIND (json, sqlite), PUBLISHES
# publishes timed; its lines go to $TMP/KIND-LEVEL.ROUND.
run_one() {
    local kind=$1 level=$2 round=$3 name="$1$2r$3" out="$TMP/$1-$2.$3" port
    mkdir -p "$TMP/$name"
    cp "$TMP/seed/publications-$level.json" "$TMP/$name/publications.json"
    if [ "$kind" = json ]; then PEERD=$OLD_PEERD; else PEERD=$NEW_PEERD; fi
    start_peerd "$name"
    wait_for 120 "the tracker to list the $level publications of $name" tracker_has $((level + 1))
    port=$("$PEERCTL" --socket "$TMP/$name.sock" status --json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["port"])')
    "$LOAD" publish --socket "$TMP/$name.sock" --dir "$TMP/$name/new" --count "$PUBLISHES" \
        --idle-requests 50 --url "http://127.0.0.1:$port/v1/files/$PROBE_ID" >"$out" ||
        die "peerd_load publish failed against $name: $(tail -n 5 "$TMP/$name.log")"
    stop_process "$PEERD_PID"
    wait_for 30 "the tracker to forget $name" tracker_empty
    rm -rf "$TMP/$name/new"
    grep -E '^(publish_p50_ms|publish_p99_ms|http_idle_p50_ms|http_busy_(p50|p99|max)_ms|http_busy_(requests|errors)) ' "$out" |
        sed "s/^/${kind}_${level}_run${round}_/"
}

# median_of KIND LEVEL KEY: the median over the rounds of KEY.
median_of() {
    local r values=()
    for ((r = 1; r <= ROUNDS; r++)); do values+=("$(value_of "$3" "$TMP/$1-$2.$r")"); done
    median "${values[@]}"
}

main() {
    for f in "$TRACKERD" "$NEW_PEERD" "$PEERCTL" "$TRACKERCTL" "$LOAD"; do [ -x "$f" ] || die "missing $f (build first)"; done
    for c in python3 git curl; do command -v "$c" >/dev/null || die "missing $c"; done
    TMP=$(mktemp -d)
    build_old_peerd
    echo "== state: publish cost at ${LEVELS[*]} publications, json ($OLD_COMMIT) vs sqlite, $PUBLISHES publishes, $ROUNDS rounds" >&2
    make_seed
    TRACKER_PORT=$(free_port)
    "$TRACKERD" --listen "127.0.0.1:$TRACKER_PORT" --admin-socket "$TMP/tracker.sock" \
        --max-files-per-peer 20000 --config /dev/null 2>"$TMP/tracker.log" &
    PIDS+=($!)
    wait_for 10 "trackerd to listen" log_has_port "$TMP/tracker.log" "127.0.0.1:$TRACKER_PORT"

    local round level kind
    for ((round = 1; round <= ROUNDS; round++)); do
        for level in "${LEVELS[@]}"; do
            for kind in json sqlite; do run_one "$kind" "$level" "$round"; done
        done
    done

    local j s top=${LEVELS[-1]} first=${LEVELS[0]}
    for level in "${LEVELS[@]}"; do
        j=$(median_of json "$level" publish_p50_ms)
        s=$(median_of sqlite "$level" publish_p50_ms)
        kv "json_publish_at_${level}_ms" "$j"
        kv "sqlite_publish_at_${level}_ms" "$s"
        row "publish at $level publications: json, sqlite (ms, median)" "$j, $s" "-" "-"
    done
    local flat_json flat_sqlite
    flat_json=$(ratio "$(median_of json "$top" publish_p50_ms)" "$(median_of json "$first" publish_p50_ms)")
    flat_sqlite=$(ratio "$(median_of sqlite "$top" publish_p50_ms)" "$(median_of sqlite "$first" publish_p50_ms)")
    kv json_publish_growth "$flat_json"
    kv sqlite_publish_growth "$flat_sqlite"
    row "publish at $top ÷ at $first: json" "${flat_json}×" "-" "-"
    row "publish at $top ÷ at $first: sqlite" "${flat_sqlite}×" "≤ 1.5×" "$(verdict "$flat_sqlite" le 1.5)"
    for kind in json sqlite; do
        local idle p50 p99 max n
        n=$(median_of "$kind" "$top" http_busy_requests)
        kv "${kind}_http_busy_requests" "$n"
        idle=$(median_of "$kind" "$top" http_idle_p50_ms)
        p50=$(median_of "$kind" "$top" http_busy_p50_ms)
        p99=$(median_of "$kind" "$top" http_busy_p99_ms)
        max=$(median_of "$kind" "$top" http_busy_max_ms)
        kv "${kind}_http_idle_p50_ms" "$idle"
        kv "${kind}_http_busy_p50_ms" "$p50"
        kv "${kind}_http_busy_p99_ms" "$p99"
        kv "${kind}_http_busy_max_ms" "$max"
        if [ "$kind" = sqlite ]; then
            row "GET while publishing at $top: $kind p50, p99, max (idle p50; GETs)" "$p50, $p99, $max ms ($idle; $n)" "p99 ≤ 5 ms" "$(verdict "$p99" le 5)"
        else
            row "GET while publishing at $top: $kind p50, p99, max (idle p50; GETs)" "$p50, $p99, $max ms ($idle; $n)" "-" "-"
        fi
    done
    print_summary
    [ -z "${BENCH_ROWS:-}" ] || printf '%s\n' "${SUMMARY[@]}" >"$BENCH_ROWS"
}

main "$@"
