# scripts/lib.sh — what scripts/test, scripts/demo and scripts/bench share:
# installing missing Debian packages and building into build/.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}

# Build and run dependencies, from Debian's archive. The second line is for
# the man pages and the package and its tests: help2man, cpack's DEB generator
# (dpkg-shlibdeps, file), lintian, systemd-analyze, ps, man (systemd-analyze
# verify looks up Documentation=), ip and nft (the multi-host tests in network
# namespaces; nft masquerades the NAT test's homes) and nginx (the HTTP server the fetch engine's unit tests
# download from); the third for the system test, which boots a Debian root it
# makes with debootstrap under systemd-nspawn. The fourth: promtool (in
# prometheus) checks both daemons' /metrics; chromium and the machine's npm
# (playwright-core, from tests/browser/package-lock.json) run the dashboard's
# browser test; clang 14 and its libFuzzer runtime build the fuzz targets
# (scripts/fuzz, tests/fuzz).
DEPS=(cmake g++ make pkg-config libuv1-dev nlohmann-json3-dev libcli11-dev doctest-dev
      libssl-dev libhttp-parser-dev libcurl4-openssl-dev libsystemd-dev libsqlite3-dev curl
      help2man dpkg-dev file lintian systemd procps man-db iproute2 nftables nginx-light
      debootstrap systemd-container
      prometheus chromium
      clang-14 libclang-rt-14-dev)

# Installs the packages given that are not installed yet (apt-get update once).
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
}

# npm for the browser test (tests/browser, `npm ci` from its lock file):
# Debian's package where the machine has no npm at all; a machine whose
# Node.js came from elsewhere (e.g. nodesource, which bundles npm) keeps it.
ensure_npm() {
    command -v npm >/dev/null || ensure_packages npm
}

# Configures and builds into $BUILD_DIR; extra arguments go to cmake. With
# BUILD_TARGETS set, builds only those targets.
build() {
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    local targets=()
    for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
    cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
}

# The four programs a user runs.
PROGRAMS="trackerd peerd peerctl trackerctl"

# The fuzz targets (tests/fuzz) and nothing else, built with clang 14, ASan,
# UBSan and libFuzzer into $FUZZ_BUILD_DIR; the GCC builds are not touched.
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
fuzz_build() {
    CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$FUZZ_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DPEERSHARE_FUZZ=ON "$@" >/dev/null
    cmake --build "$FUZZ_BUILD_DIR" -j "$(nproc)"
}
