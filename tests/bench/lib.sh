# tests/bench/lib.sh — what the benchmark scripts (fetch.sh, concurrent.sh,
# state.sh) share: a temp dir and the processes started, cleaned up on exit; `key value`
# output and summary rows; arithmetic on timings; waiting with a deadline; and
# starting nginx, trackerd and peerds on loopback.
# The sourcing script sets BENCH_NAME and BUILD_DIR first; TRACKERD, PEERD
# and PEERCTL default to that build's binaries.

TRACKERD=${TRACKERD:-$BUILD_DIR/tracker/trackerd}
PEERD=${PEERD:-$BUILD_DIR/daemon/peerd}
PEERCTL=${PEERCTL:-$BUILD_DIR/ctl/peerctl}

# peerctl against the peerd named $1 (its socket is $TMP/$1.sock).
ctl() { local who=$1; shift; "$PEERCTL" --socket "$TMP/$who.sock" "$@"; }

TMP=''
PIDS=()      # newest last; stopped newest first
SUMMARY=()   # rows "metric|value|target|verdict"

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

TMPFS_MOUNTED=''   # a tmpfs a script mounted, unmounted on exit

cleanup() {
    local i pid
    [ -z "$TMPFS_MOUNTED" ] || umount "$TMPFS_MOUNTED" 2>/dev/null || true
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "$TMP" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops a process we started and drops it from PIDS.
stop_process() {
    local keep=() pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}

# The value of KEY in a file of "key value" lines (the last one).
value_of() {
    local v
    v=$(awk -v k="$1" '$1 == k { print $2 }' "$2" | tail -n1)
    [ -n "$v" ] || die "no '$1' in $2"
    echo "$v"
}

row() { SUMMARY+=("$1|$2|$3|$4"); }
kv() { echo "$1 $2"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# verdict VALUE OP TARGET → "ok" or "MISSED" (OP: ge or le).
verdict() {
    awk -v v="$1" -v op="$2" -v t="$3" \
        'BEGIN { ok = (op == "ge") ? (v >= t) : (v <= t); print ok ? "ok" : "MISSED" }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Prints the summary table (the rows, under a header).
print_summary() {
    echo
    echo "== summary ($BENCH_NAME)"
    {
        echo "metric|value|target|result"
        for r in "${SUMMARY[@]}"; do echo "$r"; done
    } | column -t -s '|'
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds or
# the deadline passes.
wait_for() {
    local limit=$1 what=$2; shift 2
    local deadline
    deadline=$(awk -v n="$(now)" -v l="$limit" 'BEGIN { printf "%.3f", n + l }')
    until "$@" >/dev/null 2>&1; do
        awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' && die "timed out waiting for $what"
        sleep 0.05
    done
}

# make_random_file PATH SIZE: SIZE (as head -c takes it) random bytes at PATH;
# sets BYTES to its size.
make_random_file() {
    echo "== creating a $2 random file" >&2
    openssl enc -aes-128-ctr -pass pass:x -nosalt </dev/zero 2>/dev/null | head -c "$2" >"$1" || true
    BYTES=$(stat -c %s "$1")
    [ "$BYTES" -gt 0 ] || die "could not create the test file"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { kill -0 "$1" 2>/dev/null; }
log_has_port() { grep -q "$2" "$1"; }

# start_nginx: nginx (one worker, sendfile on) serving $TMP/www on
# 127.0.0.1; sets NGINX_PID, NGINX_PORT and NGINX_URL (of $TMP/www/big).
start_nginx() {
    mkdir -p "$TMP/nginx"
    NGINX_PORT=$(free_port)
    cat >"$TMP/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/www;
    }
}
CONF
    nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" 2>"$TMP/nginx/stderr" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    NGINX_URL=http://127.0.0.1:$NGINX_PORT/big
    wait_for 10 "nginx on port $NGINX_PORT" curl -sfI "$NGINX_URL"
}

# start_trackerd [OPTION...]: trackerd on 127.0.0.1 (a free port), admin
# socket $TMP/tracker.sock; sets TRACKER_PORT.
start_trackerd() {
    TRACKER_PORT=$(free_port)
    "$TRACKERD" --listen "127.0.0.1:$TRACKER_PORT" --admin-socket "$TMP/tracker.sock" \
        --config /dev/null "$@" 2>"$TMP/tracker.log" &
    PIDS+=($!)
    local tpid=$!
    wait_for 10 "trackerd to listen" log_has_port "$TMP/tracker.log" "127.0.0.1:$TRACKER_PORT"
    alive "$tpid" || die "trackerd exited: $(cat "$TMP/tracker.log")"
}

# start_peerd NAME [OPTION...]: a peerd on $PEERD_HOST (127.0.0.1; any
# port) with its socket at $TMP/NAME.sock and its state in $TMP/NAME; sets
# PEERD_PID.
start_peerd() {
    local name=$1; shift
    mkdir -p "$TMP/$name"
    "$PEERD" --tracker "127.0.0.1:$TRACKER_PORT" --name "$name" --listen "${PEERD_HOST:-127.0.0.1}:0" \
        --socket "$TMP/$name.sock" --state-dir "$TMP/$name" --config /dev/null "$@" 2>"$TMP/$name.log" &
    PEERD_PID=$!
    PIDS+=("$PEERD_PID")
    wait_for 10 "peerd $name" "$PEERCTL" --socket "$TMP/$name.sock" status --json
}
