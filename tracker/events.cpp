// tracker/events.cpp — the event history and its followers.
#include "tracker/events.hpp"

#include <algorithm>
#include <cassert>
#include <ctime>

#include "proto/names.hpp"

namespace peershare::tracker {

void EventLog::record(std::string_view kind, std::string_view peer, std::string_view file,
                      std::string_view detail) {
    assert(std::find(kEventKinds.begin(), kEventKinds.end(), kind) != kEventKinds.end());
    // Bounded here so that every event in the history parses at trackerctl's end.
    proto::Event e{next_seq_++, static_cast<std::int64_t>(std::time(nullptr)), std::string(kind),
                   std::string(peer), std::string(file),
                   std::string(proto::truncate_utf8(detail, proto::kMaxEventDetail))};
    const auto level = kind == "looked_up" && !log_lookups_ ? common::LogLevel::debug
                                                            : common::LogLevel::info;
    if (log_.enabled(level)) {
        std::string line = std::string(kind) + " peer=" + e.peer;
        if (!e.file.empty()) line += " file=\"" + e.file + "\"";
        if (!e.detail.empty()) line += " (" + e.detail + ")";
        log_.write(level, line);
    }
    auto counted = counts_.find(kind);
    if (counted == counts_.end()) counted = counts_.emplace(std::string(kind), 0).first;
    ++counted->second;
    events_.push_back(e);
    if (events_.size() > history_) events_.pop_front();
    if (followers_.empty()) return;
    // A follower may unfollow while being called; iterate over a snapshot of tokens.
    std::vector<std::uint64_t> tokens;
    for (const auto& [token, f] : followers_) tokens.push_back(token);
    for (auto token : tokens) {
        auto it = followers_.find(token);
        if (it != followers_.end()) it->second(e);
    }
}

std::uint64_t EventLog::follow(Follower follower) {
    const auto token = next_token_++;
    followers_.emplace(token, std::move(follower));
    return token;
}

}  // namespace peershare::tracker
