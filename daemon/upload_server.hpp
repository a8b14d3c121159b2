// daemon/upload_server.hpp — the peer's HTTP/1.1 data plane (docs/design.md,
// "Protocol layers"): GET/HEAD /v1/files/<id> with single byte ranges and GET
// /v1/files/<id>/pieces, for the files of the Catalog only, by content id.
// Also GET /v1/reach/<nonce>, the tracker's reachability check
// (proto/reach.hpp), answered with the proof under the peer key once
// set_reach_key was called. Owned by the loop thread; no locks. Opening, fstat and sendfile(2) run in
// libuv's worker pool.
//
// Every connection keeps bounded state (one request being parsed, a few
// pipelined ones, one response in flight). File bodies go out with sendfile(2)
// in chunks; a connection whose socket is full waits for it to drain without
// holding a worker, so one slow reader never stalls the others. Upload slots
// (max_uploads) answer 503 past the limit; an optional token bucket caps the
// bytes per second of all uploads together. Connections past max_connections
// are accepted and closed at once, so clients cannot take the descriptors
// the rest of the daemon needs (connection_cap).
//
// Reverse connections (issue 11, docs/protocol.md §11.10). An accepted
// connection whose first line is a connect-back preface (proto/reverse.hpp)
// is not served: its socket goes to the connect-back handler (the fetcher
// side: the fetch that expects the token speaks HTTP over it as a client). A
// malformed preface, bytes after it, or a token the handler refuses close the
// connection and are counted; everyone else is served as before. adopt()
// serves HTTP on a socket we dialled (the holder side of a connect-back)
// exactly as on an accepted one, without looking for a preface.
//
// The server must be destroyed (or stopped) before its loop; connections
// still finishing work in the pool free themselves when it completes.
#pragma once

#include <uv.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <memory>
#include <unordered_map>

#include "common/log.hpp"
#include "common/net.hpp"
#include "common/token_bucket.hpp"
#include "common/unique_fd.hpp"
#include "common/uv.hpp"
#include "daemon/catalog.hpp"
#include "daemon/metrics.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

struct UploadLimits {
    std::size_t max_uploads = 64;
    std::uint64_t max_rate = 0;   // bytes/s for all uploads together, 0 = unlimited
    // Deadlines, not idle timers (docs/robustness.md, "Faults"): a connection
    // waiting for a request must have received it whole within this many ms
    // of starting to wait (accept, or the end of the previous response), and
    // a body being sent must get each kStallProgressBytes out within it.
    std::uint64_t request_timeout_ms = 60'000;
    // Connections open at once (waiting, served or lingering). One more is
    // accepted and closed at once, so it neither waits in the backlog nor
    // takes the descriptors the control socket needs. peerd sets it from its
    // descriptor limit (connection_cap); at least 1.
    std::size_t max_connections = 1024;
};

// What an upload connection can hold: its socket, the dup sendfile(2) and the
// writability poll use, and the file it was last served (kept open for the
// next request on the connection).
inline constexpr std::uint64_t kDescriptorsPerConnection = 3;
// Descriptors kept from upload connections for the rest of peerd: the control
// socket and its clients, state.db and its journal, the tracker link,
// fetches' sockets and files, the loop's own (epoll, eventfd, signals), the
// listeners. Half the limit when the limit is below twice this.
inline constexpr std::uint64_t kReservedDescriptors = 256;

// The descriptors kept for the rest of peerd under a soft RLIMIT_NOFILE of
// `fd_limit`: min(kReservedDescriptors, fd_limit / 2).
constexpr std::uint64_t reserved_descriptors(std::uint64_t fd_limit) {
    return std::min(kReservedDescriptors, fd_limit / 2);
}

// The most upload connections a process whose soft RLIMIT_NOFILE
// (getrlimit(2)) is `fd_limit` may hold and keep the reserve: (fd_limit −
// reserved_descriptors) / kDescriptorsPerConnection, at least 1.
// E.g. 64 → 10, 1024 → 256, 20,000 → 6,581, 65,536 → 21,760.
constexpr std::size_t connection_cap(std::uint64_t fd_limit) {
    const auto cap = (fd_limit - reserved_descriptors(fd_limit)) / kDescriptorsPerConnection;
    return cap < 1 ? 1 : static_cast<std::size_t>(std::min<std::uint64_t>(cap, SIZE_MAX));
}

// Limits of the HTTP data plane, named once.
inline constexpr std::size_t kMaxRequestHeaderBytes = 8 * 1024;   // request line + headers; over: 431
inline constexpr std::size_t kMaxPipelinedRequests = 8;           // parsed ahead per connection
inline constexpr std::uint64_t kSendfileChunk = 4u << 20;         // bytes per sendfile(2) call
inline constexpr std::uint64_t kStallProgressBytes = 64u << 10;  // body bytes per request_timeout_ms, at least
inline constexpr std::uint64_t kLingerMs = 2'000;                 // draining input before a close
inline constexpr std::uint64_t kRateTickMs = 10;                  // token bucket refill period
inline constexpr std::uint64_t kMinRateGrant = 16u << 10;         // smallest rate-limited sendfile
static_assert(kMinRateGrant <= common::TokenBucket::kMinBurst, "a grant must fit in the bucket");

class UploadServer {
public:
    UploadServer(uv_loop_t* loop, Catalog& catalog, const common::Log& log, UploadLimits limits);
    ~UploadServer();
    UploadServer(const UploadServer&) = delete;
    UploadServer& operator=(const UploadServer&) = delete;

    proto::Result<bool> start(const common::Endpoint& listen);
    void stop();                          // closes listener and every connection
    std::uint16_t port() const;
    std::size_t active_uploads() const;   // responses with a body in progress
    void set_limits(UploadLimits);        // slots: new requests; rate: from now on
    const UploadLimits& limits() const { return limits_; }
    std::size_t connection_count() const { return connections_.size(); }
    // Connections closed at accept because max_connections were open.
    std::uint64_t connections_refused() const { return connections_refused_; }
    // File bytes sent to downloaders since start (bodies only, not headers).
    std::uint64_t bytes_uploaded() const { return bytes_uploaded_; }
    std::size_t max_uploads() const { return limits_.max_uploads; }
    // Counts rate-limit waits into `metrics` (which outlives this).
    void count_into(PeerMetrics* metrics) { metrics_ = metrics; }
    // The persisted peer key (64 hex digits) the reachability check's proof
    // is made with; until it is set, /v1/reach/ answers 404.
    void set_reach_key(std::string key) { reach_key_ = std::move(key); }

    // Serves HTTP on `connected`, a connected TCP socket we dialled (the
    // holder side of a connect-back or a relay circuit: PrefaceDialer's),
    // exactly as on an accepted one, counted against max_connections. Takes
    // it over; it is closed with the server. False (logged; the socket
    // closed) when libuv cannot take it (uv_tcp_open).
    bool adopt(common::UniqueFd connected);

    // Decides on a connect-back: `token` (32 hex digits) came in a preface
    // from `remote` (an IP address); the handler takes `socket` (connected,
    // non-blocking, nothing read past the preface) and returns true, or
    // returns false with `why` set (the socket is then closed).
    using ConnectBackFn =
        std::function<bool(const std::string& token, common::UniqueFd socket, const std::string& remote, std::string& why)>;
    void on_connect_back(ConnectBackFn handler) { connect_back_ = std::move(handler); }
    std::uint64_t connect_backs_taken() const { return connect_backs_taken_; }
    std::uint64_t connect_backs_refused() const { return connect_backs_refused_; }

private:
    class Connection;
    friend class Connection;

    static void on_connection(uv_stream_t* listener, int status);
    void accept_one();
    void serve_on(common::Tcp client, bool sniff);
    void count_connect_back(bool taken, const std::string& remote, const std::string& why);
    void forget(std::uint64_t connection_id);

    // Upload slots: taken before a body is prepared, given back when it ends.
    bool take_slot();
    void release_slot();

    // The rate limit over every upload (bucket_). grant() returns how many of
    // `want` bytes may go now (0: call wait_for_tokens); refund() returns unsent ones.
    std::uint64_t grant(std::uint64_t want);
    void refund(std::uint64_t unused);
    void wait_for_tokens(std::uint64_t connection_id);
    void serve_token_waiters();
    bool grant_ready() const;   // tokens for the smallest grant are there now

    uv_loop_t* loop_;
    Catalog& catalog_;
    const common::Log& log_;
    UploadLimits limits_;
    std::unique_ptr<common::Tcp> listener_;
    common::Timer rate_timer_;
    // Each Connection owns itself (it must outlive its handles' close callbacks
    // and its work in the pool); this map only finds them.
    std::unordered_map<std::uint64_t, Connection*> connections_;
    std::uint64_t next_connection_ = 1;
    std::uint64_t bytes_uploaded_ = 0;
    std::uint64_t connections_refused_ = 0;
    std::size_t slots_in_use_ = 0;
    common::TokenBucket bucket_;
    bool serving_waiters_ = false;
    std::deque<std::uint64_t> token_waiters_;   // connection ids, first come first served
    PeerMetrics* metrics_ = nullptr;
    std::string reach_key_;
    ConnectBackFn connect_back_;
    std::uint64_t connect_backs_taken_ = 0;
    std::uint64_t connect_backs_refused_ = 0;
};

}  // namespace peershare::peerd
