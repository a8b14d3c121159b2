// daemon/fetch/buffer_pool.hpp — the piece buffers of every running fetch,
// within one memory budget (docs/design.md, "Limits and back-pressure"). Buffers are aligned
// for O_DIRECT writes. A fetch that holds no buffer always gets one, so every
// running fetch makes progress however many there are; past the budget, a
// fetch that already holds some waits for its own to come back. Returned
// buffers are kept for reuse (large allocations would otherwise be mapped and
// faulted in afresh each time) as long as the budget has room for them.
//
// Loop thread only: buffers travel to the worker pool inside work items and
// are given back on the loop thread. Shared (std::shared_ptr) by Peer and
// every fetch engine, since an engine may outlive its Fetch and the Peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

namespace peershare::peerd {

inline constexpr std::size_t kDirectAlign = 4096;  // O_DIRECT's alignment (bytes)

class BufferPool {
public:
    struct Free {
        void operator()(std::uint8_t* p) const { std::free(p); }
    };
    // One buffer: `size` usable bytes at an address aligned to kDirectAlign.
    struct Buffer {
        std::unique_ptr<std::uint8_t, Free> data;
        std::uint64_t size = 0;
        explicit operator bool() const { return data != nullptr; }
        std::uint8_t* get() const { return data.get(); }
    };

    // `budget`: bytes of buffers handed out at once, > 0.
    explicit BufferPool(std::uint64_t budget);
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    // A buffer of `size` bytes for a client that holds `held` of them now;
    // empty when the budget is spent and `held` > 0. Throws std::bad_alloc
    // when the system has no memory left.
    Buffer take(std::uint64_t size, unsigned held);
    // Returns a buffer from take() (an empty one is ignored).
    void give_back(Buffer buffer);

    std::uint64_t used() const { return used_; }      // bytes handed out now
    std::uint64_t budget() const { return budget_; }
    // A new budget (SIGHUP); buffers out stay out.
    void set_budget(std::uint64_t budget);

private:
    void trim();  // frees kept buffers the budget has no room for

    std::uint64_t budget_;
    std::uint64_t used_ = 0;
    std::uint64_t kept_bytes_ = 0;
    std::map<std::uint64_t, std::vector<Buffer>> kept_;  // by size
};

}  // namespace peershare::peerd
