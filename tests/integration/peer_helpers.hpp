// tests/integration/peer_helpers.hpp — what the peerd integration tests
// share: files on disk (random data, comparisons, directory listings), a
// tracker with its peers in one temp dir (Swarm), peerctl and HTTP helpers.
// Header-only: each test file that includes it uses what it needs.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace peershare::test {

using nlohmann::json;

constexpr Millis kReconnect{30'000};          // a peer finding a tracker that (re)appeared
constexpr Millis kBigTransfer{120'000};       // hashing or fetching a few hundred MB
constexpr std::uint64_t kPiece = 256 * 1024;  // the piece size of files up to 512 MiB

// A tracker that gives out the addresses peers advertise (trackerd
// --trust-advertise): a peer advertising 127.0.0.2 while it listens on
// 127.0.0.1 only is then unreachable (its port there refuses).
inline TrackerFixture::Options trusting_advertise() {
    TrackerFixture::Options o;
    o.extra_args = {"--trust-advertise"};
    return o;
}

// `peerctl status --json` once the tracker's reachability verdict is in
// (reachable not null).
inline json settled_status(PeerFixture& peer) {
    json st;
    const bool known = wait_until(
        [&] {
            const auto r = peer.peerctl("--json", "status");
            if (r.exit_code != 0) return false;
            st = json::parse(r.out, nullptr, false);
            return st.is_object() && !st["reachable"].is_null();
        },
        kDeadline);
    REQUIRE_MESSAGE(known, "no reachability verdict: " << st.dump() << "\n" << peer.describe());
    return st;
}

// The port of a peerd started with --metrics-listen 127.0.0.1:0, from its log.
inline std::uint16_t metrics_port(PeerFixture& peer) {
    constexpr std::string_view kMarker = "metrics on http://127.0.0.1:";
    std::uint16_t port = 0;
    wait_until([&] {
        const auto log = peer.process().errors();
        const auto at = log.find(kMarker);
        if (at != std::string::npos) port = static_cast<std::uint16_t>(std::stoi(log.substr(at + kMarker.size())));
        return port != 0;
    }, kDeadline);
    REQUIRE_MESSAGE(port != 0, peer.describe());
    return port;
}

// GET /metrics on `port` with curl: the exposition.
inline std::string scrape(std::uint16_t port) {
    auto r = run({"/usr/bin/curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return r.out;
}

inline std::size_t lines_in(std::string_view text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// ---- files on disk ----

// `size` bytes from a fast seeded PRNG (xorshift64*), written in 1 MiB blocks:
// hundreds of MB in well under a second, and different seeds differ.
inline void write_random(const fs::path& path, std::uint64_t size, std::uint64_t seed) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    REQUIRE(out);
    std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    std::vector<std::uint64_t> block((1u << 20) / sizeof(std::uint64_t));
    while (size > 0) {
        for (auto& word : block) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            word = x * 0x2545f4914f6cdd1dull;
        }
        const auto n = std::min<std::uint64_t>(size, block.size() * sizeof(std::uint64_t));
        out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
        size -= n;
    }
    REQUIRE(out.good());
}

inline void write_text(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    REQUIRE(out.good());
}

inline void append_byte(const fs::path& path) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out.put('!');
    REQUIRE(out.good());
}

inline std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Compares two files in 4 MiB blocks; an empty string if they are equal, else
// what differs (for the failure message).
inline std::string file_difference(const fs::path& expected, const fs::path& actual) {
    std::error_code ec;
    if (!fs::is_regular_file(actual, ec)) return actual.string() + " is not a regular file";
    const auto want = fs::file_size(expected), got = fs::file_size(actual);
    if (want != got) {
        return actual.string() + " has " + std::to_string(got) + " bytes, expected " +
               std::to_string(want);
    }
    std::ifstream a(expected, std::ios::binary), b(actual, std::ios::binary);
    std::vector<char> x(4u << 20), y(4u << 20);
    for (std::uint64_t offset = 0; offset < want;) {
        a.read(x.data(), static_cast<std::streamsize>(x.size()));
        b.read(y.data(), static_cast<std::streamsize>(y.size()));
        const auto n = static_cast<std::size_t>(a.gcount());
        if (n == 0 || static_cast<std::size_t>(b.gcount()) != n) return "short read";
        if (std::memcmp(x.data(), y.data(), n) != 0) {
            const auto at =
                std::mismatch(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n), y.begin())
                    .first -
                x.begin();
            return actual.string() + " differs from " + expected.string() + " at byte " +
                   std::to_string(offset + static_cast<std::uint64_t>(at));
        }
        offset += n;
    }
    return {};
}

#define CHECK_SAME_FILE(expected, actual)                           \
    do {                                                            \
        const auto difference_ = file_difference(expected, actual); \
        CHECK_MESSAGE(difference_.empty(), difference_);            \
    } while (false)

// Every entry of a directory, hidden ones (temporary files) included.
inline std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

inline fs::path make_dir(const fs::path& path) {
    fs::create_directories(path);
    return path;
}

// ---- a tracker and its peers, all in one temp dir ----

inline bool is_connected(PeerFixture& peer) {
    const auto r = peer.peerctl("status", "--json");
    if (r.exit_code != 0) return false;
    const auto j = json::parse(r.out, nullptr, false);
    return j.is_object() && j.value("connected", false);
}

// True while `peer` has a fetch past its lookup (its size known).
inline bool downloading(PeerFixture& peer) {
    const auto r = peer.peerctl("status", "--json");
    if (r.exit_code != 0) return false;
    const auto j = json::parse(r.out, nullptr, false);
    if (!j.is_object() || !j.contains("transfers")) return false;
    for (const auto& t : j["transfers"]) {
        if (t.value("total", 0) > 0) return true;
    }
    return false;
}

class Swarm {
public:
    // A tracker (started with `tracker_options`) and peers NAMES..., each connected to it.
    explicit Swarm(std::initializer_list<std::string> names, TrackerFixture::Options tracker_options = {})
        : tracker_(std::make_unique<TrackerFixture>(std::move(tracker_options))) {
        for (const auto& name : names) add(name);
        for (auto& [name, peer] : peers_) wait_connected(*peer);
    }

    PeerFixture& add(const std::string& name, PeerFixture::Options options = {}) {
        auto& slot = peers_[name];
        slot = start_peer(name, tracker_->endpoint(), dir_.path(), std::move(options));
        return *slot;
    }
    PeerFixture& operator[](const std::string& name) { return *peers_.at(name); }
    TrackerFixture& tracker() { return *tracker_; }
    const fs::path& dir() const { return dir_.path(); }

    static void wait_connected(PeerFixture& peer) {
        REQUIRE_MESSAGE(wait_until([&] { return is_connected(peer); }, kReconnect),
                        peer.describe());
    }

private:
    TempDir dir_;  // first: outlives every process that logs into it
    std::unique_ptr<TrackerFixture> tracker_;
    std::map<std::string, std::unique_ptr<PeerFixture>> peers_;
};

// ---- peerctl ----

// peerctl --json ARGS on `peer`; the command must succeed.
template <class... A>
inline json ok_json(PeerFixture& peer, A&&... args) {
    auto r = peer.peerctl("--json", std::string(std::forward<A>(args))...);
    INFO("peerctl " << peer.name() << ": " << r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    return parse_json(r.out);
}

// Publishes `path` as `name` and checks the reply; the publication's JSON.
inline json publish(PeerFixture& peer, const fs::path& path, const std::string& name) {
    auto r = peer.peerctl({"--json", "publish", path.string(), name}, kBigTransfer);
    INFO("publish on " << peer.name() << ": " << r.describe());
    REQUIRE(r.exit_code == 0);
    const auto j = parse_json(r.out);
    CHECK(j["name"] == name);
    CHECK(j["size"] == fs::file_size(path));
    CHECK(j["path"] == fs::canonical(path).string());   // a publication is its file's canonical path
    REQUIRE(j["id"].is_string());
    CHECK(j["id"].get<std::string>().size() == 64);
    return j;
}

// The holders of content `id` under `name`, as `looker` sees them through the tracker.
inline std::set<std::string> holders(PeerFixture& looker, const std::string& name, const std::string& id) {
    const auto r = looker.peerctl("--json", "search", name);
    if (r.exit_code != 0) return {};
    const auto j = json::parse(r.out, nullptr, false);
    std::set<std::string> out;
    if (!j.is_object() || !j.contains("files")) return out;
    for (const auto& f : j["files"]) {
        if (f.value("name", "") != name || f.value("id", "") != id) continue;
        for (const auto& h : f["holders"]) out.insert(h.get<std::string>());
    }
    return out;
}

// Waits until `looker` sees exactly `expected` holding `id` under `name`.
inline void wait_holders(PeerFixture& looker, const std::string& name, const std::string& id,
                  const std::set<std::string>& expected, Millis deadline = kDeadline) {
    REQUIRE_MESSAGE(wait_until([&] { return holders(looker, name, id) == expected; }, deadline),
                    "'" << name << "' never held by exactly the expected peers; now "
                        << holders(looker, name, id).size() << " holders");
}

// Waits until the tracker lists `name` with content `id` among HOST's files.
// (Search rows are per name, with the first holder's id: where holders of a
// name differ, ask per host.)
inline void wait_discovered(TrackerFixture& tracker, const std::string& host, const std::string& name,
                     const std::string& id) {
    const auto listed = [&] {
        const auto r = tracker.trackerctl("--json", "discover", host);
        if (r.exit_code != 0) return false;
        const auto doc = json::parse(r.out, nullptr, false);
        if (!doc.is_object() || !doc.contains("files")) return false;
        for (const auto& f : doc["files"]) {
            if (f.value("name", "") == name && f.value("id", "") == id) return true;
        }
        return false;
    };
    REQUIRE_MESSAGE(wait_until(listed, kDeadline),
                    "the tracker never listed '" << name << "' of " << host);
}

inline RunResult fetch(PeerFixture& peer, std::vector<std::string> args, const fs::path& cwd = {}) {
    args.insert(args.begin(), "fetch");
    return peer.peerctl(args, kBigTransfer, cwd);
}

// A fetch that must succeed with --json: its document, checked against the request.
inline json fetch_ok(PeerFixture& peer, const std::string& name, const fs::path& out,
              std::vector<std::string> extra = {}) {
    std::vector<std::string> args{name, "-o", out.string(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = fetch(peer, args);
    INFO("fetch on " << peer.name() << ": " << r.describe());
    REQUIRE(r.exit_code == 0);
    const auto j = parse_json(r.out);
    CHECK(j["name"] == name);
    CHECK(j["path"] == out.string());
    CHECK(j["size"] == fs::file_size(out));
    CHECK(j["sources"].is_array());
    return j;
}

inline json publication(PeerFixture& peer, const std::string& name) {
    const auto list = ok_json(peer, "list");
    for (const auto& f : list["files"]) {
        if (f["name"] == name) return f;
    }
    FAIL("peerctl list on " << peer.name() << " does not show '" << name << "'");
    return {};
}

// ---- HTTP ----

struct HttpReply {
    int status = 0;
    std::string headers;  // as curl -D wrote them
    std::string body;
};

inline std::string url(const PeerFixture& peer, const std::string& target) {
    return "http://127.0.0.1:" + std::to_string(peer.port()) + target;
}

// curl ARGS URL, the body into a file; status, headers and body back.
inline HttpReply curl(const PeerFixture& peer, const std::string& target, const fs::path& scratch,
               std::vector<std::string> args = {}) {
    const auto body = scratch / "curl.body", head = scratch / "curl.head";
    std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time",  "30", "-o",
                                  body.string(),   "-D",  head.string(), "-w", "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url(peer, target));
    const auto r = run(argv, {}, Millis{40'000});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    HttpReply reply{std::stoi(r.out), read_bytes(head), read_bytes(body)};
    fs::remove(body);
    fs::remove(head);
    return reply;
}

// A header's value in a block of response headers (name matched case-insensitively).
inline std::string header(const std::string& headers, std::string name) {
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::size_t start = 0;
    while (start < headers.size()) {
        auto end = headers.find("\r\n", start);
        if (end == std::string::npos) end = headers.size();
        const auto line = headers.substr(start, end - start);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            auto key = line.substr(0, colon);
            std::transform(key.begin(), key.end(), key.begin(), ::tolower);
            if (key == name) {
                auto value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                return value;
            }
        }
        start = end + 2;
    }
    return {};
}

// Writes `request` on a fresh connection to the upload port and reads until the
// server closes (or the deadline): the raw response.
inline std::string raw_http(std::uint16_t port, const std::string& request) {
    RawConnection raw(port);
    raw.send_all(request);  // the server may answer and close before reading it all
    return raw.read_until_closed(kDeadline);
}

inline int status_of(const std::string& response) {
    if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) return 0;
    return std::atoi(response.substr(9, 3).c_str());
}


}  // namespace peershare::test
