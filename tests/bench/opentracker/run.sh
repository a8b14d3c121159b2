#!/usr/bin/env bash
# Reference side of the tracker benchmark: HTTP announce rate of Debian's
# opentracker on loopback, driven by wrk.
# Usage: run.sh [PORT]   env: BENCH_SECONDS (10), BENCH_HASHES (10000),
#        BENCH_THREADS (2), BENCH_CONNS (64), BENCH_VERIFY=1 (check every body, slower)
# Last stdout line: opentracker_announce_rps <number>
set -euo pipefail

PORT=${1:-16969}
SECONDS_=${BENCH_SECONDS:-10}
NHASH=${BENCH_HASHES:-10000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
URL="http://127.0.0.1:$PORT"

die() { echo "opentracker bench: $*" >&2; exit 1; }
for b in opentracker wrk curl od; do command -v "$b" >/dev/null || die "missing $b (apt-get install -y opentracker wrk curl)"; done

# A running server on PORT would be benchmarked instead of ours.
curl -s -o /dev/null --max-time 1 "$URL/" && die "port $PORT already in use"

WORK=$(mktemp -d)
# opentracker chroots into -d as root, then reads the whitelist as 'nobody'.
chmod 755 "$WORK"
OT_PID='' WRK_PID=''
cleanup() {
  for p in $WRK_PID $OT_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# Debian builds opentracker with WANT_ACCESSLIST_WHITE: unknown hashes get
# "failure reason", so every hash we announce must be listed (40 hex per line).
head -c $((NHASH * 20)) /dev/urandom | od -An -v -tx1 -w20 | tr -d ' ' > "$WORK/whitelist"
chmod 644 "$WORK/whitelist"

# -p without -P: TCP only (no default UDP 6969). Whitelist path is relative
# because it is opened after the chroot into $WORK.
( cd "$WORK" && exec opentracker -i 127.0.0.1 -p "$PORT" -d "$WORK" -u nobody -w whitelist ) \
  >"$WORK/ot.log" 2>&1 &
OT_PID=$!

# One real announce: proves the listener is up AND the whitelist is loaded
# (opentracker loads it in a background thread, so retry briefly).
first=$(head -n1 "$WORK/whitelist" | sed 's/../%&/g')
body=
for _ in $(seq 50); do
  kill -0 "$OT_PID" 2>/dev/null || die "opentracker exited: $(cat "$WORK/ot.log")"
  body=$(curl -s --max-time 2 "$URL/announce?info_hash=$first&peer_id=-PS0001-000000000000&port=6881&uploaded=0&downloaded=0&left=0&compact=1" | tr -d '\0' || true)
  [[ $body == d*e && $body != *"failure reason"* ]] && break
  sleep 0.1
done
[[ $body == d*interval* && $body != *"failure reason"* ]] || die "bad announce response: ${body:-<none>}"

# Background + wait (not $(...)) so a TERM from a caller stops us at once.
wrk -t"${BENCH_THREADS:-2}" -c"${BENCH_CONNS:-64}" -d"${SECONDS_}s" --timeout 5s \
    -s "$HERE/announce.lua" "$URL" -- "$WORK/whitelist" >"$WORK/wrk.out" &
WRK_PID=$!
wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/wrk.out")"
WRK_PID=
out=$(<"$WORK/wrk.out")
echo "$out" >&2

# Any HTTP error means we measured failures, not announces. opentracker
# answers HTTP/1.0 and closes after each response, which wrk reports as one
# "read" socket error per request: expected, so only the other kinds count.
! grep -q 'Non-2xx' <<<"$out" || die "wrk saw non-2xx responses"
! grep -qE 'Socket errors:.*(connect|write|timeout) [1-9]' <<<"$out" || die "wrk saw socket errors"
! grep -qE '^verify_bad [1-9]' <<<"$out" || die "some announce bodies were failures"

rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
[[ -n $rps ]] || die "no Requests/sec in wrk output"
echo "opentracker_announce_rps $rps"
