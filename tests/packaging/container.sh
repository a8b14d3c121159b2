# tests/packaging/container.sh — a minimal Debian root booted under a real
# systemd with systemd-nspawn, for test_system.sh (sourced after
# tests/shell/common.sh). Gives:
#   skip MESSAGE                 print SKIP: MESSAGE and exit 77 (ctest: skipped)
#   debian_mirror, root_packages, cached_root   from root.sh (the cached root)
#   overlay_root LOWER DIR       an overlay of LOWER (kept read-only) mounted at
#                                DIR/merged; sets $merged
#   boot_container ROOT          boots ROOT (-b, private network, not registered,
#                                no host path bound) and waits until its systemd
#                                has finished starting; sets $nspawn_pid, $leader
#   in_container CMD...          CMD in the container's namespaces, clean env
#   as_user USER CMD...          CMD as USER with the environment of a login
#                                (HOME, XDG_RUNTIME_DIR) in the container
#   reboot_container             systemctl reboot, nspawn exits 133, boot again
#   stop_container               poweroff (SIGKILL after a deadline)
# Everything it makes is undone on exit, even on failure or SIGTERM/SIGINT:
# the container stopped, the overlay unmounted — before common.sh's cleanup,
# which waits for every child and removes $tmp.
skip() { echo "SKIP: $*" >&2; exit 77; }   # on stderr: also from within $(...)
trap 'cleanup_container; cleanup' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

source "$(dirname "${BASH_SOURCE[0]}")/root.sh"

mounted=()
overlay_root() {   # LOWER DIR
    local lower=$1 dir=$2
    mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" ||
        skip "cannot mount an overlay file system over $lower"
    mounted+=("$dir/merged")
    merged=$dir/merged
}

nspawn_pid="" leader="" boots=0
boot_container() {   # ROOT
    local root=$1
    boots=$((boots + 1))
    local log=$tmp/nspawn.$boots.log
    systemd-nspawn --quiet --boot --directory="$root" --machine="peershare-test-$$" \
        --register=no --keep-unit --private-network --console=passive \
        >"$log" 2>&1 </dev/null &
    nspawn_pid=$!
    leader=""
    local end=$((SECONDS + 60))
    while [ -z "$leader" ]; do
        kill -0 "$nspawn_pid" 2>/dev/null || { nspawn_pid=""; return 1; }
        [ $SECONDS -lt $end ] || return 1
        # The container's PID 1 is nspawn's child running systemd.
        local child
        for child in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do
            [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && leader=$child
        done
        [ -n "$leader" ] || sleep 0.1
    done
    # Until every start job has finished: "running", or "degraded" where a unit
    # the container cannot run (hardware, consoles) failed. Before its bus is
    # up, systemctl cannot connect: asked again until the deadline.
    local state=""
    while :; do
        state=$(timeout 30 nsenter -t "$leader" -a env -i PATH=/usr/bin:/bin \
            systemctl is-system-running --wait 2>&1) || true
        case $state in
            running|degraded) return 0 ;;
        esac
        kill -0 "$nspawn_pid" 2>/dev/null && [ $SECONDS -lt $end ] || break
        sleep 0.1
    done
    echo "the container's systemd is '$state': $(tail -20 "$log")" >&2
    return 1
}

in_container() {
    nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        SYSTEMD_COLORS=0 SYSTEMD_PAGER= "$@"
}

as_user() {   # USER CMD...
    local user=$1 uid
    shift
    uid=$(in_container id -u "$user")
    in_container setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH=/usr/bin:/bin HOME="$(in_container getent passwd "$user" | cut -d: -f6)" \
        USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="/run/user/$uid" LANG=C.UTF-8 SYSTEMD_COLORS=0 "$@"
}

# Waits up to SECONDS for nspawn to exit; its status in $nspawn_status.
wait_nspawn_exit() {   # SECONDS
    local end=$((SECONDS + $1))
    while kill -0 "$nspawn_pid" 2>/dev/null; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
    nspawn_status=0
    wait "$nspawn_pid" || nspawn_status=$?
    nspawn_pid="" leader=""
}

reboot_container() {   # ROOT
    in_container systemctl reboot || return 1
    wait_nspawn_exit 60 || return 1
    # nspawn's exit code for "the container rebooted" (systemd-nspawn(1)).
    [ "$nspawn_status" = 133 ] || { echo "nspawn exited $nspawn_status, not 133 (reboot)" >&2; return 1; }
    boot_container "$1"
}

stop_container() {
    [ -n "$nspawn_pid" ] || return 0
    [ -z "$leader" ] || timeout 10 nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || true
    # SIGTERM makes nspawn ask the container's systemd to power off.
    wait_nspawn_exit 30 || { kill -TERM "$nspawn_pid" 2>/dev/null; wait_nspawn_exit 15; } ||
        { kill -KILL "$nspawn_pid" 2>/dev/null; wait_nspawn_exit 5; } || true
}

cleanup_container() {
    stop_container
    local m
    for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    mounted=()
}
