// common/pool.cpp — see pool.hpp.
#include "common/pool.hpp"

#include <memory>

namespace peershare::common {
namespace {

struct PoolJob {
    uv_work_t req{};
    std::function<void()> work;
    std::function<void()> after;
};

}  // namespace

int run_in_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> after) {
    auto job = std::make_unique<PoolJob>();
    job->work = std::move(work);
    job->after = std::move(after);
    job->req.data = job.get();
    const int rc = uv_queue_work(
        loop, &job->req, [](uv_work_t* w) { static_cast<PoolJob*>(w->data)->work(); },
        [](uv_work_t* w, int) {
            std::unique_ptr<PoolJob> done(static_cast<PoolJob*>(w->data));
            done->after();
        });
    if (rc == 0) job.release();   // freed by the after callback
    return rc;
}

}  // namespace peershare::common
