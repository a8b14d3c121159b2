// tracker/state.hpp — the tracker's configuration and the state its two
// servers share: the index, the event log and request counters. Owned by the
// loop thread.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <string>

#include "common/log.hpp"
#include "common/net.hpp"
#include "proto/limits.hpp"
#include "tracker/events.hpp"
#include "tracker/index.hpp"

namespace peershare::tracker {

struct Config {
    common::Endpoint listen{"0.0.0.0", 9999};
    std::string admin_socket = "/run/tracker/tracker.sock";
    std::uint32_t heartbeat_s = proto::kDefaultHeartbeatS;
    std::uint32_t peer_timeout_s = proto::kDefaultPeerTimeoutS;
    std::size_t max_peers = proto::kDefaultMaxPeers;
    std::size_t max_files_per_peer = 10'000;
    std::size_t max_holders = Index::kDefaultMaxHolders;   // per lookup reply
};

struct State {
    State(const Config& c, const common::Log& l)
        : config(c), log(l), index(c.max_files_per_peer, c.max_holders), events(l, proto::kEventHistory) {}

    // Counts by message type; unknown types from misbehaving clients cannot grow it without bound.
    void count_request(const std::string& type) {
        if (requests.size() < kMaxCountedTypes || requests.contains(type)) ++requests[type];
    }
    static constexpr std::size_t kMaxCountedTypes = 64;

    const Config& config;
    const common::Log& log;
    Index index;
    EventLog events;
    std::map<std::string, std::uint64_t> requests;
    std::time_t started = std::time(nullptr);
};

}  // namespace peershare::tracker
