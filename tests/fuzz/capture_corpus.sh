#!/usr/bin/env bash
# tests/fuzz/capture_corpus.sh BUILD_DIR OUT_DIR — records real traffic for
# the fuzzers' seed corpora (tests/fuzz/corpus/, docs/robustness.md): starts
# trackerd and two peerds of BUILD_DIR on loopback under strace, drives them
# with peerctl, trackerctl and curl as the integration tests do (publish,
# lookup, fetch, search, discover, ping, events, stats, HTTP GET/HEAD with
# ranges, a pieces list), then cuts what crossed each socket into
# OUT_DIR/frame (frame streams), OUT_DIR/http_request (requests),
# OUT_DIR/piece_list (served piece lists), OUT_DIR/http_range (Range values)
# and OUT_DIR/transfer_record (rows of the fetching peer's state database).
# Needs strace, curl, python3. Not part of the suite; run by hand when the
# protocol changes, then pick the files to keep.
set -euo pipefail
build=$(cd "$1" && pwd) out=$2
tmp=$(mktemp -d)
pids=()
stop() {   # the daemons under each strace of pids (strace leaves with them)
    for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
cleanup() { stop; rm -rf "$tmp"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {   # SECONDS COMMAND...: until it succeeds, at most SECONDS
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; exit 1; }
        sleep 0.1
    done
}
trace() { exec strace -f -qq -yy -xx -s 1048576 -e trace=read,write,writev,readv,recvfrom,sendto -o "$1" "${@:2}"; }

tp=$(port) ap=$(port) bp=$(port)
export HOME=$tmp/home TRACKER_SOCKET=$tmp/tracker.sock
mkdir -p "$HOME" "$tmp/a" "$tmp/b"
trace "$tmp/trackerd.trace" "$build/tracker/trackerd" --listen 127.0.0.1:$tp --admin-socket "$TRACKER_SOCKET" \
    --config /dev/null & pids+=($!)
wait_for 20 "$build/ctl/trackerctl" stats
for p in a b; do
    lp=$ap; [ $p = b ] && lp=$bp
    trace "$tmp/peerd-$p.trace" "$build/daemon/peerd" --config /dev/null --name "peer-$p" \
        --tracker 127.0.0.1:$tp --listen 127.0.0.1:$lp --socket "$tmp/$p.sock" --state-dir "$tmp/$p/state" & pids+=($!)
done
for p in a b; do wait_for 20 "$build/ctl/peerctl" --socket "$tmp/$p.sock" status; done

head -c 1000 /dev/urandom > "$tmp/a/small.bin"
head -c 700000 /dev/urandom > "$tmp/a/three pieces.bin"
: > "$tmp/a/empty"
printf 'hello\n' > "$tmp/a/héllo.txt"
A=("$build/ctl/peerctl" --socket "$tmp/a.sock") B=("$build/ctl/peerctl" --socket "$tmp/b.sock")
"${A[@]}" publish "$tmp/a/small.bin" small.bin
"${A[@]}" publish "$tmp/a/three pieces.bin" "three pieces.bin"
"${A[@]}" publish "$tmp/a/empty" empty
"${A[@]}" publish "$tmp/a/héllo.txt" "héllo.txt"
"${A[@]}" --json list >/dev/null
"${B[@]}" search "" >/dev/null
"${B[@]}" fetch small.bin -o "$tmp/b/small.bin"
"${B[@]}" fetch "three pieces.bin" -o "$tmp/b/three.bin"
"${B[@]}" fetch empty -o "$tmp/b/empty"
"${B[@]}" fetch nothing-here -o "$tmp/b/x" || true
"${B[@]}" --json transfers >/dev/null
"${B[@]}" status >/dev/null
"${A[@]}" unpublish empty
T=("$build/ctl/trackerctl")
"${T[@]}" peers >/dev/null; "${T[@]}" files >/dev/null; "${T[@]}" stats >/dev/null
"${T[@]}" discover peer-a >/dev/null; "${T[@]}" ping peer-b >/dev/null; "${T[@]}" ping nobody >/dev/null || true
"${T[@]}" events >/dev/null; "${T[@]}" --json files >/dev/null
id=$("${A[@]}" --json list | python3 -c 'import json,sys; print([f["id"] for f in json.load(sys.stdin)["files"] if f["name"]=="three pieces.bin"][0])')
url=http://127.0.0.1:$ap/v1/files/$id
curl -s -o /dev/null "$url/pieces"
curl -s -o /dev/null -r 0-99 "$url"; curl -s -o /dev/null -r 262144- "$url"; curl -s -o /dev/null -r -500 "$url"
curl -s -o /dev/null -r 699999-800000 "$url"; curl -s -o /dev/null -r 800000-900000 "$url"
curl -s -o /dev/null -H 'Range: bytes=5-1,3-4' "$url"; curl -s -o /dev/null -I "$url"
curl -s -o /dev/null --http1.0 "$url"; curl -s -o /dev/null "$url?x=1" -o /dev/null "$url/pieces"   # two on one connection
curl -s -o /dev/null "http://127.0.0.1:$ap/v1/files/zz"
stop

python3 - "$tmp" "$out" "$tp" "$ap" "$bp" <<'PY'
import os, re, sqlite3, struct, sys
tmp, out, tp, ap, bp = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
call = re.compile(r'^(\d+) (read|write|writev|readv|recvfrom|sendto)\((\d+)<(.*?\])>, (.*)\) = (\d+)$')
streams = {}
def unescape(s): return bytes(int(h, 16) for h in re.findall(r'\\x([0-9a-f]{2})', s))
for name in os.listdir(tmp):
    if not name.endswith('.trace'): continue
    for line in open(os.path.join(tmp, name), errors='replace'):
        m = call.match(line.rstrip('\n'))
        if not m or int(m.group(6)) == 0: continue
        pid, op, fd, what, args = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
        if 'TCP' not in what and 'UNIX' not in what: continue
        data = b''.join(unescape(x) for x in re.findall(r'"((?:\\x[0-9a-f]{2})*)"', args))
        data = data[:int(m.group(6))]
        key = (name, fd, what, 'in' if op.startswith('read') or op == 'recvfrom' else 'out')
        streams[key] = streams.get(key, b'') + data
def save(kind, n, data):
    d = os.path.join(out, kind); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, n), 'wb').write(data)
http_ports = (ap, bp)
frames_seen, nframe, nreq, npl = set(), 0, 0, 0
for (name, fd, what, way), data in sorted(streams.items()):
    is_http = any(f':{p}]' in what or f':{p}->' in what or f'->127.0.0.1:{p}' in what for p in http_ports) \
        and data[:4] in (b'GET ', b'HEAD', b'HTTP')
    if data[:4] in (b'GET ', b'HEAD'):
        for req in re.split(rb'(?<=\r\n\r\n)', data):
            if req: nreq += 1; save('http_request', f'capture-{nreq:03}', b'\x01' + req)   # 1: the upload server's limits
        for r in re.findall(rb'\r\n[Rr]ange: ([^\r]*)', data):
            save('http_range', 'capture-' + r.decode().replace('/', '_').replace(',', '_'), r + struct.pack('<Q', 700000))
        continue
    if data[:5] == b'HTTP/':
        for body in re.findall(rb'(\{"id":"[0-9a-f]{64}"[^{}]*\})', data):
            npl += 1; save('piece_list', f'capture-{npl:03}', body)
        continue
    # Frames: a stream of 4-byte lengths and JSON; named by the types it carries.
    types, at = [], 0
    while at + 4 <= len(data):
        n = struct.unpack('>I', data[at:at+4])[0]
        if n > 1 << 20 or at + 4 + n > len(data): break
        t = re.search(rb'"type":"([a-z_]+)"', data[at+4:at+4+n])
        types.append(t.group(1).decode() if t else '?')
        at += 4 + n
    if not types or at != len(data): continue
    sig = tuple(sorted(set(types)))
    if sig in frames_seen: continue
    frames_seen.add(sig); nframe += 1
    save('frame', f'capture-{nframe:03}-' + '-'.join(sig)[:80], data[:at][:16384])
db = os.path.join(tmp, 'b', 'state', 'state.db')
if os.path.exists(db):
    c = sqlite3.connect(db)
    cols = 'id, name, content_id, size, piece_size, pieces, have, destination, partial_path, sources, from_peer, id_prefix, force, state, error, created_at, updated_at'
    for i, row in enumerate(c.execute(f'SELECT {cols} FROM transfers')):
        # FuzzedDataProvider's order: integers from the end (last consumed first), strings from the front,
        # each ended by a backslash and another byte, a backslash in it doubled.
        def s(v):
            b = v if isinstance(v, bytes) else str(v).encode()
            return b.replace(b'\\', b'\\\\') + b'\\x'
        order = [('i', row[0]), ('s', row[1]), ('s', row[2]), ('i', row[3]), ('i', row[4]), ('s', row[5]), ('s', row[6]),
                 ('s', row[7]), ('s', row[8]), ('s', row[9]), ('s', row[10]), ('s', row[11]), ('i', row[12]),
                 ('s', row[13]), ('s', row[14]), ('i', row[15]), ('i', row[16])]
        front = b''.join(s(v) for k, v in order if k == 's')
        # an int64 v is consumed as the big-endian bytes of v - INT64_MIN read backwards from the end
        back = b''.join(struct.pack('<Q', (v + 2**63) % 2**64) for k, v in reversed(order) if k == 'i')
        save('transfer_record', f'capture-{i:03}', front + back)
print(f'{nframe} frame streams, {nreq} requests, {npl} piece lists', file=sys.stderr)
PY
