// common/token_table.hpp — one-time tokens with a deadline (issue 11: reverse
// connections, and the relay's circuits). Pure: the caller passes the time
// (milliseconds on any monotonic clock, e.g. uv_now), so tests inject it.
// Owned by one thread; no locks.
//
// A token is issued (or, on the side that only learns it, added) bound to a
// Binding (who may use it for what), and redeemed at most once: redeem()
// gives the binding back and forgets the token, so a replay finds nothing.
// A token past its deadline is as good as absent; expired ones are swept on
// every insert, so the table holds at most `capacity` live tokens and its
// memory stays bounded whatever peers ask.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace peershare::common {

enum class TokenRefusal {
    unknown,   // never issued here, or already used (a replay)
    expired,   // issued, but its deadline passed before it was used
};

template <class Binding>
class TokenTable {
public:
    // `lifetime_ms`: how long a token stays good; `capacity`: live tokens at most.
    TokenTable(std::uint64_t lifetime_ms, std::size_t capacity) : lifetime_ms_(lifetime_ms), capacity_(capacity) {
        assert(lifetime_ms > 0 && capacity > 0);
    }

    // Adds `token` bound to `binding`, good until now_ms + lifetime. False
    // (nothing added) when the table is full of live tokens or the token is
    // already in it (a token is never bound twice).
    bool add(const std::string& token, Binding binding, std::uint64_t now_ms) {
        sweep(now_ms);
        if (entries_.size() >= capacity_ || entries_.contains(token)) return false;
        entries_.emplace(token, Entry{std::move(binding), now_ms + lifetime_ms_});
        return true;
    }

    // The token's binding, once: the token is gone afterwards, used or not.
    // An unknown, used or expired token gives its refusal.
    struct Redeemed {
        std::optional<Binding> binding;
        TokenRefusal refusal = TokenRefusal::unknown;   // when !binding
    };
    Redeemed redeem(const std::string& token, std::uint64_t now_ms) {
        const auto it = entries_.find(token);
        if (it == entries_.end()) return {std::nullopt, TokenRefusal::unknown};
        Entry entry = std::move(it->second);
        entries_.erase(it);
        if (now_ms >= entry.deadline_ms) return {std::nullopt, TokenRefusal::expired};
        return {std::move(entry.binding), TokenRefusal::unknown};
    }

    // Forgets every token past its deadline; returns how many.
    std::size_t sweep(std::uint64_t now_ms) {
        std::size_t gone = 0;
        for (auto it = entries_.begin(); it != entries_.end();) {
            if (now_ms >= it->second.deadline_ms) {
                it = entries_.erase(it);
                ++gone;
            } else {
                ++it;
            }
        }
        return gone;
    }

    std::size_t size() const { return entries_.size(); }
    std::uint64_t lifetime_ms() const { return lifetime_ms_; }

private:
    struct Entry {
        Binding binding;
        std::uint64_t deadline_ms;
    };
    std::uint64_t lifetime_ms_;
    std::size_t capacity_;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace peershare::common
