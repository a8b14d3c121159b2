// common/uv.cpp — handle memory and the per-loop read buffer.
#include "common/uv.hpp"

namespace peershare::common {
namespace {

template <class H>
void free_as(uv_handle_t* handle) {
    std::unique_ptr<H> owned(reinterpret_cast<H*>(handle));
}

}  // namespace

void free_handle(uv_handle_t* handle) {
    switch (handle->type) {
        case UV_TCP: free_as<uv_tcp_t>(handle); break;
        case UV_NAMED_PIPE: free_as<uv_pipe_t>(handle); break;
        case UV_TIMER: free_as<uv_timer_t>(handle); break;
        case UV_SIGNAL: free_as<uv_signal_t>(handle); break;
        case UV_IDLE: free_as<uv_idle_t>(handle); break;
        case UV_POLL: free_as<uv_poll_t>(handle); break;
        default: break;   // not a type we allocate; never reached
    }
}

Loop::Loop() : read_buffer_(std::make_unique<std::array<char, kReadBufferSize>>()) {
    uv_loop_init(&loop_);
    loop_.data = this;
}

Loop::~Loop() {
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, free_handle);
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
}

void Loop::alloc_read_buffer(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
    auto* self = static_cast<Loop*>(handle->loop->data);
    *buf = uv_buf_init(self->read_buffer_->data(), kReadBufferSize);
}

std::string uv_error(int status) { return uv_strerror(status); }

}  // namespace peershare::common
