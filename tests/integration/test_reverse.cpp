// tests/integration/test_reverse.cpp — trackerd's side of reverse connections
// (issue 11, docs/protocol.md §7.12) with in-process peer sessions: a
// reverse_request from a fetcher the tracker verified reachable sends the
// holder a connect_back with the fetcher's verified address and upload port
// and answers ok; each refusal (fetcher unreachable or never checked, holder
// unknown or the fetcher itself, a bad token, past the per-session bound)
// comes with its error; `trackerctl stats`, /metrics and the `reverse` event
// count them. The fetcher is made reachable by a small responder that answers
// the tracker's reach check (GET /v1/reach/<nonce>) with the proof of its key.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "harness.hpp"
#include "proto/reach.hpp"
#include "proto/reverse.hpp"

using namespace peershare;
using namespace peershare::test;

namespace {

// Answers the tracker's reachability checks on 127.0.0.1:port() as the
// upload server of a peer with key `key` would, until destroyed.
class ReachResponder {
public:
    explicit ReachResponder(std::string key) : key_(std::move(key)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
        REQUIRE(::listen(fd_, 8) == 0);
        socklen_t len = sizeof at;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&at), &len) == 0);
        port_ = ntohs(at.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ReachResponder() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    ReachResponder(const ReachResponder&) = delete;
    ReachResponder& operator=(const ReachResponder&) = delete;

    std::uint16_t port() const { return port_; }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            answer(c);
            ::close(c);
        }
    }
    // One request, read within a second, answered with the proof of its nonce.
    void answer(int c) {
        std::string request;
        char buf[1024];
        for (int i = 0; i < 20 && request.find("\r\n\r\n") == std::string::npos; ++i) {
            pollfd p{c, POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            const auto n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) return;
            request.append(buf, static_cast<std::size_t>(n));
        }
        const auto start = request.find(' ');
        const auto end = request.find(' ', start + 1);
        if (start == std::string::npos || end == std::string::npos) return;
        const auto nonce = proto::parse_reach_target(std::string_view(request).substr(start + 1, end - start - 1));
        if (!nonce) return;
        const auto proof = proto::reach_proof(key_, *nonce);
        const auto reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(proof.size()) +
                           "\r\nConnection: close\r\n\r\n" + proof;
        (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    }

    std::string key_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The next message of type M down a session, skipping others; nothing if
// none comes within `deadline` (or ten other frames came first).
template <class M>
std::optional<M> next_of(common::Client& peer, Millis deadline) {
    for (int i = 0; i < 10; ++i) {
        auto frame = peer.next(deadline);
        if (!frame) return std::nullopt;
        if (frame->type != M::kType) continue;
        auto m = M::from_json(frame->body);
        REQUIRE_MESSAGE(m, (m ? "" : m.error().message));
        return *m;
    }
    return std::nullopt;
}

proto::Reachability wait_reachability(common::Client& peer) {
    auto r = next_of<proto::Reachability>(peer, kDeadline);
    REQUIRE_MESSAGE(r, "no reachability message");
    return *r;
}

std::optional<proto::ConnectBack> next_connect_back(common::Client& holder, Millis deadline) {
    return next_of<proto::ConnectBack>(holder, deadline);
}

proto::Result<proto::Ok> ask(common::Client& fetcher, const std::string& holder, const std::string& token) {
    return fetcher.request<proto::Ok>(proto::ReverseRequest{holder, token}, kDeadline);
}

}  // namespace

TEST_CASE("reverse: a reachable fetcher's request reaches the holder with its verified address; refusals") {
    TrackerFixture tracker;
    const std::string bob_key = hex64("key of bob");
    ReachResponder responder(bob_key);
    auto bob = tracker.connect_peer("bob", responder.port(), bob_key);   // the fetcher: reachable
    const auto verdict = wait_reachability(*bob);
    REQUIRE_MESSAGE(verdict.reachable, verdict.reason);
    auto alice = tracker.connect_peer("alice", free_port());             // the holder: not reachable
    const auto alice_verdict = wait_reachability(*alice);
    CHECK_FALSE(alice_verdict.reachable);

    const auto token = proto::random_reverse_token();
    auto ok = ask(*bob, "alice", token);
    REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message + "\n" + tracker.process().describe()));
    const auto back = next_connect_back(*alice, kDeadline);
    REQUIRE(back);
    CHECK(back->token == token);
    CHECK(back->address == "127.0.0.1");
    CHECK(back->address == verdict.address);
    CHECK(back->port == responder.port());
    CHECK(back->peer == "bob");

    // Refusals: nothing goes down the holder's session.
    auto self = ask(*bob, "bob", proto::random_reverse_token());
    REQUIRE_FALSE(self);
    CHECK(self.error().code == proto::ErrorCode::bad_request);
    auto nobody = ask(*bob, "carol", proto::random_reverse_token());
    REQUIRE_FALSE(nobody);
    CHECK(nobody.error().code == proto::ErrorCode::not_found);
    auto hidden = ask(*alice, "bob", proto::random_reverse_token());   // alice is not reachable
    REQUIRE_FALSE(hidden);
    CHECK(hidden.error().code == proto::ErrorCode::unavailable);
    CHECK_MESSAGE(contains(hidden.error().message, "you (alice) are not reachable (connection refused at 127.0.0.1:"),
                  hidden.error().message);
    CHECK(contains(hidden.error().message, "--relay-listen"));
    CHECK_FALSE(next_connect_back(*alice, Millis{200}));

    // The per-session bound: 16 at once; 40 sent together get some `busy`.
    // (Its exact count is the unit test's: here time passes between them.)
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(bob->send(proto::ReverseRequest{"alice", proto::random_reverse_token()}));
    int busy = 0;
    for (auto id : ids) {
        auto reply = bob->wait_reply(id, kDeadline);
        REQUIRE(reply);
        if (reply->type == proto::ErrorReply::kType) {
            auto e = proto::ErrorReply::from_json(reply->body);
            REQUIRE(e);
            CHECK(e->code == proto::ErrorCode::busy);
            ++busy;
        }
    }
    CHECK(busy > 0);
    CHECK(busy < 40);
    const int forwarded = 1 + (40 - busy);

    auto stats = parse_json(tracker.trackerctl("stats", "--json").out);
    CHECK(stats["reverse"]["forwarded"] == forwarded);
    CHECK(stats["reverse"]["refused"] == 3 + busy);
    CHECK(stats["requests"]["reverse_request"] == 4 + 40);
    CHECK(contains(tracker.trackerctl("stats").out,
                   "reverse      " + std::to_string(forwarded) + " forwarded, " + std::to_string(3 + busy) + " refused"));
    auto metrics = run({"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(tracker.http_port()) + "/metrics"});
    CHECK(metric_sample(metrics.out, "peershare_tracker_reverse_requests_total{result=\"forwarded\"}") == forwarded);
    CHECK(metric_sample(metrics.out, "peershare_tracker_reverse_requests_total{result=\"busy\"}") == busy);
    CHECK(metric_sample(metrics.out, "peershare_tracker_reverse_requests_total{result=\"not_found\"}") == 1);
    CHECK(metric_sample(metrics.out, "peershare_tracker_reverse_requests_total{result=\"bad_request\"}") == 1);
    CHECK(metric_sample(metrics.out, "peershare_tracker_reverse_requests_total{result=\"unavailable\"}") == 1);
    CHECK(promtool_check(metrics.out, tracker.dir().path()).exit_code == 0);
    const auto events = tracker.trackerctl("events").out;
    CHECK_MESSAGE(contains(events, "from alice, connecting back to 127.0.0.1:" + std::to_string(responder.port())),
                  events);

    SUBCASE("a bad token is a malformed request: bad_request, and the session closes") {
        auto bad = ask(*bob, "alice", "not a token");
        REQUIRE_FALSE(bad);
        CHECK(bad.error().code == proto::ErrorCode::bad_request);
        CHECK(contains(bad.error().message, "token"));
    }
}

TEST_CASE("reverse: a tracker that does not check reachability answers unavailable") {
    TrackerFixture::Options options;
    options.extra_args = {"--no-reach-check"};
    TrackerFixture tracker(options);
    auto bob = tracker.connect_peer("bob", 7001);
    auto alice = tracker.connect_peer("alice", 7002);
    auto refused = ask(*bob, "alice", proto::random_reverse_token());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == proto::ErrorCode::unavailable);
    CHECK_MESSAGE(contains(refused.error().message, "--no-reach-check"), refused.error().message);
    CHECK_FALSE(next_connect_back(*alice, Millis{200}));
}
