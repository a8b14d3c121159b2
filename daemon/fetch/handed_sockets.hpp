// daemon/fetch/handed_sockets.hpp — the fetcher side of a reverse connection
// (issue 11, docs/protocol.md §11.10): a source whose connections are
// sockets handed over (connect-backs the upload server recognised) instead of
// ones curl dials. The engine's curl open-socket callback takes one from here
// and curl speaks HTTP over it.
//
// How curl is given a connected socket. The documented way
// (CURLOPT_SOCKOPTFUNCTION returning CURL_SOCKOPT_ALREADY_CONNECTED) is
// broken in Debian 12's libcurl 7.88.1: it calls connect(2) on the socket
// anyway, gets EISCONN and fails ("Immediate connect fail", curl issue
// #10626, fixed by PR #10648 in 8.0). So instead the open-socket callback
// returns a fresh socket and points curl's connect at a PendingConnectTarget
// (a loopback listener whose accept queue is full, so the connect stays in
// progress); when curl first asks to watch that socket (CURLMOPT_SOCKETFUNCTION,
// after its connect(2) returned EINPROGRESS) the engine dup2(2)s the handed
// socket onto the descriptor, and curl's check of the connect (writable,
// SO_ERROR 0) finds it connected. curl owns the descriptor from the start and
// closes it (CURLOPT_CLOSESOCKETFUNCTION's default).
//
// curl keeps the connection alive between requests (HTTP/1.1 keep-alive), so
// a reverse source asks one request at a time; when curl wants another
// connection (the holder closed the last one) none is here, and one more
// connect-back is asked for through AskFn — at most `max_asks` in all, each
// expected within kConnectBackWaitMs. Reusable by the relay's peer side.
//
// Pure apart from owning descriptors: the time is passed in (loop ms).
// Shared by the transfer that asks for connect-backs and the engine's source
// (std::shared_ptr); loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include <netinet/in.h>

#include "common/unique_fd.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

inline constexpr unsigned kMaxConnectBacks = 8;            // per source, over a whole fetch
inline constexpr std::uint64_t kConnectBackWaitMs = 5'000; // from an ask to its socket
inline constexpr std::uint64_t kConnectBackPollMs = 100;   // a request without a socket retries this soon
inline constexpr std::size_t kMaxHandedWaiting = 2;        // sockets kept waiting for curl, at most

class HandedSockets {
public:
    // Asks for one more connect-back (the tracker relays it to the holder);
    // its socket comes through give(), its failure through fail().
    using AskFn = std::function<void()>;
    // `wait_ms`: how long one ask may go without its socket (a relay source
    // waits longer: its dial alone may take kRelayDialDeadlineMs).
    explicit HandedSockets(AskFn ask, unsigned max_asks = kMaxConnectBacks,
                           std::uint64_t wait_ms = kConnectBackWaitMs)
        : ask_(std::move(ask)), max_asks_(max_asks), wait_ms_(wait_ms) {}

    // A connect-back for this source arrived. False (the socket is closed)
    // when kMaxHandedWaiting already wait or the source failed.
    bool give(common::UniqueFd socket);
    // The ask could not be made or was refused: the source is done, for `why`.
    void fail(std::string why);

    // curl wants a connection at `now_ms`: a socket (the caller owns it), or
    // -1 — and then one more connect-back is asked for unless one is pending
    // or max_asks were made.
    int take(std::uint64_t now_ms);

    // Why this source cannot go on, if it cannot: it failed, or every ask was
    // made and none is pending, or the pending one is older than
    // wait_ms at `now_ms`. nullopt: wait (kConnectBackPollMs).
    std::optional<std::string> problem(std::uint64_t now_ms) const;

    unsigned asks() const { return asks_; }
    unsigned received() const { return received_; }

private:
    AskFn ask_;
    unsigned max_asks_;
    std::uint64_t wait_ms_;
    unsigned asks_ = 0;
    unsigned received_ = 0;
    std::optional<std::uint64_t> pending_since_;   // an ask without its socket yet
    std::deque<common::UniqueFd> waiting_;
    std::optional<std::string> failed_;
};

// A loopback address where a TCP connect stays in progress: a listener with
// a backlog of 0 whose one queued connection (ours) is never accepted, so
// Linux drops every further SYN (tcp_conn_request, accept queue full). Owns
// both descriptors.
class PendingConnectTarget {
public:
    static proto::Result<PendingConnectTarget> open();
    const sockaddr_in& address() const { return address_; }

private:
    common::UniqueFd listener_, filler_;
    sockaddr_in address_{};
};

}  // namespace peershare::peerd
