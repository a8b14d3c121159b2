// daemon/reverse/reverse_connections.hpp — both sides of reverse connections
// in peerd (issue 11, docs/protocol.md §7.12, §11.10), over the tracker
// session:
//
// - Fetcher side: source() makes a reverse source for a holder the tracker
//   found unreachable. Each time its engine wants a connection, the source
//   asks: a fresh token is recorded (ExpectedConnectBacks) and then sent in
//   a `reverse_request`; the tracker passes it to the holder, which dials our
//   upload port and presents the token; the upload server's connect-back
//   handler (installed here) hands the socket to the source. A refused ask
//   ends the source with "cannot have HOLDER connect back: <why>"; a holder
//   that never connects back ends it after kConnectBackWaitMs
//   (HandedSockets::problem).
// - Holder side: a `connect_back` from the tracker is dialled
//   (ConnectBackDialer: an IP literal, not a refused address, within 5 s) and
//   the connection served as an upload connection; a failure is one log line.
//
// Loop thread only. Must be destroyed before the upload server and the
// tracker link it was given (it clears the upload server's handler).
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "common/log.hpp"
#include "daemon/fetch/handed_sockets.hpp"
#include "daemon/reverse/connect_back.hpp"
#include "daemon/reverse/expected_connect_backs.hpp"
#include "daemon/tracker_link.hpp"
#include "daemon/upload_server.hpp"
#include "proto/messages.hpp"

namespace peershare::peerd {

class ReverseConnections {
public:
    // Installs the connect-back handler on `uploads` and the connect_back
    // callback on `link`; both must outlive this.
    ReverseConnections(uv_loop_t* loop, const common::Log& log, UploadServer& uploads, TrackerLink& link);
    ~ReverseConnections();
    ReverseConnections(const ReverseConnections&) = delete;
    ReverseConnections& operator=(const ReverseConnections&) = delete;

    // A reverse source for `holder` (a peer name) serving content
    // `content_id`: the engine's Source::handed with Via::reverse. Nothing is
    // asked until the engine takes a connection from it. Shared with the
    // engine; may outlive this (it then asks nothing and fails).
    std::shared_ptr<HandedSockets> source(const std::string& holder, const std::string& content_id);

    // The holder side: dials the fetcher the tracker named.
    void connect_back(const proto::ConnectBack& m);

    std::size_t expected() const { return expected_.size(); }

private:
    void ask(const std::weak_ptr<HandedSockets>& source, const std::string& holder, const std::string& content_id);

    uv_loop_t* loop_;
    const common::Log& log_;
    UploadServer& uploads_;
    TrackerLink& link_;
    ConnectBackDialer dialer_;
    ExpectedConnectBacks expected_;
    // Expires with this: asks and replies that come later do nothing.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace peershare::peerd
