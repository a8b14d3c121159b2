#!/usr/bin/env bash
# tests/packaging/test_package.sh — the Debian package (docs/design.md,
# "Services and packaging"; issue 4): cpack builds it from this build,
# `dpkg-deb` shows the files and control fields operators rely on, the
# maintainer scripts manage the services, lintian finds no errors, and the
# programs of the package, unpacked with `dpkg -x` into a throwaway root, run:
# --version, then a tracker and two peers on loopback (temp dirs, ports the
# kernel picks) publish a file on one peer and fetch it on the other, bytes
# compared.
#   test_package.sh BUILD_DIR VERSION
set -euo pipefail

build_dir=$1 version=$2
deadline_s=30

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"

# --- build -----------------------------------------------------------------
cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 ||
    fail "cpack: $(tail -20 "$tmp/cpack.log")"
deb=$tmp/pkg/peershare_${version}_amd64.deb
[ -f "$deb" ] || fail "cpack made no $deb: $(ls "$tmp/pkg")"
echo "ok: cpack built $(basename "$deb")"

# --- contents --------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $1, $6 }' > "$tmp/contents"
expect_file() {   # PATH MODE
    grep -qx -- "$2 ./${1#/}" "$tmp/contents" || fail "the package lacks $1 (mode $2): $(cat "$tmp/contents")"
}
for bin in trackerd peerd peerctl trackerctl; do expect_file /usr/bin/$bin -rwxr-xr-x; done
expect_file /usr/lib/systemd/system/tracker.service -rw-r--r--
expect_file /usr/lib/systemd/user/peerd.service -rw-r--r--
expect_file /etc/peershare/tracker.conf -rw-r--r--
expect_file /usr/share/doc/peershare/examples/peerd.conf -rw-r--r--
expect_file /usr/share/doc/peershare/copyright -rw-r--r--
expect_file /usr/share/doc/peershare/changelog.gz -rw-r--r--
for page in man8/trackerd.8 man1/peerd.1 man1/peerctl.1 man1/trackerctl.1; do
    expect_file /usr/share/man/$page.gz -rw-r--r--
done
for tool in peerctl trackerctl; do expect_file /usr/share/bash-completion/completions/$tool -rw-r--r--; done
grep -q " ./usr/local" "$tmp/contents" && fail "the package installs under /usr/local"

[ "$(dpkg-deb -f "$deb" Package)" = peershare ] || fail "Package: $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version: $(dpkg-deb -f "$deb" Version)"
[ "$(dpkg-deb -f "$deb" Section)" = net ] || fail "Section: $(dpkg-deb -f "$deb" Section)"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in adduser libc6 libuv1 libssl3 libcurl4 libsystemd0 libhttp-parser; do
    grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" ./conffiles ./postinst ./prerm ./postrm
grep -qx /etc/peershare/tracker.conf "$tmp/conffiles" || fail "tracker.conf is not a conffile"
grep -q "addgroup --quiet --system tracker" "$tmp/postinst" || fail "postinst does not create the group tracker"
# What the services go through (tried under a booted systemd by test_system.sh).
grep -q "deb-systemd-invoke restart 'tracker.service'" "$tmp/postinst" || fail "postinst does not restart the tracker on upgrade"
grep -q "try-restart 'peerd.service'" "$tmp/postinst" || fail "postinst does not restart users' running peerds on upgrade"
grep -q "deb-systemd-invoke stop 'tracker.service'" "$tmp/prerm" || fail "prerm does not stop the tracker"
grep -q "deb-systemd-helper purge 'tracker.service'" "$tmp/postrm" || fail "postrm does not forget the tracker's links on purge"
echo "ok: dpkg-deb -c lists binaries, units, configuration, man pages, completion; Depends: $depends"

# lintian is in scripts/lib.sh's DEPS: without it this check would pass unseen.
command -v lintian >/dev/null || fail "lintian is not installed (scripts/lib.sh DEPS installs it: run scripts/test)"
lintian "$deb" >"$tmp/lintian.log" 2>&1 || true
if grep -q "^E: " "$tmp/lintian.log"; then fail "lintian errors: $(grep "^E: " "$tmp/lintian.log")"; fi
echo "ok: lintian: no errors ($(grep -c "^W: " "$tmp/lintian.log" || true) warnings)"

# --- the unpacked programs ---------------------------------------------------
root=$tmp/root
dpkg -x "$deb" "$root"
bin=$root/usr/bin
for prog in trackerd peerd peerctl trackerctl; do
    got=$("$bin/$prog" --version) || fail "$prog --version exited $?"
    [ "$got" = "$version" ] || fail "$prog --version printed '$got', not $version"
done
echo "ok: the four programs run and print $version"

for page in man8/trackerd.8 man1/peerd.1 man1/peerctl.1 man1/trackerctl.1; do
    zcat "$root/usr/share/man/$page.gz" | grep -q '^\.TH ' || fail "$page.gz is not a man page"
done

# A tracker with the shipped tracker.conf (the command line wins where both
# set an option) and two peers with the shipped example peerd.conf.
export HOME=$tmp/home
unset XDG_RUNTIME_DIR XDG_STATE_HOME XDG_CONFIG_HOME PEERD_SOCKET TRACKER_SOCKET
mkdir -p "$HOME"
"$bin/trackerd" --config "$root/etc/peershare/tracker.conf" --listen 127.0.0.1:0 \
    --admin-socket "$tmp/tracker.sock" 2>"$tmp/trackerd.log" &
pids+=($!)
port_of_tracker() { sed -n 's/.*listening for peers on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/trackerd.log"; }
tracker_listening() { [ -n "$(port_of_tracker)" ]; }
wait_until tracker_listening || fail "trackerd did not start: $(cat "$tmp/trackerd.log")"
port=$(port_of_tracker)

for peer in alpha beta; do
    mkdir -p "$tmp/$peer"
    "$bin/peerd" --config "$root/usr/share/doc/peershare/examples/peerd.conf" --tracker "127.0.0.1:$port" \
        --name "$peer" --listen 127.0.0.1:0 --socket "$tmp/$peer.sock" --state-dir "$tmp/$peer/state" \
        2>"$tmp/$peer.log" &
    pids+=($!)
done
connected() { "$bin/peerctl" --socket "$tmp/$1.sock" status --json | grep -q '"connected": *true'; }
for peer in alpha beta; do
    wait_until connected $peer || fail "peer $peer did not connect: $(cat "$tmp/$peer.log")"
done
peers=$("$bin/trackerctl" --socket "$tmp/tracker.sock" peers --json)
grep -q '"alpha"' <<<"$peers" && grep -q '"beta"' <<<"$peers" || fail "trackerctl peers: $peers"

head -c 3000000 /dev/urandom > "$tmp/report.bin"
"$bin/peerctl" --socket "$tmp/alpha.sock" publish "$tmp/report.bin" report >/dev/null ||
    fail "publish: $(tail -5 "$tmp/alpha.log")"
wait_until "$bin/peerctl" --socket "$tmp/beta.sock" fetch report -o "$tmp/fetched.bin" --quiet ||
    fail "fetch: $(tail -5 "$tmp/beta.log")"
cmp "$tmp/report.bin" "$tmp/fetched.bin" || fail "the fetched bytes differ"
echo "ok: the packaged trackerd, peerd, peerctl and trackerctl publish on alpha and fetch on beta, 3,000,000 bytes equal"

# Bash completion from the package, run against the live peer (the helpers
# bash-completion would provide are stubbed).
completions=$(PATH=$bin:$PATH bash -c '
    _init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
    _filedir() { :; }
    source "$1/usr/share/bash-completion/completions/peerctl"
    COMP_WORDS=(peerctl pu); COMP_CWORD=1; _peershare_ctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(peerctl --socket "$2" unpublish ""); COMP_CWORD=4; _peershare_ctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(trackerctl ping --t); COMP_CWORD=2; _peershare_ctl; echo "${COMPREPLY[*]}"
' _ "$root" "$tmp/alpha.sock")
[ "$completions" = $'publish\nreport\n--timeout' ] || fail "bash completion gave: $completions"
echo "ok: bash completion of subcommands, published names and options"

for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do
    wait "$pid" || fail "a daemon exited $? on SIGTERM: $(cat "$tmp"/*.log)"
done
pids=()
grep -q "stopping on SIGTERM" "$tmp/trackerd.log" || fail "trackerd did not log its stop"
echo "ok: the tracker and both peers stopped cleanly on SIGTERM"
