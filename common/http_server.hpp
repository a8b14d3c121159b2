// common/http_server.hpp — a small HTTP/1.1 server on the loop for the
// daemons' read-mostly endpoints (trackerd's dashboard and API, peerd's and
// trackerd's /metrics), apart from peerd's file server. Owned by the loop
// thread; no locks.
//
// Bounded by construction: at most max_connections (past it a connection is
// closed at once); one request answered at a time per connection, a few
// parsed ahead (proto::HttpRequestReader's limits: header bytes, body bytes);
// a request must be complete within request_deadline_ms of the connection
// opening or of the previous response (a deadline, not an idle timer, so a
// client that trickles one byte a second is still closed); a response must be
// written within response_deadline_ms; a stream (Server-Sent Events) whose
// client stops reading is dropped once max_stream_buffer bytes wait unsent;
// at most max_streams streams at once, so streams alone cannot fill the
// listener (a stream past it is answered 503 and closed).
//
// The owner answers every request it is handed, now or later, with respond()
// or open_stream(), by the connection's id; an id whose connection has closed
// is simply answered by nobody (those calls return false).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/log.hpp"
#include "common/net.hpp"
#include "common/uv.hpp"
#include "proto/errors.hpp"
#include "proto/http_request.hpp"

namespace peershare::common {

struct HttpResponse {
    int status = 200;
    std::string content_type;      // empty: no Content-Type
    std::string body;
    std::string extra_headers;     // further header lines, each ending in CRLF
};

struct HttpServerLimits {
    std::size_t max_connections = 512;
    std::size_t max_streams = 256;   // of those, streams at most: the rest stay for requests (503 past it)
    std::uint64_t request_deadline_ms = 10'000;
    std::uint64_t response_deadline_ms = 30'000;
    std::size_t max_stream_buffer = 64 * 1024;   // and the kernel's send buffer of a stream
    proto::HttpReaderLimits reader;
};

// What went wrong with clients, for /metrics. Monotonic.
struct HttpServerCounters {
    std::uint64_t accepted = 0;
    std::uint64_t refused_full = 0;     // over max_connections, or a stream over max_streams
    std::uint64_t timed_out = 0;        // request or response deadline passed
    std::uint64_t bad_requests = 0;     // answered 400, 413, 431 or 505 and closed
    std::uint64_t streams_dropped = 0;  // stream buffer limit reached
};

class HttpServer {
public:
    using ConnectionId = std::uint64_t;
    struct Handlers {
        // A complete request. HEAD is handed over as GET; the body is left out
        // of the answer.
        std::function<void(ConnectionId, const proto::HttpRequest&)> request;
        // A stream's connection has closed (client gone, dropped, deadline);
        // not called by stop().
        std::function<void(ConnectionId)> stream_closed;
    };

    HttpServer(uv_loop_t* loop, const Log& log, HttpServerLimits limits, Handlers handlers);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    proto::Result<bool> start(const Endpoint& at);
    void stop();   // closes the listener and every connection at once
    std::uint16_t port() const;

    // Answers the request being handled on `id`; false if that connection is gone.
    bool respond(ConnectionId id, const HttpResponse& response);
    // Answers it with 200 and a body that goes on until either side closes
    // (Connection: close, no Content-Length), starting with `first_bytes`; or,
    // with max_streams open already, with 503 (counted as refused_full), and
    // returns false.
    bool open_stream(ConnectionId id, std::string_view content_type, std::string_view first_bytes);
    // More bytes on a stream; false if it is gone, or dropped now because its
    // client has left max_stream_buffer bytes unread.
    bool send(ConnectionId id, std::string_view bytes);

    std::size_t connection_count() const { return connections_.size(); }
    std::size_t stream_count() const { return streams_; }
    const HttpServerCounters& counters() const { return counters_; }

private:
    struct Connection;

    static void on_connection(uv_stream_t* listener, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_deadline(uv_timer_t* timer);
    static void on_closed(uv_handle_t* handle);
    void accept_one();
    void take_input(Connection& c, std::string_view bytes);
    void next(Connection& c);
    void start_reading(Connection& c);
    bool write(Connection& c, std::string bytes, bool ends_response);
    void on_written(Connection& c);
    void close(Connection& c, bool graceful);
    Connection* find(ConnectionId id);

    uv_loop_t* loop_;
    const Log& log_;
    HttpServerLimits limits_;
    Handlers handlers_;
    std::unique_ptr<Tcp> listener_;
    ConnectionId next_id_ = 1;
    std::unordered_map<ConnectionId, std::unique_ptr<Connection>> connections_;
    std::size_t streams_ = 0;
    HttpServerCounters counters_;
};

}  // namespace peershare::common
