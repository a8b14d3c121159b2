// daemon/reverse/relay_dialer.hpp — a peer's side of the relay (issue 11,
// docs/protocol.md §7.11 and §15): dial the relay's address, write the preface
//   PEERSHARE-RELAY/1 <token>\r\n
// and read the relay's one answer line (at most proto::kMaxRelayLineBytes):
// `PEERSHARE-RELAY/1 OK\r\n` once the other side's token has arrived too —
// then the socket is a byte pipe to the other peer, handed to the caller —
// or `… REFUSED <reason>\r\n` and a close. Both sides use it: the holder on a
// relay_offer (then serves HTTP on the socket, UploadServer::adopt), the
// fetcher on a relay_ticket (then speaks HTTP over it, HandedSockets).
//
// The dial itself (connect, preface, the answer line read with MSG_PEEK so
// nothing past it is eaten, one deadline, a cap) is PrefaceDialer's.
//
// Each dial has one deadline for connect, preface and answer together
// (kRelayDialDeadlineMs: the relay waits 10 s for the partner). At most
// kMaxRelayDials run at once. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "daemon/reverse/preface_dialer.hpp"

namespace peershare::peerd {

inline constexpr std::uint64_t kRelayDialDeadlineMs = 15'000;   // connect + preface + the relay's answer
inline constexpr std::size_t kMaxRelayDials = 16;

class RelayDialer {
public:
    // On success `socket` is connected to the relay, joined to the other
    // side, non-blocking, with nothing read past the relay's OK line; the
    // callee owns it. On failure `socket` is empty and `why` is one line:
    // "the relay refused: unknown, used or expired token", "connection
    // refused at 10.0.0.1:9997", "no answer from the relay at … within 15 s".
    using DoneFn = PrefaceDialer::DoneFn;

    explicit RelayDialer(uv_loop_t* loop, std::uint64_t deadline_ms = kRelayDialDeadlineMs);
    // Destroyed, it abandons dials in flight: their sockets are closed, `done` is not called.

    // Dials `relay` (an IP literal and port, from the tracker's relay_ticket or
    // relay_offer) and presents `token` (proto::kRelayTokenDigits lowercase
    // hex digits). Errors at once (bad_request: a bad token, not an IP
    // address, or a refused one; busy: kMaxRelayDials running; unavailable:
    // no socket); otherwise `done` is called exactly once, later, on the loop.
    proto::Result<bool> dial(const common::Endpoint& relay, const std::string& token, DoneFn done);
    std::size_t in_flight() const { return dialer_.in_flight(); }
    // Abandons every dial in flight: sockets closed, no `done` called.
    void abandon() { dialer_.abandon(); }

private:
    PrefaceDialer dialer_;
};

}  // namespace peershare::peerd
