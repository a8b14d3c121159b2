// tracker/history.hpp — the dashboard's last minutes: peers, holdings and the
// requests counter sampled at a fixed period into a ring, so a page opened
// now can draw the request rate and peer count since before it opened. Pure:
// the sampler (tracker/http_api.cpp) passes the time in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "proto/fields.hpp"

namespace peershare::tracker {

struct Sample {
    double time_s = 0;               // since the epoch
    std::uint64_t peers = 0;
    std::uint64_t holdings = 0;
    std::uint64_t requests = 0;      // the requests counter, all types (monotonic)
};

class History {
public:
    explicit History(std::size_t capacity);   // at least 2
    void add(const Sample& s);                // drops the oldest past capacity
    const std::deque<Sample>& samples() const { return samples_; }
    // {"period_s": p, "samples": [{"time", "peers", "holdings", "requests",
    // "request_rate"}...]} oldest first; request_rate is per second since the
    // sample before (0 for the first).
    proto::json to_json(double period_s) const;

private:
    std::size_t capacity_;
    std::deque<Sample> samples_;
};

}  // namespace peershare::tracker
