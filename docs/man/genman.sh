#!/bin/sh
# docs/man/genman.sh — one man page from its single source, the program's own
# --help (and, for peerctl/trackerctl, each subcommand's --help), plus the
# prose in NAME.h2m beside this script. Run by the build:
#   genman.sh PROGRAM SECTION VERSION OUT.gz
# The program runs in a scrubbed environment so that defaults taken from the
# environment read as "$XDG_RUNTIME_DIR/..." and "~/...", not the builder's.
set -eu

program=$1 section=$2 version=$3 out=$4
name=$(basename "$program")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {
    env -i PATH="$(dirname "$program"):/usr/bin:/bin" HOME='~' XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR' \
        LC_ALL=C.UTF-8 "$name" "$@"
}

# Each subcommand's --help as a man section: its usage, then its arguments as
# tagged paragraphs. CLI11 prints "  TERM   description" or, for a long TERM,
# the description on the next, deeply indented line.
subcommands=$(run --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
cp "$here/$name.h2m" "$work/include.h2m"
if [ -n "$subcommands" ]; then
    echo "[COMMANDS]" >> "$work/include.h2m"
    for sub in $subcommands; do
        run "$sub" --help | awk -v cmd="$name $sub" '
            function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); sub(/^[.'"'"']/, "\\\\&&", s); return s }
            NR == 1 { printf ".SS \"%s\"\n%s\n", esc(cmd), esc($0); next }
            /^Usage: / { sub(/^Usage: [^ ]+ [^ ]+ ?/, ""); printf ".PP\n\\fB%s\\fR %s\n", esc(cmd), esc($0); next }
            /^[A-Za-z]+:$/ || /^$/ { next }
            /^      / { sub(/^ +/, ""); print esc($0); next }   # a description on its own line
            /^  -h,--help/ { next }
            /^  / {
                sub(/^  /, "")
                split($0, parts, /  +/)
                term = parts[1]; rest = substr($0, length(term) + 1); sub(/^ +/, "", rest)
                head = term; sub(/ .*/, "", head)   # the option or positional; its type follows
                printf ".TP\n\\fB%s\\fR%s\n", esc(head), esc(substr(term, length(head) + 1))
                if (rest != "") print esc(rest)
            }' >> "$work/include.h2m"
    done
fi

env -i PATH="$(dirname "$program"):/usr/bin:/bin" HOME='~' XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR' \
    help2man --locale=C.UTF-8 --no-info --no-discard-stderr --section="$section" \
        --version-string="$version" --include="$work/include.h2m" --output="$work/$name.$section" "$name"
gzip -9n < "$work/$name.$section" > "$out.tmp"
mv "$out.tmp" "$out"
