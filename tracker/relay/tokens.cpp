// tracker/relay/tokens.cpp — issuing and claiming the relay's one-time tokens.
#include "tracker/relay/tokens.hpp"

#include <cassert>

namespace peershare::tracker {

std::string_view to_string(RelaySide side) { return side == RelaySide::fetcher ? "fetcher" : "holder"; }

RelayTokens::RelayTokens(MakeToken make, std::uint64_t ttl_ms, std::size_t max_pending)
    : make_(std::move(make)), max_pending_(max_pending), tokens_(ttl_ms, 2 * max_pending) {
    assert(make_ && ttl_ms > 0 && max_pending_ > 0);
}

proto::Result<RelayTicket> RelayTokens::issue(std::string fetcher, std::string holder, std::uint64_t now_ms) {
    tokens_.sweep(now_ms);
    if (tokens_.size() + 2 > 2 * max_pending_) {
        return proto::Error{proto::ErrorCode::busy, "the relay has " + std::to_string(max_pending_) +
                                                        " connections waiting to be made; try again shortly"};
    }
    RelayTicket ticket{next_circuit_++, make_(), make_()};
    // A collision of 128 random bits is not going to happen; a test's generator
    // that repeats itself is a bug in the test (add() refuses a token twice).
    [[maybe_unused]] const bool added =
        ticket.fetcher_token != ticket.holder_token &&
        tokens_.add(ticket.fetcher_token, RelayClaim{ticket.circuit, RelaySide::fetcher, fetcher, holder}, now_ms) &&
        tokens_.add(ticket.holder_token,
                    RelayClaim{ticket.circuit, RelaySide::holder, std::move(fetcher), std::move(holder)}, now_ms);
    assert(added);
    return ticket;
}

std::optional<RelayClaim> RelayTokens::claim(std::string_view token, std::uint64_t now_ms) {
    return tokens_.redeem(std::string(token), now_ms).binding;
}

void RelayTokens::expire(std::uint64_t now_ms) { tokens_.sweep(now_ms); }

}  // namespace peershare::tracker
