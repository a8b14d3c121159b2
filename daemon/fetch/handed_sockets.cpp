// daemon/fetch/handed_sockets.cpp — see handed_sockets.hpp.
#include "daemon/fetch/handed_sockets.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace peershare::peerd {

bool HandedSockets::give(common::UniqueFd socket) {
    assert(socket);
    if (failed_ || waiting_.size() >= kMaxHandedWaiting) return false;
    ++received_;
    pending_since_.reset();
    waiting_.push_back(std::move(socket));
    return true;
}

void HandedSockets::fail(std::string why) {
    failed_ = std::move(why);
    pending_since_.reset();
    waiting_.clear();
}

int HandedSockets::take(std::uint64_t now_ms) {
    if (waiting_.empty() && !failed_ && !pending_since_ && asks_ < max_asks_) {
        ++asks_;
        pending_since_ = now_ms;
        if (ask_) ask_();   // may call give() or fail() at once
    }
    if (waiting_.empty()) return -1;
    const int fd = waiting_.front().release();
    waiting_.pop_front();
    return fd;
}

std::optional<std::string> HandedSockets::problem(std::uint64_t now_ms) const {
    if (failed_) return failed_;
    if (!waiting_.empty()) return std::nullopt;
    if (pending_since_) {
        if (now_ms - *pending_since_ < wait_ms_) return std::nullopt;
        return "the holder did not connect back within " + std::to_string(wait_ms_ / 1000) + " s";
    }
    if (asks_ >= max_asks_) return "the holder connected back " + std::to_string(received_) + " times, no more asked";
    return std::nullopt;
}

proto::Result<PendingConnectTarget> PendingConnectTarget::open() {
    const auto failed = [](const char* what) {
        return proto::Error{proto::ErrorCode::internal, std::string("cannot make a pending-connect target: ") + what +
                                                            ": " + std::strerror(errno)};
    };
    PendingConnectTarget t;
    t.listener_ = common::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!t.listener_) return failed("socket");
    t.address_.sin_family = AF_INET;
    t.address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(t.listener_.get(), reinterpret_cast<const sockaddr*>(&t.address_), sizeof t.address_) != 0)
        return failed("bind");
    if (::listen(t.listener_.get(), 0) != 0) return failed("listen");
    socklen_t len = sizeof t.address_;
    if (::getsockname(t.listener_.get(), reinterpret_cast<sockaddr*>(&t.address_), &len) != 0)
        return failed("getsockname");
    // Blocking: on loopback the handshake completes at once, into the queue.
    t.filler_ = common::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!t.filler_) return failed("socket");
    if (::connect(t.filler_.get(), reinterpret_cast<const sockaddr*>(&t.address_), sizeof t.address_) != 0)
        return failed("connect");
    return t;
}

}  // namespace peershare::peerd
