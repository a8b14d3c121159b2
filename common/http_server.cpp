// common/http_server.cpp — connections as small state machines:
//   reading → (a complete request) → answering → (respond) → writing → reading ...
//                                              → (open_stream) → streaming
// and closing from any of them. A connection is freed in its handle's close
// callback, never before, so no callback finds it gone.
#include "common/http_server.hpp"

#include <utility>

#include "proto/http.hpp"

namespace peershare::common {
namespace {

constexpr std::uint64_t kLingerMs = 2'000;   // reading out a closed connection's input

struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
    bool ends_response = false;
};

struct ShutdownRequest {
    uv_shutdown_t req{};
};

}  // namespace

struct HttpServer::Connection {
    enum class Phase { reading, answering, writing, streaming, closing };

    Connection(HttpServer& owner, ConnectionId connection_id, uv_tcp_t* handle, uv_loop_t* loop,
               proto::HttpReaderLimits reader_limits)
        : server(owner), id(connection_id), tcp(handle), deadline(loop), reader(reader_limits) {
        tcp->data = this;
        deadline.get()->data = this;
    }
    // Only stop() destroys a connection whose handle is still open: it closes unheard.
    ~Connection() {
        if (!tcp) return;
        tcp->data = nullptr;
        auto* handle = reinterpret_cast<uv_handle_t*>(tcp);
        if (!uv_is_closing(handle)) uv_close(handle, free_handle);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(tcp); }
    void arm(std::uint64_t ms) { uv_timer_start(deadline.get(), on_deadline, ms, 0); }

    HttpServer& server;
    ConnectionId id;
    uv_tcp_t* tcp;   // ours until its close callback
    Timer deadline;
    proto::HttpRequestReader reader;
    std::string stash;   // input the reader could not take yet
    Phase phase = Phase::reading;
    bool reading = false;
    bool eof = false;
    bool head_only = false;
    bool close_after = false;
    bool streamed = false;   // counted in streams_ until closed
};

HttpServer::HttpServer(uv_loop_t* loop, const Log& log, HttpServerLimits limits, Handlers handlers)
    : loop_(loop), log_(log), limits_(limits), handlers_(std::move(handlers)) {}

HttpServer::~HttpServer() { stop(); }

proto::Result<bool> HttpServer::start(const Endpoint& at) {
    auto listener = listen_tcp(loop_, at, on_connection, this);
    if (!listener) return listener.error();
    listener_ = std::make_unique<Tcp>(std::move(*listener));
    return true;
}

void HttpServer::stop() {
    listener_.reset();
    connections_.clear();
    streams_ = 0;
}

std::uint16_t HttpServer::port() const { return listener_ ? bound_port(*listener_) : 0; }

HttpServer::Connection* HttpServer::find(ConnectionId id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second.get();
}

void HttpServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<HttpServer*>(listener->data);
    if (!self) return;
    if (status < 0) {
        self->log_.warning("http accept failed: " + uv_error(status));
        return;
    }
    self->accept_one();
}

void HttpServer::accept_one() {
    Tcp client(loop_);
    if (uv_accept(listener_->stream(), client.stream()) != 0) return;
    if (connections_.size() >= limits_.max_connections) {
        ++counters_.refused_full;   // closed by client's destructor
        return;
    }
    ++counters_.accepted;
    uv_tcp_nodelay(client.get(), 1);
    const auto id = next_id_++;
    auto conn = std::make_unique<Connection>(*this, id, client.release(), loop_, limits_.reader);
    Connection& c = *conn;
    connections_.emplace(id, std::move(conn));
    c.arm(limits_.request_deadline_ms);
    start_reading(c);
}

void HttpServer::start_reading(Connection& c) {
    if (c.reading || c.eof || c.phase == Connection::Phase::closing) return;
    const int rc = uv_read_start(c.stream(), Loop::alloc_read_buffer, on_read);
    if (rc < 0) return close(c, false);
    c.reading = true;
}

void HttpServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Connection*>(stream->data);
    if (!c) return;
    if (c->phase == Connection::Phase::closing) {   // lingering: input is dropped until the client closes
        auto* handle = reinterpret_cast<uv_handle_t*>(stream);
        if (nread < 0 && !uv_is_closing(handle)) uv_close(handle, on_closed);
        return;
    }
    HttpServer& self = c->server;
    if (nread > 0) {
        self.take_input(*c, {buf->base, static_cast<std::size_t>(nread)});
    } else if (nread == UV_EOF) {
        c->eof = true;
        c->reading = false;
        uv_read_stop(stream);
        if (c->phase == Connection::Phase::streaming) return self.close(*c, false);
        if (c->phase == Connection::Phase::reading) self.next(*c);   // answer what was asked, then close
    } else if (nread < 0) {
        self.close(*c, false);
    }
}

void HttpServer::take_input(Connection& c, std::string_view bytes) {
    if (c.phase == Connection::Phase::streaming) return;   // a stream's client has nothing more to say
    if (c.stash.empty()) {
        const auto taken = c.reader.feed(bytes);
        bytes.remove_prefix(taken);
    }
    if (!bytes.empty() && !c.reader.error_status()) {
        c.stash.append(bytes);   // at most one read's worth: reading stops until it is taken
        uv_read_stop(c.stream());
        c.reading = false;
    }
    if (c.phase == Connection::Phase::reading) next(c);
}

void HttpServer::next(Connection& c) {
    while (c.phase == Connection::Phase::reading) {
        if (auto request = c.reader.pop()) {
            c.phase = Connection::Phase::answering;
            uv_timer_stop(c.deadline.get());
            c.close_after = !request->keep_alive;
            c.head_only = request->method == "HEAD";
            if (c.head_only) request->method = "GET";
            handlers_.request(c.id, *request);
            return;
        }
        if (const int status = c.reader.error_status()) {
            ++counters_.bad_requests;
            c.stash.clear();
            c.phase = Connection::Phase::answering;
            c.close_after = true;
            c.head_only = false;
            const std::string why = status == 431   ? "request headers are too large\n"
                                    : status == 413 ? "request body is too large\n"
                                    : status == 505 ? "only HTTP/1.0 and HTTP/1.1 are spoken here\n"
                                                    : "malformed request\n";
            respond(c.id, {status, "text/plain; charset=utf-8", why, {}});
            return;
        }
        if (!c.stash.empty()) {
            const auto taken = c.reader.feed(c.stash);
            c.stash.erase(0, taken);
            if (c.stash.empty()) start_reading(c);
            continue;
        }
        if (c.eof) return close(c, true);
        start_reading(c);
        return;
    }
}

bool HttpServer::respond(ConnectionId id, const HttpResponse& response) {
    Connection* c = find(id);
    if (!c || c->phase != Connection::Phase::answering) return false;
    std::string bytes = proto::response_head(response.status, response.body.size(), response.content_type,
                                             c->close_after, response.extra_headers);
    if (!c->head_only) bytes += response.body;
    c->phase = Connection::Phase::writing;
    c->arm(limits_.response_deadline_ms);
    return write(*c, std::move(bytes), true);
}

bool HttpServer::open_stream(ConnectionId id, std::string_view content_type, std::string_view first_bytes) {
    Connection* c = find(id);
    if (!c || c->phase != Connection::Phase::answering) return false;
    if (streams_ >= limits_.max_streams) {
        ++counters_.refused_full;
        c->close_after = true;
        respond(id, {503, "text/plain; charset=utf-8", "too many event-stream clients: try again later\n",
                     "Retry-After: 10\r\n"});
        return false;
    }
    c->phase = Connection::Phase::streaming;
    c->streamed = true;
    // A fixed kernel buffer too (no autotuning up to megabytes): a client
    // that stops reading holds at most about twice this plus our queue.
    int sndbuf = static_cast<int>(limits_.max_stream_buffer);
    uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(c->tcp), &sndbuf);
    c->close_after = true;
    c->stash.clear();
    ++streams_;
    std::string bytes = proto::response_head(200, std::nullopt, content_type, true, "Cache-Control: no-store\r\n");
    bytes += first_bytes;
    if (!write(*c, std::move(bytes), false)) return false;
    start_reading(*c);   // only to notice the client leaving
    return true;
}

bool HttpServer::send(ConnectionId id, std::string_view bytes) {
    Connection* c = find(id);
    if (!c || c->phase != Connection::Phase::streaming) return false;
    if (uv_stream_get_write_queue_size(c->stream()) + bytes.size() > limits_.max_stream_buffer) {
        ++counters_.streams_dropped;
        if (log_.enabled(LogLevel::debug)) log_.debug("http stream dropped: its client stopped reading");
        close(*c, false);
        return false;
    }
    return write(*c, std::string(bytes), false);
}

bool HttpServer::write(Connection& c, std::string bytes, bool ends_response) {
    auto request = std::make_unique<WriteRequest>();
    request->bytes = std::move(bytes);
    request->ends_response = ends_response;
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    const int rc = uv_write(&request->req, c.stream(), &buf, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<WriteRequest> owned(reinterpret_cast<WriteRequest*>(req));
        auto* conn = static_cast<Connection*>(req->handle->data);
        if (!conn || conn->phase == Connection::Phase::closing) return;
        if (status < 0) return conn->server.close(*conn, false);
        if (owned->ends_response) conn->server.on_written(*conn);
    });
    if (rc < 0) {
        close(c, false);
        return false;
    }
    request.release();   // libuv's until the write callback
    return true;
}

void HttpServer::on_written(Connection& c) {
    if (c.phase != Connection::Phase::writing) return;
    if (c.close_after) return close(c, true);
    c.phase = Connection::Phase::reading;
    c.arm(limits_.request_deadline_ms);   // the next request's deadline starts now
    next(c);
}

void HttpServer::on_deadline(uv_timer_t* timer) {
    auto* c = static_cast<Connection*>(timer->data);
    if (!c) return;
    if (c->phase == Connection::Phase::closing) {   // a graceful close that did not drain in time
        auto* handle = reinterpret_cast<uv_handle_t*>(c->tcp);
        if (!uv_is_closing(handle)) uv_close(handle, on_closed);
        return;
    }
    ++c->server.counters_.timed_out;
    c->server.close(*c, false);
}

void HttpServer::close(Connection& c, bool graceful) {
    if (c.phase == Connection::Phase::closing) return;
    c.phase = Connection::Phase::closing;
    auto* handle = reinterpret_cast<uv_handle_t*>(c.tcp);
    if (graceful) {
        // The FIN goes once queued output is written. Then we linger, reading
        // and dropping input until the client closes (or kLingerMs): closing
        // with unread input would send a reset that can destroy the response
        // before the client reads it (RFC 9112 §9.6).
        auto request = std::make_unique<ShutdownRequest>();
        const int rc = uv_shutdown(&request->req, c.stream(), [](uv_shutdown_t* req, int status) {
            std::unique_ptr<ShutdownRequest> owned(reinterpret_cast<ShutdownRequest*>(req));
            auto* h = reinterpret_cast<uv_handle_t*>(req->handle);
            auto* conn = static_cast<Connection*>(h->data);
            if (conn && !uv_is_closing(h) && (status < 0 || conn->eof)) uv_close(h, on_closed);
        });
        if (rc == 0) {
            request.release();
            if (!c.eof && !c.reading) {
                c.reading = uv_read_start(c.stream(), Loop::alloc_read_buffer, on_read) == 0;
            }
            c.arm(kLingerMs);
            return;
        }
    }
    uv_read_stop(c.stream());
    c.reading = false;
    uv_timer_stop(c.deadline.get());
    if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

void HttpServer::on_closed(uv_handle_t* handle) {
    auto* c = static_cast<Connection*>(handle->data);
    free_handle(handle);
    if (!c) return;
    c->tcp = nullptr;
    HttpServer& self = c->server;
    const auto id = c->id;
    const bool streamed = c->streamed;
    self.connections_.erase(id);
    if (streamed) {
        --self.streams_;
        if (self.handlers_.stream_closed) self.handlers_.stream_closed(id);
    }
}

}  // namespace peershare::common
