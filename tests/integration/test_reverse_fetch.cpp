// tests/integration/test_reverse_fetch.cpp — reverse connections (issue 11,
// docs/protocol.md §7.12, §11.10): a holder the tracker found unreachable is
// fetched from by having it connect back to the (reachable) fetcher's upload
// port. Real trackerd, peerd, peerctl on loopback; an unreachable holder is
// made as in test_reach.cpp: it advertises 127.0.0.2 to a tracker that
// trusts advertised addresses, while listening on 127.0.0.1 only. The
// refusal of forged and replayed tokens uses an in-process holder session,
// which sees the token the tracker passes on.
#include <doctest/doctest.h>

#include "proto/http.hpp"
#include "proto/reverse.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/peer_helpers.hpp"

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

namespace {

double connect_backs(PeerFixture& peer, const std::string& result) {
    return metric_sample(scrape(metrics_port(peer)), "peershare_peer_connect_backs_total{result=\"" + result + "\"}");
}

// Presents `token` in a connect-back preface on `port`; true if the server
// closed the connection on it (refused) within the deadline.
bool preface_refused(std::uint16_t port, const std::string& token) {
    RawConnection raw(port);
    raw.send_all(proto::reverse_preface(token));
    return raw.read_until_closed(kDeadline).empty();
}

}  // namespace

TEST_CASE("reverse 1: a holder nobody can reach is fetched from by connecting back; transfers says via reverse") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto hidden = start_peer("hidden", tracker.endpoint(), dir.path(), {{"--advertise", "127.0.0.2"}});
    // Slowed down so that the running transfer is seen with its source.
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(),
                              {{"--metrics-listen", "127.0.0.1:0", "--max-download-rate", "2M"}});
    const auto file = hidden->dir() / "hidden.bin";
    write_random(file, 3'000'000, 21);
    publish(*hidden, file, "hidden.bin");
    REQUIRE(settled_status(*hidden)["reachable"] == false);
    REQUIRE(settled_status(*fetcher)["reachable"] == true);

    const auto out = fetcher->dir() / "hidden.bin";
    const auto started = fetcher->peerctl({"fetch", "hidden.bin", "-o", out.string(), "--detach"}, kDeadline);
    REQUIRE_MESSAGE(started.exit_code == 0, started.describe());
    json seen;
    const bool via_reverse = wait_until(
        [&] {
            const auto list = parse_json(fetcher->peerctl("--json", "transfers").out);
            for (const auto& t : list["transfers"]) {
                for (const auto& s : t["sources"]) {
                    if (s["peer"] == "hidden" && s["via"] == "reverse" && !s["dropped"].get<bool>()) seen = s;
                }
            }
            return seen.is_object();
        },
        kDeadline);
    CHECK_MESSAGE(via_reverse, fetcher->describe());
    const auto text = fetcher->peerctl("transfers");
    // The text view names it too, while it runs (it may just have finished).
    CHECK((contains(text.out, "hidden (reverse") || contains(text.out, " done ")));
    const bool done = wait_until(
        [&] {
            const auto list = parse_json(fetcher->peerctl("--json", "transfers").out);
            return !list["transfers"].empty() && list["transfers"][0]["state"] == "done";
        },
        kBigTransfer);
    REQUIRE_MESSAGE(done, fetcher->describe() << "\n" << hidden->describe());
    CHECK(file_difference(file, out).empty());
    CHECK(connect_backs(*fetcher, "taken") >= 1);
    CHECK(connect_backs(*fetcher, "refused") == 0);
    CHECK(contains(hidden->process().errors(), "connected back to fetcher at 127.0.0.1:"));
    // Never dialled at the address it advertised.
    CHECK_FALSE(contains(fetcher->process().errors(), "127.0.0.2"));
}

TEST_CASE("reverse 2: a forged and a replayed connect-back token are refused; the upload server serves on") {
    TempDir dir;
    TrackerFixture tracker(trusting_advertise());
    auto fetcher = start_peer("fetcher", tracker.endpoint(), dir.path(), {{"--metrics-listen", "127.0.0.1:0"}});
    const auto served = fetcher->dir() / "served.bin";
    write_random(served, 100'000, 22);
    const auto id = publish(*fetcher, served, "served.bin")["id"].get<std::string>();
    REQUIRE(settled_status(*fetcher)["reachable"] == true);

    // A holder session in this process, its upload port closed: unreachable.
    // It sees the token the tracker passes on, as a holder would.
    auto ghost = tracker.connect_peer("ghost", 1);
    ghost->answer_pings(true);
    const proto::FileInfo info{"ghost.bin", 1'000'000, std::string(64, 'c'), 262'144};
    REQUIRE(ghost->request<proto::Ok>(proto::Publish{info}, kDeadline));
    const bool hidden = wait_until(
        [&] {
            const auto r = tracker.trackerctl("--json", "peers");
            if (r.exit_code != 0) return false;
            const auto doc = parse_json(r.out);
            for (const auto& p : doc["peers"])
                if (p["name"] == "ghost") return p["reachable"] == false;
            return false;
        },
        kDeadline);
    REQUIRE_MESSAGE(hidden, tracker.trackerctl("--json", "peers").out);

    const auto out = fetcher->dir() / "ghost.bin";
    const auto started = fetcher->peerctl({"fetch", "ghost.bin", "-o", out.string(), "--detach"}, kDeadline);
    REQUIRE_MESSAGE(started.exit_code == 0, started.describe());
    std::optional<proto::ConnectBack> asked;
    for (int i = 0; i < 50 && !asked; ++i) {   // bounded: pings and the reachability come first
        auto env = ghost->next(kDeadline);
        REQUIRE_MESSAGE(env, env.error().message);
        if (env->type == proto::ConnectBack::kType) asked = *proto::ConnectBack::from_json(env->body);
    }
    REQUIRE(asked);
    CHECK(asked->peer == "fetcher");
    CHECK(asked->address == "127.0.0.1");
    CHECK(asked->port == fetcher->port());

    // The real token, once: the fetch takes the socket (it asks for the piece list on it).
    {
        RawConnection taken(fetcher->port());
        taken.send_all(proto::reverse_preface(asked->token));
        CHECK(wait_until([&] { return connect_backs(*fetcher, "taken") == 1; }, kDeadline));
    }
    // The same token again: a replay. A token nobody asked for: forged.
    CHECK(preface_refused(fetcher->port(), asked->token));
    const auto forged = proto::random_reverse_token();
    CHECK(preface_refused(fetcher->port(), forged));
    CHECK(connect_backs(*fetcher, "refused") == 2);
    CHECK(connect_backs(*fetcher, "taken") == 1);

    // Everyone else is served as before.
    const auto answer = raw_http(fetcher->port(), "GET " + proto::file_path(id) +
                                                      " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(answer) == 200);
    CHECK(answer.size() > 100'000);

    // The ghost never connects back when asked again: the source gives up
    // after 5 s (HandedSockets::problem) and the transfer waits, saying why.
    // Read from peerd's log, which keeps the line: the state itself comes and
    // goes (the transfer asks the tracker again after 1 s, and waits again),
    // so a slow poll on a loaded machine could miss every `waiting` window.
    const auto waiting_line = [&]() -> std::string {
        const auto log = fetcher->process().errors();
        for (auto at = log.find("waiting for a holder: "); at != std::string::npos;
             at = log.find("waiting for a holder: ", at + 1)) {
            const auto line = log.substr(at, log.find('\n', at) - at);
            if (contains(line, "did not connect back within 5 s")) return line;
        }
        return {};
    };
    CHECK_MESSAGE(wait_until([&] { return !waiting_line().empty(); }, 3 * kDeadline), fetcher->describe());
    // And `peerctl transfers` says so in one line whenever it is waiting.
    const auto list = parse_json(fetcher->peerctl("--json", "transfers").out);
    REQUIRE(list["transfers"].size() == 1);
    if (list["transfers"][0]["state"] == "waiting") {
        const auto why = list["transfers"][0]["error"].get<std::string>();
        CHECK_MESSAGE(contains(why, "did not connect back within 5 s"), why);
        CHECK(why.find('\n') == std::string::npos);
    }
}
