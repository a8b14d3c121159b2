// tests/unit/test_framed_connection.cpp — common::FramedConnection over a
// socketpair: replies to a pipelined batch (gathered into one write) keep
// their order, an error sent just before a close still arrives, and the frame
// deadline counts from a frame's first byte.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/framed_connection.hpp"
#include "common/uv.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"

using namespace peershare;

namespace {

// A FramedConnection on one end of a socketpair that answers every frame with
// `ok` carrying its id, and closes on a frame of type "bye" after answering;
// the test drives the other end with plain blocking reads and writes.
struct Pair {
    common::Loop loop;
    std::unique_ptr<common::FramedConnection> conn;
    int peer_fd = -1;
    bool closed = false;

    Pair() {
        int fds[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
        peer_fd = fds[1];
        common::Pipe pipe(loop.get());
        REQUIRE(uv_pipe_open(pipe.get(), fds[0]) == 0);
        conn = std::make_unique<common::FramedConnection>(std::move(pipe));
        conn->start(
            [this](proto::Envelope&& env) {
                conn->send(proto::Ok{}, env.id);
                if (env.type == "bye") {
                    conn->send_error(proto::ErrorCode::bad_request, "bye", env.id);
                    conn->close("asked to");
                }
            },
            [this](const std::string&) { closed = true; });
    }
    ~Pair() {
        conn.reset();
        loop.run(UV_RUN_NOWAIT);
        close(peer_fd);
    }

    void send(const std::string& bytes) {
        REQUIRE(write(peer_fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }

    // Runs the loop until `want` frames came back or the connection closed,
    // then returns them (at most `want`).
    std::vector<proto::Envelope> receive(std::size_t want) {
        std::vector<proto::Envelope> out;
        proto::FrameDecoder decoder;
        fcntl(peer_fd, F_SETFL, O_NONBLOCK);
        for (int spins = 0; spins < 10'000 && out.size() < want; ++spins) {
            loop.run(UV_RUN_NOWAIT);
            char buf[4096];
            const ssize_t n = read(peer_fd, buf, sizeof buf);
            if (n == 0) break;   // closed after its last reply
            if (n < 0) continue;
            for (auto& payload : decoder.feed({buf, static_cast<std::size_t>(n)})) {
                auto env = proto::parse_envelope(payload);
                REQUIRE(env);
                out.push_back(std::move(*env));
            }
        }
        return out;
    }
};

std::string request(std::string_view type, std::uint64_t id) {
    return proto::encode_frame(R"({"type":")" + std::string(type) + R"(","id":)" + std::to_string(id) + "}");
}

}  // namespace

TEST_CASE("replies to a pipelined batch come back in order") {
    Pair p;
    std::string batch;
    for (std::uint64_t id = 1; id <= 200; ++id) batch += request("lookup", id);
    p.send(batch);
    auto replies = p.receive(200);
    REQUIRE(replies.size() == 200);
    for (std::uint64_t id = 1; id <= 200; ++id) {
        CHECK(replies[id - 1].type == "ok");
        CHECK(replies[id - 1].id == id);
    }
    CHECK_FALSE(p.closed);
}

TEST_CASE("replies and an error sent before a close all arrive, then the connection closes") {
    Pair p;
    p.send(request("lookup", 1) + request("lookup", 2) + request("bye", 3) + request("lookup", 4));
    auto replies = p.receive(10);
    REQUIRE(replies.size() == 4);   // nothing answered after the close
    CHECK(replies[0].id == 1);
    CHECK(replies[1].id == 2);
    CHECK(replies[2].type == "ok");
    CHECK(replies[3].type == "error");
    CHECK(replies[3].id == 3);
    for (int i = 0; i < 100 && !p.closed; ++i) p.loop.run(UV_RUN_NOWAIT);
    CHECK(p.closed);
}

TEST_CASE("a malformed frame after good ones: their replies, then bad_request, then close") {
    Pair p;
    p.send(request("lookup", 1) + proto::encode_frame("not json"));
    auto replies = p.receive(10);
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].id == 1);
    CHECK(replies[1].type == "error");
    CHECK(replies[1].body.value("code", "") == "bad_request");
}

namespace {

// Writes `bytes` a piece at a time, each piece `every` apart, running the loop
// meanwhile; stops early if the connection closed.
void dribble(Pair& p, const std::vector<std::string>& pieces, std::chrono::milliseconds every) {
    for (const auto& piece : pieces) {
        if (p.closed) return;
        if (write(p.peer_fd, piece.data(), piece.size()) < 0) return;
        const auto until = std::chrono::steady_clock::now() + every;
        while (std::chrono::steady_clock::now() < until && !p.closed) {
            p.loop.run(UV_RUN_NOWAIT);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));   // the input's pace, not a wait for a condition
        }
    }
}

}  // namespace

TEST_CASE("frame deadline: a frame that trickles in is closed at the deadline of its first byte") {
    Pair p;
    p.conn->set_frame_deadline(300);
    const std::string frame = request("lookup", 1);
    std::vector<std::string> bytes;
    for (char c : frame) bytes.emplace_back(1, c);   // one byte every 50 ms: 20+ bytes take over 1 s
    dribble(p, bytes, std::chrono::milliseconds(50));
    CHECK(p.closed);
}

TEST_CASE("frame deadline: frames that keep completing are not cut, though every read ends mid-frame") {
    Pair p;
    p.conn->set_frame_deadline(1000);
    // Each write finishes one frame and starts the next: 30 writes, 100 ms
    // apart, three times the deadline, with a frame always part-way in.
    std::vector<std::string> pieces;
    std::string rest;
    for (std::uint64_t id = 1; id <= 30; ++id) {
        const auto f = request("lookup", id);
        pieces.push_back(rest + f.substr(0, f.size() / 2));
        rest = f.substr(f.size() / 2);
    }
    pieces.push_back(rest);
    dribble(p, pieces, std::chrono::milliseconds(100));
    CHECK_FALSE(p.closed);
    CHECK(p.receive(30).size() == 30);
}
