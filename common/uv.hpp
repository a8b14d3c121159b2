// common/uv.hpp — RAII over libuv. A Handle<H> owns one initialized handle;
// its memory is heap-allocated and freed in libuv's close callback, never
// before, so an owner may go away while the loop still holds the handle.
// A Loop owns a uv_loop_t and the one read buffer every stream on it shares
// (reads are consumed synchronously, so one buffer per loop is enough and
// ten thousand idle connections cost no buffers).
#pragma once

#include <uv.h>

#include <array>
#include <memory>
#include <string>
#include <utility>

namespace peershare::common {

// Frees a handle's memory by its type; the close callback of every handle we own.
void free_handle(uv_handle_t* handle);

template <class H>
class Handle {
public:
    explicit Handle(uv_loop_t* loop) : h_(std::make_unique<H>().release()) { init(loop); }
    ~Handle() { close(); }
    Handle(Handle&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            close();
            h_ = std::exchange(other.h_, nullptr);
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    H* get() const { return h_; }
    uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
    uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(h_); }

    // Gives the handle away: the new owner must close it with free_handle.
    H* release() { return std::exchange(h_, nullptr); }

    void close() {
        if (!h_) return;
        h_->data = nullptr;   // callbacks already queued find no owner
        uv_close(handle(), free_handle);
        h_ = nullptr;
    }

private:
    void init(uv_loop_t* loop);
    H* h_;
};

template <> inline void Handle<uv_tcp_t>::init(uv_loop_t* loop) { uv_tcp_init(loop, h_); }
template <> inline void Handle<uv_pipe_t>::init(uv_loop_t* loop) { uv_pipe_init(loop, h_, 0); }
template <> inline void Handle<uv_timer_t>::init(uv_loop_t* loop) { uv_timer_init(loop, h_); }
template <> inline void Handle<uv_signal_t>::init(uv_loop_t* loop) { uv_signal_init(loop, h_); }
template <> inline void Handle<uv_idle_t>::init(uv_loop_t* loop) { uv_idle_init(loop, h_); }

using Tcp = Handle<uv_tcp_t>;
using Pipe = Handle<uv_pipe_t>;
using Timer = Handle<uv_timer_t>;
using Signal = Handle<uv_signal_t>;

inline constexpr std::size_t kReadBufferSize = 64 * 1024;

class Loop {
public:
    Loop();
    ~Loop();   // closes whatever handles remain and runs the loop until they are freed
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    uv_loop_t* get() { return &loop_; }
    int run(uv_run_mode mode = UV_RUN_DEFAULT) { return uv_run(&loop_, mode); }
    void stop() { uv_stop(&loop_); }

    // The libuv alloc callback for streams on a Loop.
    static void alloc_read_buffer(uv_handle_t* handle, std::size_t, uv_buf_t* buf);

private:
    uv_loop_t loop_{};
    std::unique_ptr<std::array<char, kReadBufferSize>> read_buffer_;
};

// Words for a libuv error number.
std::string uv_error(int status);

}  // namespace peershare::common
