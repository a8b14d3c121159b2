// tests/integration/test_kill_storm.cpp — a SIGKILL storm (issue 9, "Fault
// injection"; docs/robustness.md): a tracker, three holders and a fetcher on
// loopback; a burst of concurrent fetches while the tracker and random
// holders are killed (SIGKILL) and restarted at random points, drawn from a
// seed that is printed (PEERSHARE_STORM_SEED=N repeats a run's choices; the
// timing of a loaded machine still varies). Every fetch must end with the
// right bytes or with one clear line, and never leave a file of wrong bytes
// under its final name; once everything is back, each transfer peerctl gave
// up on finishes, by itself (waiting for a holder) or when the same fetch is
// asked again (failed), as its message says. Every loop
// is bounded in count and time; about 15 s.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "tests/integration/peer_helpers.hpp"

namespace peershare::test {
namespace {

constexpr std::size_t kFiles = 6;
constexpr std::uint64_t kFileSize = 3'000'000;
constexpr const char* kHolderRate = "2M";   // bytes/s per holder: the burst lasts ~3 s unhindered
constexpr Millis kStorm{5'000};
constexpr int kMaxEvents = 12;
constexpr int kMaxTrackerKills = 2;          // each costs the peers a reconnect back-off
constexpr Millis kAllDone{60'000};

std::uint64_t storm_seed() {
    if (const char* s = std::getenv("PEERSHARE_STORM_SEED")) return std::strtoull(s, nullptr, 10);
    return std::random_device{}();
}

}  // namespace

TEST_CASE("SIGKILL storm: tracker and holders killed at random under a burst of fetches; every fetch right or clearly failed") {
    const auto seed = storm_seed();
    std::cout << "kill storm seed: " << seed << " (PEERSHARE_STORM_SEED=" << seed << " repeats it)" << std::endl;
    MESSAGE("seed " << seed);
    std::mt19937_64 random(seed);

    Swarm swarm({"f"});
    auto& tracker = swarm.tracker();
    auto& fetcher = swarm["f"];
    const std::vector<std::string> holders{"h1", "h2", "h3"};
    for (const auto& h : holders) {   // rate-limited, so the storm hits fetches mid-way
        Swarm::wait_connected(swarm.add(h, {{"--max-upload-rate", kHolderRate}}));
    }

    // Each file on two of the three holders (the same bytes), so one kill never leaves it without a source.
    std::vector<fs::path> originals;
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < kFiles; ++i) {
        const auto name = "s" + std::to_string(i);
        auto& a = swarm[holders[i % 3]];
        auto& b = swarm[holders[(i + 1) % 3]];
        originals.push_back(a.dir() / (name + ".bin"));
        write_random(originals[i], kFileSize, 100 + i);
        fs::copy_file(originals[i], b.dir() / (name + ".bin"));
        ids.push_back(publish(a, originals[i], name)["id"].get<std::string>());
        publish(b, b.dir() / (name + ".bin"), name);
    }
    for (std::size_t i = 0; i < kFiles; ++i) {
        wait_holders(fetcher, "s" + std::to_string(i), ids[i], {holders[i % 3], holders[(i + 1) % 3]});
    }

    // The burst: every fetch at once.
    std::vector<fs::path> dests;
    std::vector<std::unique_ptr<Process>> fetches;
    for (std::size_t i = 0; i < kFiles; ++i) {
        dests.push_back(fetcher.dir() / ("s" + std::to_string(i) + ".bin"));
        fetches.push_back(fetcher.start_peerctl({"fetch", "s" + std::to_string(i), "-o", dests.back().string()}));
    }

    // The storm: at random points kill a random holder or the tracker; bring
    // back what was killed at the next event, so at most one holder is down.
    const auto storm_end = Clock::now() + kStorm;
    std::string down;   // the holder down now, if any
    int tracker_kills = 0;
    std::uniform_int_distribution<int> pause_ms(150, 600), pick(0, 3);
    for (int event = 0; event < kMaxEvents && Clock::now() < storm_end; ++event) {
        std::this_thread::sleep_for(Millis{pause_ms(random)});   // a random point, not a synchronisation
        if (!down.empty()) {
            swarm[down].start();
            down.clear();
        }
        const int victim = pick(random);
        if (victim == 3 && tracker_kills < kMaxTrackerKills) {
            ++tracker_kills;
            tracker.process().signal(SIGKILL);
            MESSAGE("event " << event << ": SIGKILL trackerd, restarted");
            tracker.restart();
        } else if (victim < 3) {
            down = holders[static_cast<std::size_t>(victim)];
            MESSAGE("event " << event << ": SIGKILL " << down);
            swarm[down].kill();
        }
        // Never a file of wrong bytes under a final name, at any point.
        for (std::size_t i = 0; i < kFiles; ++i) {
            if (fs::exists(dests[i]) && fs::file_size(dests[i]) == kFileSize) CHECK_SAME_FILE(originals[i], dests[i]);
        }
    }
    if (!down.empty()) swarm[down].start();

    // Everything is back: every fetch ends, with the right bytes or one clear line.
    int clean = 0, failed = 0;
    for (std::size_t i = 0; i < kFiles; ++i) {
        const auto code = fetches[i]->wait(kAllDone);
        INFO("fetch " << i << ": " << fetches[i]->describe());
        REQUIRE_MESSAGE(code.has_value(), "a fetch did not end after the storm");
        if (*code == 0) {
            ++clean;
            CHECK_SAME_FILE(originals[i], dests[i]);
            continue;
        }
        ++failed;
        CHECK(lines_in(fetches[i]->errors()) == 1);
        // Whatever is under the final name is the whole file: a kept transfer
        // may already have finished by itself since peerctl gave up.
        if (fs::exists(dests[i])) CHECK_SAME_FILE(originals[i], dests[i]);
        if (contains(fetches[i]->errors(), "continues by itself")) {
            // Waiting for a holder; every holder is back: it finishes by itself.
            CHECK_MESSAGE(wait_until([&] { return fs::exists(dests[i]); }, kAllDone), fetcher.describe());
        } else {
            // Failed (kept for `peerctl resume`, or forgotten before its first
            // piece): the same fetch again takes it up, or starts it anew.
            CHECK(!fs::exists(dests[i]));
            fetch_ok(fetcher, "s" + std::to_string(i), dests[i]);
        }
        CHECK_SAME_FILE(originals[i], dests[i]);
    }
    MESSAGE(clean << " fetches finished through the storm, " << failed << " ended with a clear error and then finished; "
                  << tracker_kills << " tracker kills");
    CHECK(tracker.running());
    CHECK(fetcher.running());
}

}  // namespace peershare::test
