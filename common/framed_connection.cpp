// common/framed_connection.cpp — reading, writing and closing a framed session.
#include "common/framed_connection.hpp"

#include <memory>
#include <utility>

#include "common/net.hpp"

namespace peershare::common {
namespace {

struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
};

struct ShutdownRequest {
    uv_shutdown_t req{};
};

}  // namespace

FramedConnection::~FramedConnection() {
    if (!stream_) return;
    stream_->data = nullptr;   // no handler runs for a connection destroyed by its owner
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(stream_))) {
        uv_close(reinterpret_cast<uv_handle_t*>(stream_), on_closed);
    }
}

void FramedConnection::start(FrameHandler on_frame, CloseHandler on_close) {
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
    const int rc = uv_read_start(stream_, Loop::alloc_read_buffer, on_read);
    if (rc < 0) abort("cannot read: " + uv_error(rc));
}

bool FramedConnection::send_bytes(std::string bytes) {
    if (closing_) return false;
    if (queued_bytes() + bytes.size() > kMaxQueuedBytes) {
        abort("peer is not reading its replies");
        return false;
    }
    if (batching_) {
        if (batch_.empty()) {
            batch_ = std::move(bytes);
        } else {
            batch_.append(bytes);
        }
        return true;
    }
    return write_now(std::move(bytes));
}

// Writes what one read's frames produced, as one write.
void FramedConnection::flush_batch() {
    batching_ = false;
    if (batch_.empty() || closing_) return;
    write_now(std::exchange(batch_, {}));
}

bool FramedConnection::write_now(std::string bytes) {
    if (counters_) counters_->bytes_out += bytes.size();
    auto request = std::make_unique<WriteRequest>();
    request->bytes = std::move(bytes);
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    const int rc = uv_write(&request->req, stream_, &buf, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<WriteRequest> owned(reinterpret_cast<WriteRequest*>(req));
        auto* self = static_cast<FramedConnection*>(req->handle->data);
        if (status < 0 && status != UV_ECANCELED && self) self->abort("write failed: " + uv_error(status));
    });
    if (rc < 0) {
        abort("write failed: " + uv_error(rc));
        return false;
    }
    request.release();   // owned by libuv until the write callback
    return true;
}

std::size_t FramedConnection::queued_bytes() const {
    return batch_.size() + (stream_ ? uv_stream_get_write_queue_size(stream_) : 0);
}

void FramedConnection::close(std::string reason) {
    if (closing_) return;
    flush_batch();   // the replies so far (an error, say) go out before the shutdown
    closing_ = true;
    close_reason_ = std::move(reason);
    stop_frame_timer();
    uv_read_stop(stream_);
    auto request = std::make_unique<ShutdownRequest>();
    // The shutdown completes once queued writes are flushed; then we close.
    const int rc = uv_shutdown(&request->req, stream_, [](uv_shutdown_t* req, int) {
        std::unique_ptr<ShutdownRequest> owned(reinterpret_cast<ShutdownRequest*>(req));
        auto* handle = reinterpret_cast<uv_handle_t*>(req->handle);
        if (!uv_is_closing(handle)) uv_close(handle, on_closed);
    });
    if (rc < 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(stream_), on_closed);
        return;
    }
    request.release();
}

void FramedConnection::abort(std::string reason) {
    stop_frame_timer();
    auto* handle = reinterpret_cast<uv_handle_t*>(stream_);
    batching_ = false;
    batch_.clear();
    if (!closing_) close_reason_ = std::move(reason);
    closing_ = true;
    if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

void FramedConnection::on_closed(uv_handle_t* handle) {
    auto* self = static_cast<FramedConnection*>(handle->data);
    free_handle(handle);
    if (!self) return;
    self->stream_ = nullptr;
    if (self->on_close_) {
        auto on_close = std::move(self->on_close_);
        const std::string reason = self->close_reason_;   // the handler may destroy self
        on_close(reason);
    }
}

void FramedConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<FramedConnection*>(stream->data);
    if (!self || self->closing_) return;
    if (nread == UV_EOF) {
        self->abort("closed by peer");
    } else if (nread < 0) {
        self->abort("read failed: " + uv_error(static_cast<int>(nread)));
    } else if (nread > 0) {
        if (self->counters_) self->counters_->bytes_in += static_cast<std::uint64_t>(nread);
        self->batching_ = true;
        self->handle_bytes(buf->base, static_cast<std::size_t>(nread));
        self->flush_batch();
        if (!self->closing_) self->watch_frame_deadline();
    }
}

void FramedConnection::watch_frame_deadline() {
    if (frame_deadline_ms_ == 0) return;
    if (decoder_.buffered() == 0) return stop_frame_timer();
    if (!frame_timer_) {
        frame_timer_ = std::make_unique<Timer>(stream_->loop);
        frame_timer_->get()->data = this;
    }
    // The frame held now began in this read if one completed in it: its own
    // deadline starts. Else it is the same frame as before, and more of its
    // bytes do not move its deadline.
    if (completed_in_read_ == 0 && uv_is_active(frame_timer_->handle())) return;
    uv_timer_start(
        frame_timer_->get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<FramedConnection*>(t->data);
            if (!self || self->closing_) return;
            self->abort("frame not complete within " + std::to_string(self->frame_deadline_ms_) + " ms");
        },
        frame_deadline_ms_, 0);
}

void FramedConnection::stop_frame_timer() {
    if (frame_timer_) uv_timer_stop(frame_timer_->get());
}

void FramedConnection::handle_bytes(const char* data, std::size_t size) {
    auto payloads = decoder_.feed({data, size});
    completed_in_read_ = payloads.size();
    for (auto& payload : payloads) {
        auto envelope = proto::parse_envelope(payload);
        if (!envelope) {
            if (counters_) ++counters_->bad_envelope;
            send_error(proto::ErrorCode::bad_request, envelope.error().message);
            close("malformed frame: " + envelope.error().message);
            return;
        }
        on_frame_(std::move(*envelope));
        if (closing_) return;
    }
    if (const auto& error = decoder_.error()) {
        if (counters_) ++counters_->bad_framing;
        send_error(proto::ErrorCode::bad_request, error->message);
        close(error->message);
    }
}

namespace {

// The IP `get` (uv_tcp_getpeername or uv_tcp_getsockname) gives for a TCP stream; "" otherwise.
std::string tcp_address(const uv_stream_t* stream, int (*get)(const uv_tcp_t*, sockaddr*, int*)) {
    if (!stream || stream->type != UV_TCP) return {};
    sockaddr_storage addr{};
    int len = sizeof addr;
    if (get(reinterpret_cast<const uv_tcp_t*>(stream), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
    return ip_to_string(addr);
}

}  // namespace

std::string FramedConnection::remote_address() const { return tcp_address(stream_, uv_tcp_getpeername); }
std::string FramedConnection::local_address() const { return tcp_address(stream_, uv_tcp_getsockname); }

}  // namespace peershare::common
