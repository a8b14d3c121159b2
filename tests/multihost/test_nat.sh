#!/usr/bin/env bash
# tests/multihost/test_nat.sh — peers behind a real NAT (issue 11). Network
# namespaces made by this test: "net" holds a bridge and the tracker (with its
# relay) on 10.214.0.1; "fetcher" is a host on that bridge (10.214.0.21);
# router1 and router2 each have one leg on the bridge (10.214.0.31, .32) and
# one into a private home subnet (192.168.1.0/24, 192.168.2.0/24) that nft
# masquerades onto the bridge — no port forwarding; home1 and home2 sit
# behind them (192.168.N.10, default route via the router).
#
#   home1 publishes → the tracker sees router1's address, dials it back and
#   marks home1 unreachable (trackerctl peers: REACH no, at 10.214.0.31). The
#   fetcher on the bridge, reachable, gets the file by reverse connection:
#   home1 dials out through its NAT to the fetcher's upload port (the bytes
#   compared). home2, behind its own router, is unreachable too: it gets the
#   file through the tracker's relay, both homes dialling out to it (bytes
#   compared, home1's log, a `relayed` event). Without a
#   relay that fetch fails at once naming both sides: ctest `reach` (reach 4).
#
# Needs root, `ip netns` and nft; otherwise it prints why and exits 77 (skipped).
#   test_nat.sh TRACKERD PEERD PEERCTL TRACKERCTL
set -euo pipefail

trackerd=$1 peerd=$2 peerctl=$3 trackerctl=$4
deadline_s=15
bridge=10.214.0

skip() { echo "skip: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "needs ip (apt-get install iproute2)"
command -v nft >/dev/null || skip "needs nft (apt-get install nftables)"

tag=pn$$                       # namespaces are global: names unique to this run
names=(net fetcher router1 router2 home1 home2)
ns() { echo "$tag-$1"; }

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"
cleanup_extra() {
    for name in "${names[@]}"; do ip netns del "$(ns "$name")" 2>/dev/null || true; done
}

# --- the network ---------------------------------------------------------------
net() { "$@" 2>"$tmp/ip.err" || skip "cannot build the test network: '$*' failed: $(cat "$tmp/ip.err")"; }

for name in "${names[@]}"; do
    net ip netns add "$(ns "$name")"
    net ip -n "$(ns "$name")" link set lo up
done
net ip -n "$(ns net)" link add br0 type bridge
net ip -n "$(ns net)" addr add "$bridge.1/24" dev br0
net ip -n "$(ns net)" link set br0 up

# on_bridge NAME ADDRESS: NAME's eth0 on the bridge.
on_bridge() {
    net ip -n "$(ns "$1")" link add eth0 type veth peer name "$1" netns "$(ns net)"
    net ip -n "$(ns "$1")" addr add "$2/24" dev eth0
    net ip -n "$(ns "$1")" link set eth0 up
    net ip -n "$(ns net)" link set "$1" master br0 up
}
on_bridge fetcher "$bridge.21"

# home N: routerN on the bridge at .3N, masquerading 192.168.N.0/24 from homeN.
home() {
    local n=$1 router=router$1 home=home$1
    on_bridge "$router" "$bridge.3$n"
    net ip -n "$(ns "$home")" link add eth0 type veth peer name lan0 netns "$(ns "$router")"
    net ip -n "$(ns "$router")" addr add "192.168.$n.1/24" dev lan0
    net ip -n "$(ns "$router")" link set lan0 up
    net ip -n "$(ns "$home")" addr add "192.168.$n.10/24" dev eth0
    net ip -n "$(ns "$home")" link set eth0 up
    net ip -n "$(ns "$home")" route add default via "192.168.$n.1"
    net ip netns exec "$(ns "$router")" sysctl -qw net.ipv4.ip_forward=1
    net ip netns exec "$(ns "$router")" nft -f - <<NFT
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" ip saddr 192.168.$n.0/24 masquerade
    }
}
NFT
}
home 1
home 2
echo "ok: bridge $bridge.0/24 (tracker .1, fetcher .21); home1, home2 behind router1 (.31), router2 (.32), masqueraded by nft"

# --- the tracker, the relay and the peers ----------------------------------------
export TRACKER_SOCKET=$tmp/tracker.sock
ip netns exec "$(ns net)" "$trackerd" --config /dev/null --listen "$bridge.1:9999" --http-listen off \
    --relay-listen "$bridge.1:9997" --admin-socket "$TRACKER_SOCKET" --heartbeat 1 --peer-timeout 5 \
    2>"$tmp/trackerd.log" &
pids+=($!)
wait_until "$trackerctl" stats || fail "trackerd did not start: $(cat "$tmp/trackerd.log")"
stats=$("$trackerctl" stats)
grep -q "^relay" <<<"$stats" || fail "trackerctl stats shows no relay: $stats"

# start_peer NAME LISTEN: peerd in namespace NAME, listening on LISTEN:7070.
start_peer() {
    mkdir -p "$tmp/$1"
    ip netns exec "$(ns "$1")" "$peerd" --config /dev/null --name "$1" --tracker "$bridge.1:9999" \
        --listen "$2:7070" --socket "$tmp/$1.sock" --state-dir "$tmp/$1/state" 2>"$tmp/$1.log" &
    pids+=($!)
}
start_peer fetcher "$bridge.21"
start_peer home1 192.168.1.10
start_peer home2 192.168.2.10
ctl() { local who=$1; shift; "$peerctl" --socket "$tmp/$who.sock" "$@"; }
checked() { ctl "$1" status --json | grep -q "\"reachable\": *$2"; }
wait_until checked fetcher true || fail "fetcher is not reachable: $(ctl fetcher status)"
for who in home1 home2; do
    wait_until checked "$who" false || fail "$who is not marked unreachable: $(ctl "$who" status) $(tail -5 "$tmp/$who.log")"
done
peers=$("$trackerctl" peers)
grep -Eq "^home1 +$bridge\.31 +7070 +no " <<<"$peers" || fail "the tracker does not see home1 at router1's address, unreachable: $peers"
grep -Eq "^home2 +$bridge\.32 +7070 +no " <<<"$peers" || fail "the tracker does not see home2 at router2's address, unreachable: $peers"
grep -Eq "^fetcher +$bridge\.21 +7070 +yes " <<<"$peers" || fail "the fetcher on the bridge is not reachable: $peers"
echo "ok: the tracker sees home1 at $bridge.31 and home2 at $bridge.32 (the routers), both unreachable; fetcher reachable"

# --- the fetcher gets it by reverse connection; home2 through the relay ---
head -c 300001 /dev/urandom > "$tmp/home1/photo.bin"
ctl home1 publish "$tmp/home1/photo.bin" photo >/dev/null || fail "publish on home1: $(tail -5 "$tmp/home1.log")"
out=$(ctl fetcher fetch photo -o "$tmp/fetcher/photo.bin" --no-share --quiet 2>&1) ||
    fail "the fetcher could not fetch photo from home1 by reverse connection: $out $(tail -5 "$tmp/fetcher.log") $(tail -5 "$tmp/home1.log")"
cmp -s "$tmp/home1/photo.bin" "$tmp/fetcher/photo.bin" || fail "the fetcher's photo.bin differs from home1's"
grep -q "connected back to fetcher at $bridge.21:7070" "$tmp/home1.log" ||
    fail "home1 did not connect back to the fetcher: $(tail -5 "$tmp/home1.log")"
echo "ok: the fetcher on the bridge got home1's photo by reverse connection, through home1's NAT"
# home2 is unreachable too: the tracker runs a relay (its welcome says so), so
# home2 asks for a relayed connection; home1 dials out to the relay as well.
out=$(ctl home2 fetch photo -o "$tmp/home2/photo.bin" --no-share --quiet 2>&1) ||
    fail "home2 could not fetch photo from home1 through the relay: $out $(tail -5 "$tmp/home2.log") $(tail -5 "$tmp/home1.log")"
cmp -s "$tmp/home1/photo.bin" "$tmp/home2/photo.bin" || fail "home2's photo.bin differs from home1's"
grep -q "serving the relay for home2" "$tmp/home1.log" ||
    fail "home1 did not serve home2 through the relay: $(tail -5 "$tmp/home1.log")"
relayed_event() { local events; events=$("$trackerctl" events) && grep -q " relayed  home2 " <<<"$events"; }
wait_until relayed_event || fail "the tracker recorded no relayed event: $("$trackerctl" events | tail -5)"
echo "ok: home2 got home1's photo through the tracker's relay, both behind their NATs"
