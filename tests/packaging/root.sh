# tests/packaging/root.sh — the minimal Debian root the system test boots,
# made once with debootstrap and cached (sourced by container.sh and
# prepare_root.sh; needs a `skip MESSAGE` function that exits 77). Gives:
#   ROOT_SUITE                   the Debian release of the root (bookworm)
#   debian_mirror SUITE          the archive apt uses for SUITE (/etc/apt/sources.list*)
#   root_packages [PKG..]        root-packages (beside this file) plus PKG.., one
#                                per line, sorted and unique: the same list, and
#                                so the same cache key, whatever order they come in
#   cached_root DIR SUITE PKG..  a debootstrap --variant=minbase root with PKG..,
#                                made once under DIR (reused while SUITE, mirror
#                                and packages are the same); prints its path.
#                                Holds DIR/.lock while it works: two callers wait
#                                for each other rather than debootstrap twice.

ROOT_SUITE=bookworm   # Debian 12

root_packages() {   # [PKG..]
    { grep -v '^#' "$(dirname "${BASH_SOURCE[0]}")/root-packages"; printf '%s\n' "$@"; } |
        sed 's/[[:space:]]//g' | grep . | sort -u
}

# The first "deb" source of SUITE, from one-line (.list) or deb822 (.sources) files.
debian_mirror() {   # SUITE
    local suite=$1 f
    {
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            awk -v suite="$suite" '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) print $i
            }' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/) types = " " substr($i, 7) " "
                    if ($i ~ /^URIs:/) uris = substr($i, 6)
                    if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
                    if ($i ~ /^Enabled:/) enabled = substr($i, 9)
                }
                gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites); gsub(/ /, "", enabled)
                if (enabled != "no" && types ~ / deb / && suites ~ (" " suite " ")) {
                    split(uris, u, " "); for (k in u) if (u[k] != "") { print u[k]; break }
                }
            }' "$f"
        done
    } | head -n 1
}

cached_root() {   # DIR SUITE PACKAGE...
    local dir=$1 suite=$2
    shift 2
    local mirror key root
    mirror=$(debian_mirror "$suite")
    [ -n "$mirror" ] || skip "no '$suite' source in /etc/apt/sources.list* to debootstrap from"
    key=$(printf '%s\n' "$suite" "$mirror" minbase "$@" | sha256sum | cut -c1-16)
    root=$dir/debian-$suite-$key
    mkdir -p "$dir"
    # One debootstrap at a time per DIR: scripts/test starts one early
    # (prepare_root.sh, during the build) that the test then waits for.
    local lock
    exec {lock}>"$dir/.lock"
    flock -w 480 "$lock" || skip "another debootstrap into $dir held its lock for 8 minutes"
    if [ ! -e "$root/.complete" ]; then
        rm -rf "$root.partial"
        local packages
        packages=$(IFS=,; echo "$*")
        echo "debootstrap $suite from $mirror (once; cached in $root): $packages" >&2
        # Bounded: a stalled download must not hold the test until ctest kills it.
        timeout 420 debootstrap --variant=minbase --include="$packages" "$suite" "$root.partial" "$mirror" \
            >"$dir/debootstrap.log" 2>&1 ||
            skip "debootstrap $suite from $mirror failed or took over 7 minutes: $(tail -3 "$dir/debootstrap.log")"
        # apt's package lists are not needed offline; the test's own files go elsewhere.
        rm -rf "$root.partial"/var/cache/apt/archives/*.deb
        touch "$root.partial/.complete"
        rm -rf "$root"
        mv "$root.partial" "$root"
    fi
    exec {lock}>&-
    echo "$root"
}
