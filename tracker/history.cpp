// tracker/history.cpp — the sample ring.
#include "tracker/history.hpp"

#include <cassert>

namespace peershare::tracker {

History::History(std::size_t capacity) : capacity_(capacity) { assert(capacity >= 2); }

void History::add(const Sample& s) {
    samples_.push_back(s);
    if (samples_.size() > capacity_) samples_.pop_front();
}

proto::json History::to_json(double period_s) const {
    proto::json list = proto::json::array();
    const Sample* before = nullptr;
    for (const auto& s : samples_) {
        double rate = 0;
        if (before && s.time_s > before->time_s && s.requests >= before->requests) {
            rate = static_cast<double>(s.requests - before->requests) / (s.time_s - before->time_s);
        }
        list.push_back({{"time", s.time_s},
                        {"peers", s.peers},
                        {"holdings", s.holdings},
                        {"requests", s.requests},
                        {"request_rate", rate}});
        before = &s;
    }
    return {{"period_s", period_s}, {"samples", std::move(list)}};
}

}  // namespace peershare::tracker
