// daemon/reverse/connect_back.hpp — the holder side of a reverse connection
// (issue 11, docs/protocol.md §7.11, §11.10): dial an address, present a
// token in the connect-back preface (proto/reverse.hpp), then serve HTTP on
// that socket exactly as on an accepted upload connection
// (UploadServer::adopt). The dial itself is PrefaceDialer's (no answer is
// awaited). Loop thread only.
//
// Each dial has one deadline for the connect and the preface together
// (kConnectBackDeadlineMs), not an idle timer. At most kMaxConnectBackDials
// run at once; past that a dial is refused at once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/log.hpp"
#include "common/net.hpp"
#include "daemon/reverse/preface_dialer.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

class UploadServer;

inline constexpr std::uint64_t kConnectBackDeadlineMs = 5'000;   // connect + preface written
inline constexpr std::size_t kMaxConnectBackDials = 16;

class ConnectBackDialer {
public:
    // ok, or why not in words ("connection refused at 127.0.0.1:4000").
    using DoneFn = std::function<void(bool ok, const std::string& why)>;

    // `server` serves the connections once the preface is written; it must
    // outlive this dialer.
    // Destroyed, it abandons dials in flight (their sockets are closed, no `done`).
    ConnectBackDialer(uv_loop_t* loop, const common::Log& log, UploadServer& server);

    // Dials `to` (an IP literal and port: the address the tracker verified,
    // never one a peer chose), writes the preface of `token` (32 lowercase hex
    // digits) and hands the connection to the upload server. Errors at once
    // (bad_request: not an IP address, or a refused one; busy: too many dials
    // running); otherwise `done` (may be empty) is called once, later.
    proto::Result<bool> dial(const common::Endpoint& to, const std::string& token, DoneFn done);
    std::size_t in_flight() const { return dialer_.in_flight(); }

private:
    const common::Log& log_;
    UploadServer& server_;
    PrefaceDialer dialer_;
};

}  // namespace peershare::peerd
