// tests/integration/test_peer_metrics.cpp — peerd's --metrics-listen (issue
// 12): /metrics passes `promtool check metrics`, and its counters move as a
// scripted publish and fetch happen between two real peerds (the fetch under
// a download limit, so that it waits for it).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "harness.hpp"
#include "peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;

namespace {

double metric(const std::string& text, const std::string& sample) { return metric_sample(text, sample); }

void promtool_passes(const std::string& text, const fs::path& dir) {
    auto check = promtool_check(text, dir);
    INFO(text);
    INFO(check.describe());
    CHECK(check.exit_code == 0);
}

}  // namespace

TEST_CASE("right after start, peerd's /metrics has every labelled series at 0") {
    TrackerFixture tracker;
    auto peer = start_peer("early", tracker.endpoint(), tracker.dir().path(),
                           PeerFixture::Options{{"--metrics-listen", "127.0.0.1:0"}});
    const auto port = metrics_port(*peer);
    const auto page = scrape(port);
    promtool_passes(page, peer->dir());
    for (const char* reason : {"cannot_connect", "not_found", "no_range_support", "bad_piece_list", "busy", "failures",
                               "other"}) {
        CAPTURE(reason);
        CHECK(metric(page, std::string("peershare_peer_sources_dropped_total{reason=\"") + reason + "\"}") == 0);
    }
    for (const char* direction : {"upload", "download"}) {
        CAPTURE(direction);
        CHECK(metric(page, std::string("peershare_peer_rate_limit_waits_total{direction=\"") + direction + "\"}") == 0);
    }
}

TEST_CASE("on loopback, peerd's /metrics answers only loopback Host headers (DNS rebinding)") {
    TrackerFixture tracker;
    auto peer = start_peer("local", tracker.endpoint(), tracker.dir().path(),
                           PeerFixture::Options{{"--metrics-listen", "127.0.0.1:0"}});
    const auto port = metrics_port(*peer);
    // A web page whose name points at 127.0.0.1 sends its own name.
    const auto url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    auto refused = run({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "-H", "Host: attacker.example", url});
    CHECK(refused.out.ends_with("\n421"));
    CHECK_FALSE(contains(refused.out, "peershare_peer"));
    auto local = run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: localhost", url});
    CHECK(local.out == "200");
    CHECK_FALSE(contains(peer->process().errors(), "is not a loopback address"));
}

TEST_CASE("peerd --metrics-listen on a non-loopback address logs a warning, as trackerd does") {
    TrackerFixture tracker;
    auto peer = start_peer("open", tracker.endpoint(), tracker.dir().path(),
                           PeerFixture::Options{{"--metrics-listen", "0.0.0.0:0"}});
    CHECK(wait_until([&] { return contains(peer->process().errors(), "is not a loopback address"); }, kDeadline));
    INFO(peer->process().errors());
    CHECK(contains(peer->process().errors(), "--metrics-listen 0.0.0.0:0 is not a loopback address"));
}

TEST_CASE("peerd's /metrics passes promtool, and its counters move with a publish and a fetch") {
    TrackerFixture tracker;
    const PeerFixture::Options with_metrics{{"--metrics-listen", "127.0.0.1:0"}};
    auto alpha = start_peer("alpha", tracker.endpoint(), tracker.dir().path(), with_metrics);
    // 3 MiB at 16 MB/s: about 0.2 s, longer than the bucket's burst, so the fetch waits.
    const PeerFixture::Options limited{{"--metrics-listen", "127.0.0.1:0", "--max-download-rate", "16M"}};
    auto beta = start_peer("beta", tracker.endpoint(), tracker.dir().path(), limited);
    const auto alpha_port = metrics_port(*alpha);
    const auto beta_port = metrics_port(*beta);

    constexpr std::uint64_t kSize = 3 * 1024 * 1024 + 17;
    const auto src = alpha->dir() / "data.bin";
    {
        std::ofstream out(src, std::ios::binary);
        for (std::uint64_t i = 0; i < kSize; ++i) out.put(static_cast<char>((i * 2654435761u) >> 13));
    }
    REQUIRE(alpha->peerctl("publish", src.string(), "data.bin").exit_code == 0);
    const auto out = beta->dir() / "data.bin";
    REQUIRE(wait_until([&] { return beta->peerctl("fetch", "data.bin", "-o", out.string()).exit_code == 0; },
                       Millis{30'000}));
    REQUIRE(fs::file_size(out) == kSize);

    const auto up = scrape(alpha_port);
    const auto down = scrape(beta_port);
    promtool_passes(up, alpha->dir());
    promtool_passes(down, beta->dir());
    CHECK(metric(up, "peershare_peer_uploaded_bytes_total") == kSize);
    CHECK(metric(up, "peershare_peer_publications") == 1);
    CHECK(metric(up, "peershare_peer_tracker_connected") == 1);
    CHECK(metric(up, "peershare_peer_upload_slots") == 64);
    CHECK(metric(up, "peershare_peer_upload_slots_in_use") == 0);
    CHECK(metric(down, "peershare_peer_downloaded_bytes_total") == kSize);
    CHECK(metric(down, "peershare_peer_pieces_verified_total") >= 1);
    CHECK(metric(down, "peershare_peer_pieces_rejected_total") == 0);
    CHECK(metric(down, "peershare_peer_rate_limit_waits_total{direction=\"download\"}") >= 1);
    CHECK(metric(up, "peershare_peer_rate_limit_waits_total{direction=\"upload\"}") == 0);
    // The transfer is kept, done; every state is named.
    CHECK(metric(down, "peershare_peer_transfers{state=\"done\"}") == 1);
    for (const char* state : {"queued", "running", "waiting", "paused", "failed"}) {
        CAPTURE(state);
        CHECK(metric(down, std::string("peershare_peer_transfers{state=\"") + state + "\"}") == 0);
    }
    CHECK(metric(down, "process_resident_memory_bytes") > 1e6);

    // Only GET /metrics is served.
    auto other = run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      "http://127.0.0.1:" + std::to_string(beta_port) + "/"});
    CHECK(other.out == "404");

    // The tracker going away shows.
    tracker.stop();
    CHECK(wait_until([&] { return metric(scrape(beta_port), "peershare_peer_tracker_connected") == 0; }, kDeadline));
}
