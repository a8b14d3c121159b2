// common/framed_connection.hpp — one session over a stream (TCP or Unix socket)
// in the framing of docs/design.md, "Protocol layers". Owned by the loop
// thread.
//
// Lifecycle: start() begins reading; every complete frame is parsed into an
// Envelope and handed to the frame handler. A malformed or oversized frame is
// answered with a bad_request error and the connection closes. The close
// handler runs exactly once, from libuv's close callback (never from inside
// a frame handler), so the owner may destroy the connection there.
//
// Writes: what is sent while the frames of one read are handled (the replies
// to a pipelined batch of requests) is gathered and written once, after the
// batch, in one uv_write: one syscall instead of one per reply. Anything sent
// outside a read is written at once. Order is kept either way.
//
// Frame deadline (set_frame_deadline): a server bounds how long a frame may
// take to arrive, counted from its first byte, not from the last one (a
// client dribbling one byte a second must not hold the connection forever).
// The timer starts when a read leaves part of a frame buffered (restarting
// when that part is of a new frame), and stops when no part is left; more
// bytes of the same frame do not re-arm it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/uv.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"

namespace peershare::common {

// What a server's sessions moved and refused, for its metrics. The owner
// keeps one for all its sessions; it must outlive them.
struct TrafficCounters {
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t bad_framing = 0;     // oversized or garbled length prefix
    std::uint64_t bad_envelope = 0;    // a frame that is not a JSON object with a type
};

class FramedConnection {
public:
    using FrameHandler = std::function<void(proto::Envelope&&)>;
    using CloseHandler = std::function<void(const std::string& reason)>;

    // Output a connection may queue before it is considered stuck and closed:
    // one slow reader must not grow our memory without bound.
    static constexpr std::size_t kMaxQueuedBytes = 8u << 20;

    template <class H>
    explicit FramedConnection(Handle<H>&& stream, std::size_t max_frame = proto::kMaxFrame)
        : stream_(reinterpret_cast<uv_stream_t*>(stream.release())), decoder_(max_frame) {
        stream_->data = this;
    }
    ~FramedConnection();
    FramedConnection(const FramedConnection&) = delete;
    FramedConnection& operator=(const FramedConnection&) = delete;

    void start(FrameHandler on_frame, CloseHandler on_close);
    // A frame that has not arrived whole within `ms` of its first byte closes
    // the connection ("frame not complete within N ms"). 0: no deadline (the default).
    void set_frame_deadline(std::uint64_t ms) { frame_deadline_ms_ = ms; }

    // Queues framed bytes. Returns false if the connection is closing.
    bool send_bytes(std::string bytes);
    template <class M>
    bool send(const M& message, std::optional<std::uint64_t> id = std::nullopt) {
        return send_bytes(proto::make_frame(message, id));
    }
    bool send_error(proto::ErrorCode code, std::string_view message,
                    std::optional<std::uint64_t> id = std::nullopt) {
        return send_bytes(proto::make_error_frame(code, message, id));
    }

    // Stops reading and closes once queued output is written.
    void close(std::string reason);
    // Closes at once, dropping queued output.
    void abort(std::string reason);

    // Counts this session's bytes and refused frames into `counters` from now on.
    void count_into(TrafficCounters* counters) { counters_ = counters; }

    bool closing() const { return closing_; }
    std::size_t queued_bytes() const;
    uv_stream_t* stream() const { return stream_; }
    // The remote IP as text ("127.0.0.1", "::1"); empty for Unix sockets.
    std::string remote_address() const;
    // The local IP the peer reached us at, as text; empty for Unix sockets.
    std::string local_address() const;

private:
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_closed(uv_handle_t* handle);
    void handle_bytes(const char* data, std::size_t size);
    bool write_now(std::string bytes);
    void flush_batch();
    void watch_frame_deadline();   // after each read: start or stop the timer
    void stop_frame_timer();

    uv_stream_t* stream_;   // freed in on_closed
    proto::FrameDecoder decoder_;
    FrameHandler on_frame_;
    CloseHandler on_close_;
    std::string close_reason_;
    bool closing_ = false;
    bool batching_ = false;   // inside on_read: sends go to batch_
    std::string batch_;       // replies gathered during one read, not yet written
    TrafficCounters* counters_ = nullptr;
    std::uint64_t frame_deadline_ms_ = 0;
    std::unique_ptr<Timer> frame_timer_;   // running while a frame is part-way in
    std::size_t completed_in_read_ = 0;    // frames the last read completed
};

}  // namespace peershare::common
