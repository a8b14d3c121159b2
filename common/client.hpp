// common/client.hpp — a blocking client for one framed session, on a private
// libuv loop: what trackerctl, peerctl and the tests use to talk to a daemon.
// Not for use inside a daemon's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "common/framed_connection.hpp"
#include "common/net.hpp"
#include "common/uv.hpp"
#include "proto/messages.hpp"

namespace peershare::common {

using Millis = std::chrono::milliseconds;

class Client {
public:
    // Connects; a missing or refused socket is ErrorCode::unavailable.
    static proto::Result<std::unique_ptr<Client>> connect_unix(const std::string& path, Millis timeout);
    static proto::Result<std::unique_ptr<Client>> connect_tcp(const Endpoint& at, Millis timeout);
    ~Client();

    // Answer the tracker's pings while waiting (what a live peer does).
    void answer_pings(bool on) { answer_pings_ = on; }

    void send_bytes(std::string bytes);
    template <class M>
    std::uint64_t send(const M& message) {
        const auto id = next_id_++;
        send_bytes(proto::make_frame(message, id));
        return id;
    }

    // Sends a request and waits for the reply with its id; an error frame
    // comes back as its Error.
    template <class Reply, class M>
    proto::Result<Reply> request(const M& message, Millis timeout) {
        auto reply = wait_reply(send(message), timeout);
        if (!reply) return reply.error();
        return proto::expect<Reply>(*reply);
    }

    proto::Result<proto::Envelope> wait_reply(std::uint64_t id, Millis timeout);
    // The next frame, whatever it is; timeout and close are errors.
    proto::Result<proto::Envelope> next(Millis timeout);
    bool closed() const { return closed_; }

private:
    Client() = default;
    proto::Result<bool> finish_connect(uv_connect_t& req, int rc, Millis timeout);
    bool run_until(const std::function<bool()>& done, Millis timeout);

    Loop loop_;
    std::unique_ptr<FramedConnection> conn_;
    std::deque<proto::Envelope> inbox_;
    std::uint64_t next_id_ = 1;
    bool closed_ = false;
    bool answer_pings_ = false;
    std::string close_reason_;
};

}  // namespace peershare::common
