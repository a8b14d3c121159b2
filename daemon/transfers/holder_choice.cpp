// daemon/transfers/holder_choice.cpp — see holder_choice.hpp.
#include "daemon/transfers/holder_choice.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <set>

#include "common/net.hpp"

namespace peershare::peerd {
namespace {

constexpr std::size_t kNamedHolders = 3;   // named in the message; the rest are counted

bool all_unreachable(const std::vector<proto::Holder>& holders) {
    return std::all_of(holders.begin(), holders.end(), [](const proto::Holder& h) { return h.reachable == false; });
}

bool passes(const proto::Holder& h, const HolderFilter& filter) {
    return h.peer != filter.self && (filter.from.empty() || h.peer == filter.from) &&
           h.id.starts_with(filter.id_prefix) && (filter.content_id.empty() || h.id == filter.content_id);
}

bool proven_unreachable(const proto::Holder& h) { return h.reachable == false; }

}  // namespace

HolderChoice choose_holders(const std::string& name, const std::vector<proto::Holder>& all,
                            const HolderFilter& filter, const OwnReach& own) {
    std::vector<proto::Holder> holders;
    bool only_self = false;
    for (const auto& h : all) {
        only_self = only_self || h.peer == filter.self;
        if (passes(h, filter)) holders.push_back(h);
    }
    if (holders.empty()) {
        std::string why = "no live peer offers '" + name + "'";
        if (!filter.from.empty()) why += " from " + filter.from;
        if (!filter.id_prefix.empty()) why += " with id " + filter.id_prefix + "…";
        if (only_self && all.size() == 1) why = "'" + name + "' is published only by this peer";
        return proto::Error{proto::ErrorCode::not_found, why + "; see `peerctl search`"};
    }
    std::set<std::string> ids;
    for (const auto& h : holders) ids.insert(h.id);
    if (ids.size() > 1) return proto::Choices{name, std::move(holders)};
    if (hidden_route(own) != HiddenRoute::none) return holders;   // the hidden ones too, reached another way
    if (all_unreachable(holders)) return proto::Error{proto::ErrorCode::unavailable, no_route_message(name, holders, own)};
    std::erase_if(holders, proven_unreachable);   // never dialled: see unreachable_holders
    assert(!holders.empty());
    return holders;
}

HiddenRoute hidden_route(const OwnReach& own) {
    if (own.reachable == true) return HiddenRoute::reverse;
    return own.relay ? HiddenRoute::relay : HiddenRoute::none;
}

HiddenRoute fallback_route(const OwnReach& own) {
    if (own.reachable == true) return HiddenRoute::reverse;
    if (own.reachable == false && own.relay) return HiddenRoute::relay;
    return HiddenRoute::none;
}

std::string no_fallback_reason(const OwnReach& own) {
    if (fallback_route(own) != HiddenRoute::none) return "";
    const std::string why_self = own.reason.empty() ? "" : " (" + own.reason + ")";
    if (own.reachable == false) {
        return "no other way to it: this peer is unreachable too" + why_self +
               ", so it cannot connect back, and the tracker runs no relay; open this peer's upload port to other "
               "peers (or run peerd --advertise with an address that reaches it), or run the tracker with a relay "
               "(trackerd --relay-listen)";
    }
    if (own.checking) return "no other way to it yet: the tracker is still checking this peer's own reachability";
    return "no other way to it: this peer's own reachability is not known" + why_self +
           ", so the holder cannot be asked to connect back";
}

bool wait_for_own_reach(const HolderChoice& choice, const OwnReach& own) {
    if (!own.checking || own.reachable.has_value()) return false;
    if (const auto* e = std::get_if<proto::Error>(&choice)) return e->code == proto::ErrorCode::unavailable;
    const auto* holders = std::get_if<std::vector<proto::Holder>>(&choice);
    return holders && all_unreachable(*holders);
}

std::string_view to_string(HiddenRoute route) {
    switch (route) {
    case HiddenRoute::reverse: return "reverse";
    case HiddenRoute::relay: return "relay";
    case HiddenRoute::none: return "none";
    }
    return "?";
}

std::string no_route_message(const std::string& name, const std::vector<proto::Holder>& holders, const OwnReach& own) {
    assert(!holders.empty() && all_unreachable(holders));
    std::string who;
    for (std::size_t i = 0; i < holders.size() && i < kNamedHolders; ++i) {
        const auto& h = holders[i];
        who += (i ? ", " : "") + h.peer + " at " + common::to_string(common::Endpoint{h.address, h.port});
    }
    if (holders.size() > kNamedHolders) who += " and " + std::to_string(holders.size() - kNamedHolders) + " more";
    const bool one = holders.size() == 1;
    const std::string why_self = own.reason.empty() ? "" : " (" + own.reason + ")";
    const std::string self = own.reachable == false ? "this peer is unreachable too" + why_self
                                                    : "this peer's own reachability is not known" + why_self;
    return std::string(one ? "the only holder" : "every holder") + " of '" + name + "' is unreachable (" + who +
           "): the tracker cannot connect to " + (one ? "its" : "their") + " upload port, and " + self +
           ", so it cannot connect back here. Either side can fix it: open its upload port to other peers "
           "(firewall, router port forwarding) or run peerd --advertise with an address that reaches it; "
           "or run the tracker with a relay (trackerd --relay-listen). `peerctl reach-check` on each side tells whether it is reachable now";
}

std::vector<proto::Holder> unreachable_holders(const std::vector<proto::Holder>& all, const HolderFilter& filter) {
    std::vector<proto::Holder> out;
    for (const auto& h : all) {
        if (passes(h, filter) && proven_unreachable(h)) out.push_back(h);
    }
    return out;
}

std::uint64_t lookup_backoff_ms(unsigned attempts, double jitter) {
    constexpr std::uint64_t kFirstMs = 1'000, kMaxMs = 60'000;
    std::uint64_t wait = kFirstMs;
    for (unsigned i = 1; i < attempts && wait < kMaxMs; ++i) wait *= 2;
    wait = std::min(wait, kMaxMs);
    assert(jitter >= 0.0 && jitter <= 1.0);
    return wait + static_cast<std::uint64_t>(static_cast<double>(wait) * 0.1 * jitter);
}

}  // namespace peershare::peerd
