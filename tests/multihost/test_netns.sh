#!/usr/bin/env bash
# tests/multihost/test_netns.sh — the user story across hosts with their own
# addresses (issue 4). Four network namespaces made by this test: "net" holds
# a bridge and the tracker on 10.213.0.1; host1, host2, host3 each have one
# veth link onto that bridge (10.213.0.11-13). Nothing is added to the
# namespace the test runs in; the CLIs reach the daemons through their Unix
# sockets, which namespaces do not separate.
#
#   publish on host1 → fetch on host2 and host3 (bytes compared), from host1's
#   own address; trackerctl discover/ping host1; host1's link set down → the
#   tracker drops it after --peer-timeout, ping says offline, and the others
#   are still served.
#
# Needs root and `ip netns`; otherwise it prints why and exits 77 (skipped).
#   test_netns.sh TRACKERD PEERD PEERCTL TRACKERCTL
set -euo pipefail

trackerd=$1 peerd=$2 peerctl=$3 trackerctl=$4
deadline_s=30
peer_timeout_s=3
subnet=10.213.0

skip() { echo "skip: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "needs ip (apt-get install iproute2)"

tag=ps$$                       # namespaces are global: names unique to this run
ns_net=$tag-net
hosts=(host1 host2 host3)
ns_of() { echo "$tag-$1"; }

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"
cleanup_extra() {
    for host in "${hosts[@]}"; do ip netns del "$(ns_of "$host")" 2>/dev/null || true; done
    ip netns del "$ns_net" 2>/dev/null || true
}

# --- the network ---------------------------------------------------------------
# Where the kernel or the container does not give us namespaces, veth pairs or
# bridges, the test cannot run here: it says which command failed and skips.
net() { "$@" 2>"$tmp/ip.err" || skip "cannot build the test network: '$*' failed: $(cat "$tmp/ip.err")"; }

net ip netns add "$ns_net"
net ip -n "$ns_net" link set lo up
net ip -n "$ns_net" link add br0 type bridge
net ip -n "$ns_net" addr add "$subnet.1/24" dev br0
net ip -n "$ns_net" link set br0 up

index=11
for host in "${hosts[@]}"; do
    ns=$(ns_of "$host")
    net ip netns add "$ns"
    net ip -n "$ns" link set lo up
    # Made inside the host's namespace, so no interface ever appears in ours.
    net ip -n "$ns" link add eth0 type veth peer name "$host" netns "$ns_net"
    net ip -n "$ns" addr add "$subnet.$index/24" dev eth0
    net ip -n "$ns" link set eth0 up
    net ip -n "$ns_net" link set "$host" master br0 up
    index=$((index + 1))
done
address_of() {   # host1 → 10.213.0.11
    local i
    for i in "${!hosts[@]}"; do [ "${hosts[$i]}" = "$1" ] && echo "$subnet.$((11 + i))"; done
}
echo "ok: namespaces $ns_net (bridge, $subnet.1) and host1-3 ($subnet.11-13)"

# --- the tracker and the peers ------------------------------------------------
export TRACKER_SOCKET=$tmp/tracker.sock
ip netns exec "$ns_net" "$trackerd" --config /dev/null --listen "$subnet.1:9999" \
    --admin-socket "$TRACKER_SOCKET" --heartbeat 1 --peer-timeout $peer_timeout_s \
    2>"$tmp/trackerd.log" &
pids+=($!)
wait_until "$trackerctl" stats || fail "trackerd did not start: $(cat "$tmp/trackerd.log")"

for host in "${hosts[@]}"; do
    mkdir -p "$tmp/$host"
    ip netns exec "$(ns_of "$host")" "$peerd" --config /dev/null --name "$host" \
        --tracker "$subnet.1:9999" --listen "$(address_of "$host"):7070" \
        --socket "$tmp/$host.sock" --state-dir "$tmp/$host/state" 2>"$tmp/$host.log" &
    pids+=($!)
done
ctl() { local host=$1; shift; "$peerctl" --socket "$tmp/$host.sock" "$@"; }
connected() { ctl "$1" status --json | grep -q '"connected": *true'; }
for host in "${hosts[@]}"; do
    wait_until connected "$host" || fail "$host did not connect: $(cat "$tmp/$host.log")"
done
peers=$("$trackerctl" peers)
for host in "${hosts[@]}"; do
    grep -q "$host .*$(address_of "$host")" <<<"$peers" ||
        fail "the tracker does not see $host at $(address_of "$host"): $peers"
done
echo "ok: trackerd in $ns_net; host1-3 connected from their own addresses"

# --- publish on host1, fetch on host2 and host3 ---------------------------------
head -c 5000003 /dev/urandom > "$tmp/host1/report.bin"
ctl host1 publish "$tmp/host1/report.bin" report >/dev/null || fail "publish: $(tail -5 "$tmp/host1.log")"
for host in host2 host3; do
    ctl "$host" fetch report --from host1 -o "$tmp/$host/report.bin" --quiet ||
        fail "fetch on $host: $(tail -5 "$tmp/$host.log")"
    cmp "$tmp/host1/report.bin" "$tmp/$host/report.bin" || fail "the bytes fetched on $host differ"
done
echo "ok: host1 published report (5,000,003 bytes); host2 and host3 fetched it, bytes equal"

discover=$("$trackerctl" discover host1) || fail "trackerctl discover host1 exited $?"
grep -q report <<<"$discover" || fail "discover host1 does not list report: $discover"
ping=$("$trackerctl" ping host1) || fail "trackerctl ping host1 exited $?: $ping"
echo "ok: trackerctl discover host1 lists report; ping: $ping"

# --- host1 unplugged ------------------------------------------------------------
ip -n "$(ns_of host1)" link set eth0 down
unplugged_at=$SECONDS
host1_gone() { ! "$trackerctl" peers | grep -q '^host1 '; }
wait_until host1_gone || fail "the tracker still lists host1 $deadline_s s after its link went down"
waited=$((SECONDS - unplugged_at))
[ $waited -ge $((peer_timeout_s - 1)) ] || fail "host1 was dropped after ${waited} s, before the ${peer_timeout_s} s timeout"
if ping=$("$trackerctl" ping host1); then fail "ping host1 still succeeds: $ping"; fi
grep -q offline <<<"$ping" || fail "ping host1 does not say offline: $ping"
"$trackerctl" events | grep -q "left.*host1\|host1.*left" || fail "no 'left' event for host1: $("$trackerctl" events)"
echo "ok: host1's link down → dropped after ~${waited} s (timeout ${peer_timeout_s} s); ping: $ping"

# The others are still served: host3 publishes, host2 fetches.
head -c 70000 /dev/urandom > "$tmp/host3/notes.bin"
ctl host3 publish "$tmp/host3/notes.bin" notes >/dev/null || fail "publish on host3 after host1 left"
ctl host2 fetch notes -o "$tmp/host2/notes.bin" --quiet || fail "fetch notes on host2: $(tail -5 "$tmp/host2.log")"
cmp "$tmp/host3/notes.bin" "$tmp/host2/notes.bin" || fail "notes fetched on host2 differ"
"$trackerctl" ping host2 >/dev/null || fail "ping host2 fails after host1 left"
echo "ok: host2 and host3 still share (notes fetched host3 → host2) and answer ping"
