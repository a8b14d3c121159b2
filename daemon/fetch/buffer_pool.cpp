// daemon/fetch/buffer_pool.cpp — see buffer_pool.hpp.
#include "daemon/fetch/buffer_pool.hpp"

#include <cassert>
#include <new>

namespace peershare::peerd {

BufferPool::BufferPool(std::uint64_t budget) : budget_(budget) { assert(budget > 0); }

BufferPool::Buffer BufferPool::take(std::uint64_t size, unsigned held) {
    assert(size > 0);
    if (held > 0 && used_ + size > budget_) return {};
    used_ += size;
    if (auto it = kept_.find(size); it != kept_.end() && !it->second.empty()) {
        Buffer b = std::move(it->second.back());
        it->second.pop_back();
        kept_bytes_ -= size;
        return b;
    }
    const auto rounded = (size + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    auto* p = static_cast<std::uint8_t*>(std::aligned_alloc(kDirectAlign, rounded));
    if (!p) {
        used_ -= size;
        throw std::bad_alloc();
    }
    Buffer b;
    b.data.reset(p);
    b.size = size;
    return b;
}

void BufferPool::give_back(Buffer buffer) {
    if (!buffer) return;
    assert(used_ >= buffer.size);  // given back once, from this pool
    used_ -= buffer.size;
    kept_bytes_ += buffer.size;
    kept_[buffer.size].push_back(std::move(buffer));
    trim();
}

void BufferPool::set_budget(std::uint64_t budget) {
    assert(budget > 0);
    budget_ = budget;
    trim();
}

void BufferPool::trim() {
    for (auto it = kept_.begin(); it != kept_.end() && used_ + kept_bytes_ > budget_;) {
        while (!it->second.empty() && used_ + kept_bytes_ > budget_) {
            kept_bytes_ -= it->first;
            it->second.pop_back();
        }
        it = it->second.empty() ? kept_.erase(it) : std::next(it);
    }
}

}  // namespace peershare::peerd
