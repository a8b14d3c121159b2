// daemon/reverse/expected_connect_backs.hpp — the fetcher side's record of
// the connect-backs it asked for (issue 11, docs/protocol.md §7.12, §11.10):
// token → the reverse source (HandedSockets) that waits for the socket, and
// for the log the holder and content it is for. A fetch records its token
// here *before* it sends reverse_request, so a fast holder never finds it
// missing; the upload server's connect-back handler redeems it once.
//
// Pure apart from the sockets it passes on: the time is passed in (loop ms,
// uv_now), so tests inject it. Loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/token_table.hpp"
#include "common/unique_fd.hpp"
#include "daemon/fetch/handed_sockets.hpp"

namespace peershare::peerd {

// A token stays good this long after it was recorded: the ask's round trip
// through the tracker plus the holder's dial (kConnectBackDeadlineMs), with
// room; HandedSockets gives up on the ask at kConnectBackWaitMs anyway.
inline constexpr std::uint64_t kExpectedConnectBackMs = 10'000;
// Connect-backs expected at once, over every fetch: kMaxConnectBacks per
// reverse source makes this room for many sources asking at once.
inline constexpr std::size_t kMaxExpectedConnectBacks = 256;

class ExpectedConnectBacks {
public:
    struct Expected {
        std::weak_ptr<HandedSockets> source;   // gone: the fetch ended
        std::string holder;                    // peer name, for the log
        std::string content_id;
    };

    // Records `token` (32 lowercase hex digits) for `expected` at `now_ms`.
    // False when kMaxExpectedConnectBacks are already expected, or the token
    // is (a token is never bound twice).
    bool expect(const std::string& token, Expected expected, std::uint64_t now_ms);

    // Forgets `token` (its ask was refused): a late connect-back with it is
    // then refused as unknown.
    void forget(const std::string& token, std::uint64_t now_ms) { (void)tokens_.redeem(token, now_ms); }

    // A connect-back presented `token` at `now_ms` with `socket`: hands the
    // socket to the source that expects it and returns true (the token is
    // used up), or returns false with `why` in words (unknown or already used,
    // expired, its fetch gone, the source failed or has enough sockets
    // waiting) and closes the socket. The upload server counts either.
    bool take(const std::string& token, common::UniqueFd socket, std::uint64_t now_ms, std::string& why);

    std::size_t size() const { return tokens_.size(); }

private:
    common::TokenTable<Expected> tokens_{kExpectedConnectBackMs, kMaxExpectedConnectBacks};
};

}  // namespace peershare::peerd
