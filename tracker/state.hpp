// tracker/state.hpp — the tracker's configuration and the state its servers
// share: the index, the event log, request counters and metrics. Owned by the
// loop thread.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "common/net.hpp"
#include "proto/limits.hpp"
#include "tracker/events.hpp"
#include "tracker/index.hpp"
#include "tracker/metrics.hpp"
#include "tracker/relay/admission.hpp"

namespace peershare::tracker {

struct Config {
    common::Endpoint listen{"0.0.0.0", 9999};
    std::string admin_socket = "/run/tracker/tracker.sock";
    std::uint32_t heartbeat_s = proto::kDefaultHeartbeatS;
    std::uint32_t peer_timeout_s = proto::kDefaultPeerTimeoutS;
    std::uint32_t request_timeout_s = proto::kDefaultRequestTimeoutS;   // per frame, from its first byte
    // Give out a hello's `advertise` instead of the address the peer connected
    // from. Off: an address the peer has not shown it answers at could send
    // every fetcher to ports of its choosing (reflection).
    bool trust_advertise = false;
    // Dial each peer back on hello (and when it asks) to learn whether
    // fetchers can reach it (tracker/reach_prober.hpp). Off: REACH shows "-".
    bool reach_check = true;
    std::size_t max_peers = proto::kDefaultMaxPeers;
    std::size_t max_files_per_peer = 10'000;
    std::optional<common::Endpoint> http_listen = common::Endpoint{"127.0.0.1", 9998};   // nothing: off
    std::size_t max_holders = Index::kDefaultMaxHolders;   // per lookup reply
    // The relay (tracker/relay/relay_server.hpp): off without an address.
    std::optional<common::Endpoint> relay_listen;
    RelayLimits relay_limits;
};

class RelayServer;

struct State {
    State(const Config& c, const common::Log& l)
        : config(c), log(l), index(c.max_files_per_peer, c.max_holders), events(l, proto::kEventHistory) {}

    // Counts a request answered, by message type: one of kRequestTypes (the
    // servers count only the types they answer, so clients cannot add keys).
    void count_request(std::string_view type) {
        assert(std::find(kRequestTypes.begin(), kRequestTypes.end(), type) != kRequestTypes.end());
        ++requests[std::string(type)];
    }

    const Config& config;
    const common::Log& log;
    Index index;
    EventLog events;
    std::map<std::string, std::uint64_t> requests;
    TrackerMetrics metrics;
    RelayServer* relay = nullptr;   // trackerd --relay-listen; owned by main
    std::time_t started = std::time(nullptr);
};

}  // namespace peershare::tracker
