// tracker/events.hpp — what operators see happen: peers joining, publishing,
// looking up, fetching, leaving. Each event is logged, kept in a bounded
// history for `trackerctl events`, and pushed to every follower.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "proto/messages.hpp"

namespace peershare::tracker {

// Every kind record() is given (peer_server.cpp), so /metrics shows each from the start.
inline constexpr std::array<std::string_view, 8> kEventKinds{"joined",    "left",        "looked_up", "published",
                                                             "unpublished", "fetched",  "relayed",   "reverse"};

class EventLog {
public:
    using Follower = std::function<void(const proto::Event&)>;

    EventLog(const common::Log& log, std::size_t history) : log_(log), history_(history) {}

    void record(std::string_view kind, std::string_view peer, std::string_view file = {},
                std::string_view detail = {});
    const std::deque<proto::Event>& history() const { return events_; }
    // Events recorded since start, by kind (the kinds are the tracker's own, a handful).
    const std::map<std::string, std::uint64_t, std::less<>>& counts() const { return counts_; }

    // Followers are called for each new event until unfollowed.
    std::uint64_t follow(Follower follower);
    void unfollow(std::uint64_t token) { followers_.erase(token); }

    // Lookups are far too frequent to log each at info level.
    void set_log_lookups(bool on) { log_lookups_ = on; }

private:
    const common::Log& log_;
    std::size_t history_;
    std::deque<proto::Event> events_;
    std::uint64_t next_seq_ = 1;
    std::uint64_t next_token_ = 1;
    std::map<std::uint64_t, Follower> followers_;
    std::map<std::string, std::uint64_t, std::less<>> counts_;
    bool log_lookups_ = false;
};

}  // namespace peershare::tracker
