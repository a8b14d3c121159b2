// tracker/reverse/reverse_request.hpp — the tracker's side of reverse
// connections (issue 11; docs/protocol.md §7.12). A fetcher F that cannot
// reach a holder H asks, over its session, `reverse_request{holder, token}`;
// the tracker sends H a `connect_back` carrying F's token, the address it
// gives out for F (the one its reachability check dialled and found
// answering) and F's upload port, and answers F `ok`. H then dials F and
// presents the token (proto/reverse.hpp). Pure: the verdict from the index
// and the configuration, no I/O; peer_server.cpp sends what it says.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>

#include "common/token_bucket.hpp"
#include "proto/errors.hpp"
#include "proto/messages.hpp"
#include "tracker/index.hpp"

namespace peershare::tracker {

// reverse_request outcomes, the label values of
// peershare_tracker_reverse_requests_total{result}: forwarded, or the error
// code of the refusal.
inline constexpr std::array<std::string_view, 5> kReverseResults{"forwarded", "unavailable", "not_found",
                                                                 "bad_request", "busy"};

// What to do with a reverse_request: send `message` down `holder`'s session
// and answer ok, or answer the error.
struct ForwardConnectBack {
    PeerId holder;
    proto::ConnectBack message;
};
using ReverseVerdict = std::variant<proto::Error, ForwardConnectBack>;

// Judges `request` from the live peer `fetcher` (the token is already
// valid: ReverseRequest::from_json checked it). Errors, checked in this order:
//   unavailable  reach_check is off (trackerd --no-reach-check): nobody knows
//                whether the holder could connect back;
//   bad_request  the fetcher names itself;
//   not_found    no live peer of that name;
//   unavailable  the fetcher's own last reachability check did not pass, or
//                is still running: the holder could not connect back (the
//                message gives the check's reason and says a relay would help).
ReverseVerdict judge_reverse_request(bool reach_check, const Index& index, PeerId fetcher,
                                     const proto::ReverseRequest& request);

// The per-session bound on reverse_requests: kPerSecond a second, the same in
// a burst (a fresh session may send that many at once). Past it: `busy`.
// A TokenBucket (common/token_bucket.hpp) whose tokens are requests, each
// worth kCost of the bucket's units so its minimum burst is kPerSecond requests.
class ReverseRequestBudget {
public:
    static constexpr std::uint64_t kPerSecond = 16;
    static constexpr std::uint64_t kCost = common::TokenBucket::kMinBurst / kPerSecond;

    // now: monotonic nanoseconds (uv_hrtime).
    explicit ReverseRequestBudget(common::TokenBucket::Clock now) : bucket_(kPerSecond * kCost, std::move(now)) {}

    // True, and one request spent, if the session may make one now.
    bool spend();

private:
    common::TokenBucket bucket_;
};

}  // namespace peershare::tracker
