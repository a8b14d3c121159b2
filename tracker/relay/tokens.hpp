// tracker/relay/tokens.hpp — the relay's one-time tokens (issue 11; docs/protocol.md §7.11).
// When a fetcher asks for a relayed connection to a holder, the tracker issues
// a pair: one token for each side, both naming the same circuit. Each side
// presents its token to the relay (proto/relay.hpp's preface); a token is
// single-use (claiming removes it) and expires kTicketTtlMs after issue. Pure:
// no I/O, no clock of its own (callers pass monotonic milliseconds), no locks
// (RelayServer guards it with its mutex). Kept in a common::TokenTable, as
// peerd keeps the tokens of expected connect-backs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/token_table.hpp"
#include "proto/errors.hpp"

namespace peershare::tracker {

inline constexpr std::uint64_t kTicketTtlMs = 30'000;      // from issue to the first side's arrival
inline constexpr std::size_t kMaxPendingTickets = 1'024;   // issued pairs not yet fully claimed

enum class RelaySide { fetcher, holder };
std::string_view to_string(RelaySide side);

struct RelayTicket {
    std::uint64_t circuit = 0;     // the same for both tokens of a pair
    std::string fetcher_token;     // proto::kRelayTokenDigits lowercase hex digits
    std::string holder_token;
};

// Who a claimed token belongs to.
struct RelayClaim {
    std::uint64_t circuit = 0;
    RelaySide side = RelaySide::fetcher;
    std::string fetcher;   // peer names, for events and logs
    std::string holder;
};

class RelayTokens {
public:
    // Makes one token: proto::kRelayTokenDigits hex digits (tests inject a
    // predictable one; the tracker uses proto::random_relay_token).
    using MakeToken = std::function<std::string()>;

    explicit RelayTokens(MakeToken make, std::uint64_t ttl_ms = kTicketTtlMs,
                         std::size_t max_pending = kMaxPendingTickets);

    // A new pair for `fetcher` → `holder`, issued at now_ms. ErrorCode::busy
    // when max_pending pairs are outstanding (after dropping expired ones).
    proto::Result<RelayTicket> issue(std::string fetcher, std::string holder, std::uint64_t now_ms);

    // The token's owner, removing the token (a second claim of it finds
    // nothing); nothing for an unknown, used or expired token.
    std::optional<RelayClaim> claim(std::string_view token, std::uint64_t now_ms);

    // Drops tokens issued more than ttl_ms before now_ms.
    void expire(std::uint64_t now_ms);

    std::size_t pending_tokens() const { return tokens_.size(); }

private:
    MakeToken make_;
    std::size_t max_pending_;
    std::uint64_t next_circuit_ = 1;
    // Two tokens per pair: room for max_pending whole pairs (a half-claimed
    // pair holds one, so up to twice as many of those may wait).
    common::TokenTable<RelayClaim> tokens_;
};

}  // namespace peershare::tracker
