// tracker/reverse/reverse_request.cpp — judging a reverse_request.
#include "tracker/reverse/reverse_request.hpp"

#include <cassert>
#include <string>

namespace peershare::tracker {

using proto::ErrorCode;

ReverseVerdict judge_reverse_request(bool reach_check, const Index& index, PeerId fetcher,
                                     const proto::ReverseRequest& request) {
    if (!reach_check) {
        return proto::Error{ErrorCode::unavailable,
                            "this tracker does not check reachability (trackerd --no-reach-check), "
                            "so it cannot tell whether a holder could connect back"};
    }
    const PeerRecord& f = *index.peer(fetcher);
    const auto holder = index.peer_by_name(request.holder);
    if (holder == fetcher) return proto::Error{ErrorCode::bad_request, "a peer cannot ask itself to connect back"};
    if (!holder) return proto::Error{ErrorCode::not_found, "no live peer named '" + request.holder + "'"};
    if (f.reachable != true) {
        const std::string why = f.reachable ? f.reach_reason : "its reachability check is still running";
        return proto::Error{ErrorCode::unavailable,
                            "you (" + f.name + ") are not reachable (" + why + "), so " + request.holder +
                                " cannot connect back; a relay (trackerd --relay-listen) would help"};
    }
    return ForwardConnectBack{*holder, proto::ConnectBack{request.token, f.address, f.port, f.name}};
}

bool ReverseRequestBudget::spend() {
    if (bucket_.wait_ns(kCost) > 0) return false;
    [[maybe_unused]] const auto granted = bucket_.take(kCost);
    assert(granted == kCost);
    return true;
}

}  // namespace peershare::tracker
