#!/usr/bin/env bash
# tests/packaging/test_config.sh — the daemons' config files (issue 4): every
# command-line option is settable in the file and listed in the shipped
# defaults; a file sets options and the command line overrides them; a bad
# file is refused with exit 2 and an error naming its line; SIGHUP re-reads
# the file, logs what changed in one line, and keeps the running settings
# when the file is bad; journald priorities prefix the lines under systemd.
#   test_config.sh SOURCE_DIR TRACKERD PEERD TRACKERCTL
set -euo pipefail

source_dir=$1 trackerd=$2 peerd=$3 trackerctl=$4
deadline_s=20

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"
export HOME=$tmp/home
unset XDG_RUNTIME_DIR XDG_STATE_HOME XDG_CONFIG_HOME PEERD_SOCKET TRACKER_SOCKET JOURNAL_STREAM
mkdir -p "$HOME"

log_has() { grep -qF -- "$2" "$1"; }

# --- every option, in the shipped defaults ----------------------------------
for daemon in trackerd peerd; do
    program=$trackerd conf=$source_dir/packaging/tracker.conf
    [ $daemon = peerd ] && program=$peerd conf=$source_dir/packaging/peerd.conf
    options=$("$program" --help | sed -n 's/^  --\([a-z-]*\).*/\1/p' | grep -vx 'help\|version\|config' | sort)
    keys=$(sed -n 's/^# \([a-z-]*\) = .*/\1/p' "$conf" | sort)
    [ "$options" = "$keys" ] || fail "$conf lists '$(echo $keys)', $daemon --help '$(echo $options)'"
    sed 's/^# \([a-z-]* = \)/\1/' "$conf" > "$tmp/$daemon-all.conf"
    out=$("$program" --config "$tmp/$daemon-all.conf" --version 2>&1) ||
        fail "$daemon refuses its shipped defaults uncommented: $out"
done
echo "ok: every option of trackerd and peerd is in the shipped config files, and their defaults parse"

# --- bad files: exit 2, one line naming the line -------------------------------
expect_refused() {   # DAEMON_BINARY EXPECTED_TEXT then the file's lines
    local program=$1 expected=$2
    shift 2
    printf '%s\n' "$@" > "$tmp/bad.conf"
    local out rc=0
    # No --version: it would end the run before the checks across options.
    out=$(timeout 10 "$program" --config "$tmp/bad.conf" --listen 127.0.0.1:0 2>&1) || rc=$?
    [ $rc -eq 2 ] || fail "exit $rc, not 2, for $(printf '%s|' "$@"): $out"
    [ "$(wc -l <<<"$out")" -eq 1 ] || fail "not one line: $out"
    grep -qF -- "$expected" <<<"$out" || fail "expected '$expected' in: $out"
}
bad=$tmp/bad.conf
expect_refused "$trackerd" "trackerd: $bad:3: unknown option 'max-peer'" '# comment' 'heartbeat = 5' 'max-peer = 10'
expect_refused "$trackerd" "$bad:1: heartbeat = 0: Value 0 not in range 1 to 3600" 'heartbeat = 0'
expect_refused "$trackerd" "$bad:2: max-peers = lots:" 'heartbeat = 5' 'max-peers = "lots"'
expect_refused "$trackerd" "$bad:1: listen = nowhere: 'nowhere': expected ADDRESS:PORT" 'listen = "nowhere"'
expect_refused "$trackerd" "$bad:2: sections like '[tracker]' are not used" '' '[tracker]'
expect_refused "$trackerd" "$bad:1: expected key = value, got 'max-peers 10'" 'max-peers 10'
expect_refused "$trackerd" "$bad:1: listen: unterminated" 'listen = "0.0.0.0:9999'
expect_refused "$trackerd" "$bad:2: 'heartbeat' is set twice (first on line 1)" 'heartbeat = 5' 'heartbeat = 6'
expect_refused "$trackerd" "$bad:1: admin-socket: lists are not used" 'admin-socket = ["/a", "/b"]'
expect_refused "$trackerd" "$bad:1: admin-socket: put text with spaces in double quotes" 'admin-socket = /a b'
expect_refused "$trackerd" "--peer-timeout (5) must be longer than --heartbeat (10)" 'peer-timeout = 5'
expect_refused "$peerd" "peerd: $bad:2: max-upload-rate = fast: bad rate 'fast': no number; a rate is" \
    'workers = 2' 'max-upload-rate = "fast"'
expect_refused "$peerd" "$bad:1: workers = 0: Value 0 not in range 1 to 128" 'workers = 0'
expect_refused "$peerd" "$bad:1: fetch-memory = 1M: at least 16Mi" 'fetch-memory = "1M"'
out=$("$trackerd" --config "$tmp/missing.conf" --version 2>&1) && fail "a missing --config file was accepted"
grep -qF "$tmp/missing.conf: cannot read: No such file or directory" <<<"$out" || fail "missing file: $out"
echo "ok: bad config files are refused with exit 2 and one line naming the file and line"

# --- trackerd: the file sets, the command line wins, SIGHUP reloads -----------
conf=$tmp/tracker.conf
printf '%s\n' 'listen = "127.0.0.1:0"' "admin-socket = \"$tmp/from-file.sock\"" 'max-peers = 3' \
    'max-files-per-peer = 9' 'log-level = "debug"' > "$conf"
"$trackerd" --config "$conf" --admin-socket "$tmp/tracker.sock" --max-files-per-peer 7 2>"$tmp/trackerd.log" &
tracker=$!
pids+=($tracker)
wait_until log_has "$tmp/trackerd.log" "admin socket $tmp/tracker.sock" ||
    fail "trackerd did not start: $(cat "$tmp/trackerd.log")"
log_has "$tmp/trackerd.log" "listening for peers on 127.0.0.1:" || fail "listen from the file was not used"
[ -e "$tmp/from-file.sock" ] && fail "the file's admin-socket won over the command line"

printf '%s\n' 'listen = "127.0.0.1:0"' "admin-socket = \"$tmp/from-file.sock\"" 'max-peers = 5' \
    'max-files-per-peer = 11' 'peer-timeout = 40' 'log-level = "info"' > "$conf"
kill -HUP $tracker
expected="trackerd: reloaded $conf: log-level debug -> info, max-peers 3 -> 5, peer-timeout 30 -> 40"
wait_until log_has "$tmp/trackerd.log" "$expected" || fail "no '$expected' in: $(cat "$tmp/trackerd.log")"

printf '%s\n' 'listen = "127.0.0.1:1"' 'max-peers = 0' > "$conf"
kill -HUP $tracker
expected="trackerd: reload failed, keeping the running settings: $conf:2: max-peers = 0: Value 0 not in range"
wait_until log_has "$tmp/trackerd.log" "$expected" || fail "no '$expected' in: $(cat "$tmp/trackerd.log")"
"$trackerctl" --socket "$tmp/tracker.sock" stats >/dev/null || fail "trackerd is gone after a bad reload"

printf '%s\n' 'listen = "127.0.0.1:1"' 'max-peers = 5' 'peer-timeout = 40' > "$conf"
kill -HUP $tracker
expected="trackerd: restart trackerd to apply: listen 127.0.0.1:0 -> 127.0.0.1:1"
wait_until log_has "$tmp/trackerd.log" "$expected" || fail "no '$expected' in: $(cat "$tmp/trackerd.log")"
log_has "$tmp/trackerd.log" "max-files-per-peer" && fail "a reload changed max-files-per-peer, set on the command line"
kill -TERM $tracker
wait $tracker || fail "trackerd exited $? on SIGTERM"
pids=()
echo "ok: trackerd: the file sets options, the command line wins, SIGHUP applies changes and refuses a bad file"

# --- peerd: the same, with its upload limits ----------------------------------
conf=$tmp/peerd.conf
printf '%s\n' 'tracker = "127.0.0.1:1"' 'listen = "127.0.0.1:0"' "socket = \"$tmp/from-file.sock\"" \
    "state-dir = \"$tmp/state\"" 'max-uploads = 8' > "$conf"
"$peerd" --config "$conf" --name solo --socket "$tmp/peerd.sock" 2>"$tmp/peerd.log" &
peer=$!
pids+=($peer)
wait_until test -S "$tmp/peerd.sock" || fail "peerd did not start: $(cat "$tmp/peerd.log")"
[ -e "$tmp/from-file.sock" ] && fail "the file's socket won over the command line"
[ -d "$tmp/state" ] || fail "state-dir from the file was not used"
printf '%s\n' 'tracker = "127.0.0.1:1"' 'listen = "127.0.0.1:0"' "state-dir = \"$tmp/state\"" \
    'max-uploads = 16' 'max-upload-rate = "10M"' 'max-download-rate = "20Mbit"' 'name = "other"' > "$conf"
kill -HUP $peer
expected="peerd: reloaded $conf: max-uploads 8 -> 16, max-upload-rate 0 -> 10M, max-download-rate 0 -> 20Mbit"
wait_until log_has "$tmp/peerd.log" "$expected" || fail "no '$expected' in: $(cat "$tmp/peerd.log")"
log_has "$tmp/peerd.log" "restart peerd to apply: name" && fail "the file's name won over --name"
kill -TERM $peer
wait $peer || fail "peerd exited $? on SIGTERM"
pids=()
echo "ok: peerd: the file sets options, the command line wins, SIGHUP applies the upload and rate limits"

# --- journald priorities ----------------------------------------------------------
JOURNAL_STREAM=8:1234 "$trackerd" --config /dev/null --listen 127.0.0.1:0 \
    --admin-socket "$tmp/journal.sock" 2>"$tmp/journal.log" &
tracker=$!
pids+=($tracker)
# The line itself, not the socket: the socket exists before the line is
# written and before SIGTERM is handled, so a kill then left an empty log.
wait_until grep -q 'listening for peers on ' "$tmp/journal.log" ||
    fail "trackerd did not start: $(cat "$tmp/journal.log")"
kill -TERM $tracker
wait $tracker || true
pids=()
grep -q '^<6>listening for peers on ' "$tmp/journal.log" || fail "no <6> prefix: $(cat "$tmp/journal.log")"
# A mistake at start is an error too, without the program's name (journald
# has it): as a failed reload is.
for run in "$trackerd --max-peers" "$peerd --max-uploads"; do
    read -r daemon option <<<"$run"
    out=$(JOURNAL_STREAM=8:1234 "$daemon" --config /dev/null "$option" 0 2>&1) && fail "$daemon $option 0 started"
    grep -qx -- "<3>$option: Value 0 not in range .*" <<<"$out" || fail "$daemon $option 0, under the journal: $out"
done
echo "ok: under the journal each line carries its priority (<6>; <3> for a mistake at start)"
