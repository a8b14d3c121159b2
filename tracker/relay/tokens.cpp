// tracker/relay/tokens.cpp — issuing and claiming the relay's one-time tokens.
#include "tracker/relay/tokens.hpp"

#include <cassert>
#include <unordered_set>

namespace peershare::tracker {

std::string_view to_string(RelaySide side) { return side == RelaySide::fetcher ? "fetcher" : "holder"; }

RelayTokens::RelayTokens(MakeToken make, std::uint64_t ttl_ms, std::size_t max_pending)
    : make_(std::move(make)), ttl_ms_(ttl_ms), max_pending_(max_pending) {
    assert(make_ && ttl_ms_ > 0 && max_pending_ > 0);
}

std::size_t RelayTokens::pending_circuits() const {
    std::unordered_set<std::uint64_t> circuits;
    for (const auto& [token, entry] : tokens_) circuits.insert(entry.claim.circuit);
    return circuits.size();
}

proto::Result<RelayTicket> RelayTokens::issue(std::string fetcher, std::string holder, std::uint64_t now_ms) {
    expire(now_ms);
    // Each pair holds at most two tokens: a cheap bound before the exact count.
    if (tokens_.size() >= max_pending_ && pending_circuits() >= max_pending_) {
        return proto::Error{proto::ErrorCode::busy, "the relay has " + std::to_string(max_pending_) +
                                                        " connections waiting to be made; try again shortly"};
    }
    RelayTicket ticket{next_circuit_++, make_(), make_()};
    // A collision of 128 random bits is not going to happen; a test's generator
    // that repeats itself is a bug in the test.
    assert(ticket.fetcher_token != ticket.holder_token && !tokens_.contains(ticket.fetcher_token) &&
           !tokens_.contains(ticket.holder_token));
    const std::uint64_t expires = now_ms + ttl_ms_;
    tokens_.emplace(ticket.fetcher_token,
                    Entry{RelayClaim{ticket.circuit, RelaySide::fetcher, fetcher, holder}, expires});
    tokens_.emplace(ticket.holder_token,
                    Entry{RelayClaim{ticket.circuit, RelaySide::holder, std::move(fetcher), std::move(holder)},
                          expires});
    return ticket;
}

std::optional<RelayClaim> RelayTokens::claim(std::string_view token, std::uint64_t now_ms) {
    auto it = tokens_.find(std::string(token));
    if (it == tokens_.end()) return std::nullopt;
    auto entry = std::move(it->second);
    tokens_.erase(it);
    if (now_ms >= entry.expires_ms) return std::nullopt;
    return std::move(entry.claim);
}

void RelayTokens::expire(std::uint64_t now_ms) {
    std::erase_if(tokens_, [now_ms](const auto& item) { return now_ms >= item.second.expires_ms; });
}

}  // namespace peershare::tracker
