// common/pool.hpp — one blocking job in libuv's worker pool (uv_queue_work),
// with its result handed back on the loop thread.
#pragma once

#include <uv.h>

#include <functional>

namespace peershare::common {

// Runs `work` on a pool thread, then `after` on the loop thread (always, also
// when the loop is closing: `after` must check that its owner still lives,
// e.g. through a weak_ptr). The job owns both functions until `after` returns.
// Returns libuv's error from uv_queue_work (0 on success; then neither runs).
int run_in_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> after);

}  // namespace peershare::common
