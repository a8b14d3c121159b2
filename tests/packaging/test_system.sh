#!/usr/bin/env bash
# tests/packaging/test_system.sh — the Debian package's whole life under a
# booted systemd (issue 13). A minimal Debian 12 root (debootstrap
# --variant=minbase from the archive apt uses, plus systemd, dbus, what a
# login needs for a user manager (libpam-systemd, dbus-user-session) and the
# package's dependencies; no procps, so no /bin/kill) is made once and cached
# under BUILD_DIR/system-test; each run boots an overlay of it with
# `systemd-nspawn -b` (private network, not registered, no host path bound),
# installs the freshly built .deb with `apt-get install ./…` and checks, each
# as its own assertion: the tracker service starts through Type=notify in its
# sandbox; trackerctl for root and members of "tracker" only; reload re-reads
# the configuration without procps and a bad one keeps the old settings; the
# live exposure; two peers publish and fetch through the service; the user
# unit of a lingering user and where it keeps its state; enable, reboot,
# upgrade, remove, purge and install again; the journal.
# Root only; skipped (exit 77) otherwise, in the sanitizer build (it tests the
# package, not the code), or where this machine cannot boot a container.
#   test_system.sh BUILD_DIR VERSION SANITIZE(ON|OFF)
set -euo pipefail

build_dir=$1 version=$2 sanitize=$3
max_exposure=1.5
deadline_s=30

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/container.sh"
suite=$ROOT_SUITE

[ "$sanitize" != ON ] || skip "the sanitizer build: this tests the package, not the code; it runs in the normal build"
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, mount, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter cpack dpkg-deb; do
    command -v "$tool" >/dev/null || skip "$tool is missing (scripts/lib.sh installs it)"
done
started=$SECONDS

# --- the packages: this build, and the same with a higher version --------------
cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 ||
    fail "cpack: $(tail -20 "$tmp/cpack.log")"
deb=peershare_${version}_amd64.deb
[ -f "$tmp/pkg/$deb" ] || fail "cpack made no $deb: $(ls "$tmp/pkg")"
next_version=$version+1
next_deb=peershare_${next_version}_amd64.deb
dpkg-deb -R "$tmp/pkg/$deb" "$tmp/next"
sed -i "s/^Version: .*/Version: $next_version/" "$tmp/next/DEBIAN/control"
# The upgrade changes peerd.service: users' running peerds must come back on the new unit.
next_user_nofile=4096
sed -i "s/^LimitNOFILE=.*/LimitNOFILE=$next_user_nofile/" "$tmp/next/usr/lib/systemd/user/peerd.service"
grep -qx "LimitNOFILE=$next_user_nofile" "$tmp/next/usr/lib/systemd/user/peerd.service" ||
    fail "the next package's peerd.service has no LimitNOFILE= to change"
dpkg-deb --root-owner-group -b "$tmp/next" "$tmp/pkg/$next_deb" >/dev/null
dpkg --compare-versions "$next_version" gt "$version" || fail "$next_version is not above $version"

# The root holds every dependency: the container has no network to fetch them.
depends=$(dpkg-deb -f "$tmp/pkg/$deb" Depends | tr ',' '\n' | sed 's/[|(].*//; s/ //g' | grep . | sort -u)
# root-packages lists them already, so that scripts/test could make the root
# while the code built; one missing there is added here (a second debootstrap).
missing=$(comm -13 <(root_packages) <(root_packages $depends))
[ -z "$missing" ] || echo "note: root-packages lacks $(echo $missing): debootstrapping a root with them"
# shellcheck disable=SC2046   # one package per word
root=$(cached_root "$build_dir/system-test" "$suite" $(root_packages $depends)) ||
    exit $?     # 77 where it skipped, with the reason said
echo "ok: a $suite root ($(du -sh "$root" | cut -f1)) ready after $((SECONDS - started)) s"

overlay_root "$root" "$tmp/container"
cp "$tmp/pkg/$deb" "$tmp/pkg/$next_deb" "$merged/root/"
mkdir -p "$merged/var/log/journal"      # keep the journal across the reboot
boot_container "$merged" || skip "this machine cannot boot a container with systemd-nspawn: $(tail -5 "$tmp"/nspawn.*.log)"
echo "ok: the container booted (systemd $(in_container systemctl --version | head -1 | cut -d' ' -f2)) after $((SECONDS - started)) s"

# --- assertions -----------------------------------------------------------------
# check NAME FUNCTION: runs FUNCTION in a subshell; "no MESSAGE" ends it as failed.
failures=()
check() {
    local name=$1 out
    shift
    if out=$(trap - EXIT; "$@" 2>&1); then
        echo "ok: $name${out:+ ($out)}"
    else
        echo "FAIL: $name: $out"
        failures+=("$name")
    fi
}
no() { echo "$*"; exit 1; }
journal_tail() { in_container journalctl --no-pager -n 15 "$@" 2>&1; }
c_stat() { in_container stat -c "$1" "$2"; }
main_pid() { in_container systemctl show -p MainPID --value tracker; }
# The soft and hard limit of open files of PID, "N N".
nofile_of() { in_container awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"; }
# PID runs with LimitNOFILE=WANT (PROPERTY: the unit's, from systemctl show),
# or the container's own hard limit where that is lower: systemd cannot go above it.
expect_nofile() {   # PID WANT PROPERTY
    [ "$3" = "$2" ] || no "the unit's LimitNOFILE is '$3', not $2"
    local ceiling want
    ceiling=$(nofile_of 1 | cut -d' ' -f2)
    want=$(( $2 < ceiling ? $2 : ceiling ))
    [ "$(nofile_of "$1")" = "$want $want" ] || no "open files of $1: $(nofile_of "$1"), not $want"
}
# Lines of trackerd's own output at priority $1: not systemd's about the unit,
# nor ExecReload='s shell (both in the unit too), by the identifier journald
# gives trackerd's stderr.
tracker_log() {
    in_container journalctl --no-pager -o cat _SYSTEMD_UNIT=tracker.service SYSLOG_IDENTIFIER=trackerd -p "$1..$1"
}
count_in() { grep -cF -- "$1" || true; }
apt_install() { in_container env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; }
# apt's output (file $1) has none of what broken maintainer scripts print:
# systemctl without a bus, a unit restarted on a file it has not re-read.
apt_clean() {
    ! grep -qE "Failed to connect to bus|changed on disk" "$1" ||
        no "apt printed: $(grep -E "Failed to connect to bus|changed on disk" "$1" | head -3)"
}

# Installs /root/DEB (its output in $tmp/apt.log); the tracker is then
# ENABLED/ACTIVE (systemctl is-enabled / is-active).
install_expect() {   # DEB ENABLED/ACTIVE
    apt_install "/root/$1" >"$tmp/apt.log" 2>&1 || no "apt-get install ./$1: $(tail -5 "$tmp/apt.log")"
    local state
    state=$(in_container systemctl is-enabled tracker || true)/$(in_container systemctl is-active tracker || true)
    [ "$state" = "$2" ] || no "after installing $1, tracker is $state, not $2"
}

first_install() {
    install_expect "$deb" disabled/inactive
    [ "$(in_container dpkg-query -W -f '${Version}' peershare)" = "$version" ] || no "peershare $version is not installed"
    in_container getent group tracker >/dev/null || no "no group tracker"
    echo "$deb installed, tracker disabled and inactive until the admin enables it"
}
check "apt-get install ./$deb in a fresh Debian $suite" first_install
[ ${#failures[@]} -eq 0 ] || fail "the package did not install; nothing else to check"
check "the maintainer scripts printed no errors" apt_clean "$tmp/apt.log"

start_tracker() {
    in_container systemctl start tracker || no "systemctl start tracker failed: $(journal_tail -u tracker)"
    local show
    show=$(in_container systemctl show tracker -p Type -p NotifyAccess -p ActiveState -p SubState -p Result)
    for want in Type=notify NotifyAccess=main ActiveState=active SubState=running Result=success; do
        grep -qx "$want" <<<"$show" || no "expected $want in: $show"
    done
    echo "Type=notify: active (running) once READY=1 arrived"
}
check "systemctl start tracker" start_tracker

sandbox() {
    local pid status gid
    pid=$(main_pid)
    [ "$pid" -gt 0 ] || no "no main PID"
    status=$(in_container cat "/proc/$pid/status")
    gid=$(in_container getent group tracker | cut -d: -f3)
    local uid
    uid=$(awk '/^Uid:/ { print $2 }' <<<"$status")
    # systemd's range for DynamicUser= (systemd.exec(5)): 61184–65519.
    [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || no "uid $uid is not a dynamic user"
    grep -q "^Gid:[[:space:]]*$gid[[:space:]]" <<<"$status" || no "gid is not tracker's ($gid): $(grep ^Gid <<<"$status")"
    for want in "CapEff:	0000000000000000" "CapBnd:	0000000000000000" "CapAmb:	0000000000000000" \
                "NoNewPrivs:	1" "Seccomp:	2"; do
        grep -qF "$want" <<<"$status" || no "expected '$want' in /proc/$pid/status"
    done
    expect_nofile "$pid" 65536 "$(in_container systemctl show -p LimitNOFILE --value tracker)"
    [ "$(in_container readlink "/proc/$pid/ns/mnt")" != "$(in_container readlink /proc/1/ns/mnt)" ] ||
        no "trackerd shares PID 1's mount namespace"
    for dir in / /usr /etc; do
        in_container nsenter -t "$pid" -m findmnt -no OPTIONS --target "$dir" | grep -q "\bro\b" ||
            no "$dir is writable for trackerd: $(in_container nsenter -t "$pid" -m findmnt --target "$dir")"
    done
    [ "$(c_stat '%a %G %F' /run/tracker)" = "750 tracker directory" ] ||
        no "/run/tracker is $(c_stat '%a %G %F' /run/tracker)"
    [ "$(c_stat '%a %G %F' /run/tracker/tracker.sock)" = "660 tracker socket" ] ||
        no "the socket is $(c_stat '%a %G %F' /run/tracker/tracker.sock)"
    echo "uid $uid (dynamic), group tracker, no capabilities, seccomp, no new privileges, $(nofile_of "$pid") files, / /usr /etc read-only; /run/tracker 0750 and its socket 0660, group tracker"
}
check "the tracker's sandbox" sandbox

trackerctl_access() {
    in_container trackerctl peers >/dev/null || no "trackerctl as root: $(in_container trackerctl peers 2>&1)"
    in_container useradd --create-home --shell /bin/bash alice
    in_container useradd --create-home --shell /bin/bash bob
    in_container adduser --quiet alice tracker
    as_user alice trackerctl peers >/dev/null || no "trackerctl as alice (group tracker): $(as_user alice trackerctl peers 2>&1)"
    local out
    if out=$(as_user bob trackerctl peers 2>&1); then no "bob, not in group tracker, used trackerctl"; fi
    grep -q "admits the group tracker" <<<"$out" || no "bob was refused without naming the group: $out"
    echo "root and alice (group tracker) may; bob is told '$out'"
}
check "trackerctl as root, as a member of tracker, refused for others" trackerctl_access

# Now that alice and bob have homes: ProtectHome= shows trackerd an empty /home.
home_hidden() {
    local homes seen
    homes=$(in_container ls -A /home | tr '\n' ' ')
    [ -n "$homes" ] || no "/home is empty: nothing to hide"
    seen=$(in_container nsenter -t "$(main_pid)" -m ls -A /home)
    [ -z "$seen" ] || no "trackerd sees /home: $seen"
    echo "/home holds ${homes% }; trackerd sees it empty"
}
check "the tracker does not see the users' homes" home_hidden

reload_tracker() {
    ! in_container test -e /bin/kill && ! in_container test -e /usr/bin/kill || no "this root has /bin/kill"
    ! in_container dpkg-query -W procps >/dev/null 2>&1 || no "this root has procps"
    local pid
    pid=$(main_pid)
    in_container cp /etc/peershare/tracker.conf /root/tracker.conf.orig
    in_container sh -c 'echo "max-peers = 100" >> /etc/peershare/tracker.conf'
    in_container systemctl reload tracker || no "systemctl reload tracker: $(journal_tail -u tracker)"
    wait_until eval 'tracker_log info | grep -q "max-peers 20000 -> 100"' ||
        no "the journal does not say max-peers changed: $(journal_tail -u tracker)"
    [ "$(main_pid)" = "$pid" ] || no "the main PID changed on reload"
    # A mistake: the reload is refused and the running settings stay.
    in_container sh -c 'echo "heartbeat = 0" >> /etc/peershare/tracker.conf'
    in_container systemctl reload tracker || no "systemctl reload tracker (bad file): $(journal_tail -u tracker)"
    wait_until eval 'tracker_log err | grep -q "reload failed, keeping the running settings"' ||
        no "no error for the bad file: $(journal_tail -u tracker)"
    in_container sh -c 'sed -i "/^heartbeat = 0/d; s/^max-peers = 100/max-peers = 200/" /etc/peershare/tracker.conf'
    in_container systemctl reload tracker || no "systemctl reload tracker (fixed file)"
    # "100 -> 200": the bad file changed nothing.
    wait_until eval 'tracker_log info | grep -q "max-peers 100 -> 200"' ||
        no "after the bad file, max-peers was not 100: $(journal_tail -u tracker)"
    [ "$(main_pid)" = "$pid" ] || no "the main PID changed on reload"
    [ "$(in_container systemctl is-active tracker)" = active ] || no "tracker is not active after the reloads"
    in_container cp /root/tracker.conf.orig /etc/peershare/tracker.conf
    in_container systemctl reload tracker
    wait_until eval 'tracker_log info | grep -q "max-peers 200 -> 20000"' || no "the shipped file was not re-read"
    echo "no /bin/kill; same PID $pid; journal: max-peers 20000 -> 100, the bad file refused, then 100 -> 200"
}
check "systemctl reload tracker without procps" reload_tracker

# A unit whose daemon refused its configuration (exit 2) is failed at once, not
# restarted in vain (RestartPreventExitStatus=2); what the mistake is, is in
# the journal at err, as at a reload.
expect_failed_on_config() {   # UNIT SYSTEMCTL...
    local unit=$1 show want
    shift
    local -a ctl=("$@")
    state_of() { "${ctl[@]}" show -p ActiveState --value "$unit"; }
    wait_until eval '[ "$(state_of)" = failed ]' || no "$unit is $(state_of), not failed"
    show=$("$@" show -p Result -p ExecMainStatus -p NRestarts "$unit")
    for want in Result=exit-code ExecMainStatus=2 NRestarts=0; do
        grep -qx "$want" <<<"$show" || no "expected $want in: $(tr '\n' ' ' <<<"$show")"
    done
}
bad_config_at_start() {
    local want="^/etc/peershare/tracker.conf:[0-9]*: heartbeat = 0: Value 0 not in range 1 to 3600\$"
    in_container cp /etc/peershare/tracker.conf /root/tracker.conf.orig
    in_container sh -c 'echo "heartbeat = 0" >> /etc/peershare/tracker.conf'
    local out rc=0
    out=$(
        ! in_container systemctl restart tracker 2>/dev/null || no "tracker started with heartbeat = 0"
        wait_until eval 'tracker_log err | grep -q "$want"' ||
            no "trackerd's error is not in the journal at err, unprefixed: $(journal_tail -u tracker -o verbose | grep -E '^ *(PRIORITY|MESSAGE)=' | tail -4)"
        in_container journalctl --no-pager -o cat -u tracker -p err | grep -q "$want" || no "journalctl -u tracker -p err lacks it"
        expect_failed_on_config tracker in_container systemctl
    ) || rc=1
    # Whatever happened, the tracker runs on its file again for the next checks.
    in_container cp /root/tracker.conf.orig /etc/peershare/tracker.conf
    in_container systemctl reset-failed tracker
    in_container systemctl start tracker || no "tracker did not start again: $(journal_tail -u tracker)"
    [ $rc = 0 ] || no "$out"
    echo "failed at once (exit 2, no restarts); journalctl -u tracker -p err: $(tracker_log err | grep "$want")"
}
check "a bad configuration at start: failed, not retried, the error at err" bad_config_at_start

live_exposure() {
    local report score
    report=$(in_container systemd-analyze security tracker 2>&1) || true
    score=$(sed -n 's/.*Overall exposure level for tracker.service: \([0-9.]*\).*/\1/p' <<<"$report")
    [ -n "$score" ] || no "no exposure level in: $report"
    awk -v s="$score" -v max="$max_exposure" 'BEGIN { exit !(s <= max) }' || no "exposure $score is above $max_exposure"
    echo "$score, at most $max_exposure"
}
check "systemd-analyze security tracker (live)" live_exposure

two_peers() {
    local peer
    for peer in alpha beta; do
        in_container systemd-run --quiet --unit="peer-$peer" -p Type=notify /usr/bin/peerd \
            --tracker 127.0.0.1:9999 --name "$peer" --listen 127.0.0.1:0 \
            --socket "/run/peer-$peer.sock" --state-dir "/var/lib/peer-$peer" ||
            no "peerd $peer did not start: $(journal_tail -u "peer-$peer")"
    done
    connected() { in_container peerctl --socket "/run/peer-$1.sock" status --json | grep -q '"connected": *true'; }
    for peer in alpha beta; do
        wait_until connected "$peer" || no "peer $peer did not connect: $(journal_tail -u "peer-$peer")"
    done
    local peers
    peers=$(in_container trackerctl peers --json)
    grep -q '"alpha"' <<<"$peers" && grep -q '"beta"' <<<"$peers" || no "trackerctl peers: $peers"
    in_container sh -c 'head -c 3000000 /dev/urandom > /root/report.bin'
    in_container peerctl --socket /run/peer-alpha.sock publish /root/report.bin report >/dev/null ||
        no "publish: $(journal_tail -u peer-alpha)"
    wait_until in_container peerctl --socket /run/peer-beta.sock fetch report -o /root/fetched.bin --quiet ||
        no "fetch: $(journal_tail -u peer-beta)"
    in_container cmp /root/report.bin /root/fetched.bin || no "the fetched bytes differ"
    in_container systemctl stop peer-alpha peer-beta
    echo "alpha publishes, beta fetches through the tracker service; 3,000,000 bytes equal"
}
check "two peers against the service publish and fetch" two_peers

user_unit() {
    local uid home pid
    uid=$(in_container id -u alice)
    # What alice's peerd.service wrote (journalctl --user-unit reads the caller's, root's).
    user_journal() { in_container journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=peerd.service _UID="$uid" "$@"; }
    home=/home/alice
    as_user alice mkdir -p "$home/.config/peershare"
    as_user alice sh -c "printf '%s\n' 'tracker = \"127.0.0.1:9999\"' 'listen = \"127.0.0.1:0\"' > $home/.config/peershare/peerd.conf"
    in_container loginctl enable-linger alice
    wait_until in_container systemctl is-active "user@$uid.service" || no "alice's systemd did not start"
    as_user alice timeout 30 systemctl --user is-system-running --wait >/dev/null || true   # "degraded" will do
    as_user alice systemctl --user start peerd || no "systemctl --user start peerd: $(user_journal)"
    wait_until eval 'as_user alice peerctl status | grep -q .' ||
        no "peerctl status (no options) found no peerd: $(as_user alice peerctl status 2>&1)"
    pid=$(as_user alice systemctl --user show -p MainPID --value peerd)
    expect_nofile "$pid" 65536 "$(as_user alice systemctl --user show -p LimitNOFILE --value peerd)"
    as_user alice sh -c "echo 'max-uploads = 8' >> $home/.config/peershare/peerd.conf"
    as_user alice systemctl --user reload peerd || no "systemctl --user reload peerd: $(user_journal)"
    wait_until eval 'user_journal | grep -q "max-uploads 64 -> 8"' ||
        no "the journal does not say max-uploads changed: $(user_journal)"
    [ "$(as_user alice systemctl --user show -p MainPID --value peerd)" = "$pid" ] || no "the main PID changed on reload"
    # The state: where peerd started by hand finds it, not systemd's %S.
    as_user alice sh -c 'head -c 100000 /dev/urandom > ~/notes.bin'
    as_user alice peerctl publish "$home/notes.bin" notes >/dev/null || no "publish as alice: $(user_journal)"
    [ "$(c_stat '%a %U' "$home/.local/state/peerd")" = "700 alice" ] ||
        no "~/.local/state/peerd is $(c_stat '%a %U' "$home/.local/state/peerd" 2>&1)"
    ! in_container test -e "$home/.config/peerd" || no "the unit made ~/.config/peerd (%S of systemd < 254)"
    as_user alice systemctl --user stop peerd || no "systemctl --user stop peerd"
    [ "$(as_user alice systemctl --user is-active peerd || true)" = inactive ] || no "peerd is still active"
    # A mistake at start: failed at once, not retried; the error at err, as at a reload.
    local want="^$home/.config/peershare/peerd.conf:[0-9]*: workers = 0: Value 0 not in range 1 to 128\$"
    as_user alice sh -c "echo 'workers = 0' >> $home/.config/peershare/peerd.conf"
    local out rc=0
    out=$(
        ! as_user alice systemctl --user start peerd 2>/dev/null || no "peerd started with workers = 0"
        wait_until eval 'user_journal SYSLOG_IDENTIFIER=peerd -p err | grep -q "$want"' ||
            no "peerd's error is not in the journal at err, unprefixed: $(user_journal -o verbose | grep -E '^ *(PRIORITY|MESSAGE)=' | tail -4)"
        expect_failed_on_config peerd as_user alice systemctl --user
    ) || rc=1
    as_user alice sed -i '/^workers = 0$/d' "$home/.config/peershare/peerd.conf"
    as_user alice systemctl --user reset-failed peerd
    [ $rc = 0 ] || no "$out"
    # By hand: peerd without options, as alice, with a login's environment.
    in_container systemd-run --quiet --unit=alice-by-hand -p Type=notify --uid=alice --gid=alice \
        --setenv=XDG_RUNTIME_DIR="/run/user/$uid" /usr/bin/peerd ||
        no "peerd by hand: $(journal_tail -u alice-by-hand)"
    local listed
    listed=$(as_user alice peerctl list 2>&1) || no "peerctl list: $listed"
    in_container systemctl stop alice-by-hand
    grep -q notes <<<"$listed" || no "peerd started by hand does not have the unit's publication: $listed"
    echo "started, found by peerctl, reloaded (max-uploads 64 -> 8, same PID), stopped; a bad file: failed at once, its error at err; state in ~/.local/state/peerd, which peerd by hand uses too"
}
check "the user unit for a lingering user" user_unit

enable_tracker() {
    in_container systemctl enable tracker 2>/dev/null || no "systemctl enable tracker"
    in_container test -L /etc/systemd/system/multi-user.target.wants/tracker.service || no "no multi-user.target.wants link"
    echo "multi-user.target.wants/tracker.service"
}
check "systemctl enable tracker" enable_tracker
# In this shell, not a check's subshell: nspawn is this shell's child.
reboot_container "$merged" || fail "the container did not come back from its reboot: $(tail -5 "$tmp"/nspawn.*.log)"
up_after_reboot() {
    [ "$(in_container systemctl is-active tracker)" = active ] || no "tracker is $(in_container systemctl is-active tracker)"
    echo "active, main PID $(main_pid)"
}
check "after a reboot the enabled tracker is up" up_after_reboot

upgrade() {
    local pid user_pid uid bob_uid
    pid=$(main_pid)
    uid=$(in_container id -u alice)
    bob_uid=$(in_container id -u bob)
    # alice's peerd runs too: an upgrade restarts users' running peerds as well,
    # on the new peerd.service. bob's is enabled but stopped: it stays stopped.
    wait_until in_container systemctl is-active "user@$uid.service" || no "alice's systemd is not running"
    as_user alice systemctl --user start peerd || no "systemctl --user start peerd"
    user_pid=$(as_user alice systemctl --user show -p MainPID --value peerd)
    in_container loginctl enable-linger bob
    wait_until in_container systemctl is-active "user@$bob_uid.service" || no "bob's systemd did not start"
    as_user bob systemctl --user enable peerd 2>/dev/null || no "systemctl --user enable peerd as bob"
    [ "$(as_user bob systemctl --user is-active peerd || true)" = inactive ] || no "bob's peerd is not inactive"
    apt_install "/root/$next_deb" >"$tmp/apt.log" 2>&1 || no "apt-get install ./$next_deb: $(tail -5 "$tmp/apt.log")"
    [ "$(in_container dpkg-query -W -f '${Version}' peershare)" = "$next_version" ] || no "$next_version is not installed"
    local new
    new=$(main_pid)
    [ "$new" != "$pid" ] && [ "$new" -gt 0 ] || no "the tracker was not restarted (main PID $pid, now $new)"
    local exe
    exe=$(in_container readlink "/proc/$new/exe")
    [ "$exe" = /usr/bin/trackerd ] || no "the tracker runs $exe"
    [ "$(in_container stat -L -c %i "/proc/$new/exe")" = "$(c_stat %i /usr/bin/trackerd)" ] ||
        no "the tracker does not run the installed /usr/bin/trackerd"
    [ "$(in_container systemctl is-enabled tracker)" = enabled ] || no "the upgrade disabled tracker"
    local user_new
    user_new=$(as_user alice systemctl --user show -p MainPID --value peerd)
    [ "$user_new" != "$user_pid" ] && [ "$user_new" -gt 0 ] || no "alice's peerd was not restarted ($user_pid, now $user_new)"
    [ "$(in_container readlink "/proc/$user_new/exe")" = /usr/bin/peerd ] || no "alice's peerd runs $(in_container readlink "/proc/$user_new/exe")"
    # Each of these is said, not only the first that fails.
    local problems=()
    [ "$(as_user alice systemctl --user show -p NeedDaemonReload --value peerd)" = no ] ||
        problems+=("alice's systemd has not re-read peerd.service (NeedDaemonReload=yes)")
    problems+=("$(expect_nofile "$user_new" "$next_user_nofile" \
        "$(as_user alice systemctl --user show -p LimitNOFILE --value peerd)")")
    [ "$(as_user bob systemctl --user is-active peerd || true)" = inactive ] ||
        problems+=("the upgrade started bob's stopped peerd: $(as_user bob systemctl --user is-active peerd)")
    problems+=("$(apt_clean "$tmp/apt.log")")
    as_user alice systemctl --user stop peerd
    local said
    said=$(printf '%s\n' "${problems[@]}" | grep .) && no "$said"
    echo "$version -> $next_version: tracker PID $pid -> $new on the new /usr/bin/trackerd, still enabled; alice's peerd $user_pid -> $user_new on the new unit (LimitNOFILE=$next_user_nofile); bob's stopped one stays stopped; apt printed no bus errors"
}
check "an upgrade restarts the running tracker on the new binary" upgrade

remove() {
    local pid
    pid=$(main_pid)
    in_container env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q peershare >"$tmp/apt.log" 2>&1 ||
        no "apt-get remove: $(tail -5 "$tmp/apt.log")"
    [ "$(in_container systemctl is-active tracker || true)" = inactive ] || no "tracker is still $(in_container systemctl is-active tracker)"
    ! in_container test -e "/proc/$pid" || no "trackerd ($pid) still runs: $(in_container readlink "/proc/$pid/exe")"
    in_container test -f /etc/peershare/tracker.conf || no "remove took the configuration (a conffile stays until purge)"
    apt_clean "$tmp/apt.log"
    echo "trackerd $pid stopped; the configuration stays"
}
check "apt-get remove stops the tracker" remove

reinstall_after_remove() {
    install_expect "$next_deb" enabled/active
    [ "$(as_user bob systemctl --user is-active peerd || true)" = inactive ] || no "bob's peerd was started"
    apt_clean "$tmp/apt.log"
    echo "the enabled tracker runs again (main PID $(main_pid)); users' peerds are left as remove left them, stopped"
}
check "installed again after remove: the enabled tracker is started" reinstall_after_remove

purge() {
    # The links an admin's enable made: the tracker's (enabled above) and,
    # for every user, peerd's.
    in_container systemctl --global enable peerd 2>/dev/null || no "systemctl --global enable peerd"
    local global=/etc/systemd/user/default.target.wants/peerd.service
    local bobs=/home/bob/.config/systemd/user/default.target.wants/peerd.service
    in_container test -L /etc/systemd/system/multi-user.target.wants/tracker.service || no "tracker is not enabled"
    in_container test -L "$global" || no "no $global"
    in_container test -L "$bobs" || no "no $bobs"
    in_container env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q peershare >"$tmp/apt.log" 2>&1 ||
        no "apt-get purge: $(tail -5 "$tmp/apt.log")"
    ! in_container test -e /etc/peershare || no "/etc/peershare is left: $(in_container ls -la /etc/peershare)"
    local links
    links=$(in_container find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled \
        /var/lib/systemd/deb-systemd-user-helper-enabled \( -name '*tracker*' -o -name '*peerd*' \) 2>/dev/null || true)
    [ -z "$links" ] || no "left after purge: $links"
    # A user's own enable is in their home: not the package's to remove.
    in_container test -L "$bobs" || no "purge removed bob's own link"
    in_container getent group tracker | grep -q ':alice$' || no "the group tracker lost alice: $(in_container getent group tracker)"
    apt_clean "$tmp/apt.log"
    echo "configuration and the system's unit links gone (multi-user.target.wants/tracker.service, /etc/systemd/user/default.target.wants/peerd.service); bob's own link in his home stays; the group tracker keeps alice"
}
check "apt-get purge" purge

reinstall() {
    install_expect "$deb" disabled/inactive   # as on a first install
    in_container test -f /etc/peershare/tracker.conf || no "no configuration"
    in_container getent group tracker | grep -q ':alice$' || no "the group tracker lost alice"
    echo "as a first install: disabled, inactive, the shipped configuration"
}
check "installed again after purge: the state of a first install" reinstall

journal() {
    # trackerd ran five times (start, after the bad file at start, after the
    # reboot, after the upgrade, installed again after remove) and was stopped
    # five times (the restart into the bad file, reboot, upgrade, remove, purge).
    local info err
    info=$(tracker_log info)
    err=$(tracker_log err)
    [ "$(count_in "listening for peers on 0.0.0.0:9999" <<<"$info")" = 5 ] ||
        no "not 5 'listening' lines at info: $info"
    [ "$(count_in "stopping on SIGTERM" <<<"$info")" = 5 ] || no "not 5 'stopping' lines at info: $info"
    [ "$(count_in "max-peers 20000 -> 100" <<<"$info")" = 1 ] || no "not one 'max-peers' line at info: $info"
    [ "$(count_in "reload failed, keeping the running settings" <<<"$err")" = 1 ] || no "not one reload error at err: $err"
    [ "$(count_in "heartbeat = 0: Value 0 not in range" <<<"$err")" = 2 ] || no "not the bad file at reload and at start at err: $err"
    [ "$(wc -l <<<"$err")" = 2 ] || no "errors besides the bad file at reload and at start: $err"
    local all
    all=$(in_container journalctl --no-pager -o cat _SYSTEMD_UNIT=tracker.service SYSLOG_IDENTIFIER=trackerd)
    ! grep -q '^<[0-7]>' <<<"$all" || no "a priority prefix reached the journal as text: $(grep '^<[0-7]>' <<<"$all" | head -3)"
    ! grep -q '^trackerd: ' <<<"$all" || no "a 'trackerd: ' prefix reached the journal: $(grep '^trackerd: ' <<<"$all" | head -3)"
    local others
    others=$(in_container journalctl --no-pager -o cat _SYSTEMD_UNIT=tracker.service | grep -cvxF -f <(printf '%s\n' "$all") || true)
    echo "$(wc -l <<<"$all") lines of trackerd's: 5 starts and 5 stops at info, the reloads at info, the bad file at reload and at start at err (and $others lines of other programs in the unit, not counted)"
}
check "journalctl -u tracker: one line per event at its priority" journal

stop_container
echo "$((SECONDS - started)) s in all"
[ ${#failures[@]} -eq 0 ] || fail "${#failures[@]} of the checks failed: ${failures[*]}"
