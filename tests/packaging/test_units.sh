#!/usr/bin/env bash
# tests/packaging/test_units.sh — the systemd units (docs/design.md,
# "Services and packaging"; issue 4): `systemd-analyze verify` is clean for
# both, and tracker.service's exposure under `systemd-analyze security
# --offline=true` is at most 1.5. verify wants every ExecStart= binary and
# Documentation= man page to exist, so it reads copies of the units whose
# ExecStart= names this build's binaries, with MANPATH at this build's man
# pages.
#   test_units.sh SOURCE_DIR TRACKERD PEERD MAN_DIR
set -euo pipefail

source_dir=$1 trackerd=$2 peerd=$3 man_dir=$4
max_exposure=1.5

source "$(dirname "${BASH_SOURCE[0]}")/../shell/common.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing: apt-get install systemd"
mkdir -p "$tmp/man/man1" "$tmp/man/man8" "$tmp/units" "$tmp/run"
chmod 700 "$tmp/run"
cp "$man_dir"/*.1.gz "$tmp/man/man1/"
cp "$man_dir"/*.8.gz "$tmp/man/man8/"
sed "s#^ExecStart=/usr/bin/trackerd#ExecStart=$trackerd#" "$source_dir/systemd/tracker.service" > "$tmp/units/tracker.service"
sed "s#^ExecStart=/usr/bin/peerd#ExecStart=$peerd#" "$source_dir/systemd/peerd.service" > "$tmp/units/peerd.service"
grep -q "^ExecStart=$trackerd" "$tmp/units/tracker.service" || fail "tracker.service: ExecStart= is not /usr/bin/trackerd"
grep -q "^ExecStart=$peerd " "$tmp/units/peerd.service" || fail "peerd.service: ExecStart= is not /usr/bin/peerd"

# verify: clean means exit 0 and not a word of output.
export MANPATH=$tmp/man XDG_RUNTIME_DIR=$tmp/run
out=$(systemd-analyze verify "$tmp/units/tracker.service" 2>&1) || fail "verify tracker.service: $out"
[ -z "$out" ] || fail "verify tracker.service is not clean: $out"
out=$(systemd-analyze --user verify "$tmp/units/peerd.service" 2>&1) || fail "verify --user peerd.service: $out"
[ -z "$out" ] || fail "verify --user peerd.service is not clean: $out"
echo "ok: systemd-analyze verify is clean for tracker.service and peerd.service"

# security: the score of the shipped unit, as systemd computes it offline.
report=$(systemd-analyze security --offline=true "$source_dir/systemd/tracker.service" 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for tracker.service: \([0-9.]*\).*/\1/p' <<<"$report")
[ -n "$score" ] || fail "no exposure level in: $report"
awk -v s="$score" -v max="$max_exposure" 'BEGIN { exit !(s <= max) }' ||
    fail "tracker.service exposure $score is above $max_exposure:
$(grep '✗' <<<"$report")"
echo "ok: tracker.service exposure $score (at most $max_exposure)"
