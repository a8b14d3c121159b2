// tracker/relay/admission.hpp — the relay's limits and the decisions made from
// them, apart from any socket: whether one more circuit may open (a cap on
// concurrent circuits) and whether an open one has used up its budget (bytes
// and lifetime, as libp2p's Circuit Relay v2 reservations limit a relayed
// connection's duration and data: github.com/libp2p/specs relay/circuit-v2.md,
// "Limit"). Rates are common::TokenBucket's business. Pure; owned by the
// relay's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace peershare::tracker {

struct RelayLimits {
    std::size_t max_circuits = 64;                       // open at once
    std::uint64_t circuit_rate = 5'000'000;              // bytes/s, both directions together; 0 = unlimited
    std::uint64_t total_rate = 20'000'000;               // bytes/s over all circuits; 0 = unlimited
    std::uint64_t circuit_bytes = std::uint64_t{1} << 30;   // relayed by one circuit, both ways, at most
    std::uint64_t circuit_seconds = 3'600;               // one circuit's lifetime, from joining
    std::uint64_t partner_deadline_ms = 10'000;          // for the second side, from the first's arrival
    std::uint64_t preface_deadline_ms = 5'000;           // for a connection's preface, from accept
};

// What the relay counts; read on the tracker's thread for stats and /metrics.
struct RelayCounts {
    std::uint64_t opened = 0;         // circuits joined
    std::uint64_t refused_full = 0;   // a side arrived with the circuit cap reached
    std::uint64_t refused_token = 0;  // a bad preface, or an unknown, used or expired token
    std::uint64_t no_partner = 0;     // the other side did not come within the deadline
    std::uint64_t bytes = 0;          // relayed, both ways, all circuits
    std::uint64_t open = 0;           // circuits open now, waiting sides included
};

class CircuitAdmission {
public:
    explicit CircuitAdmission(std::size_t max_circuits);

    // Opens one if fewer than the cap are open (true), else counts a refusal (false).
    bool open();
    void close();   // one opened circuit ended (asserted)

    std::size_t active() const { return active_; }
    std::size_t max() const { return max_; }

private:
    std::size_t max_;
    std::size_t active_ = 0;
};

// One circuit's budget: `why` it must end now, or nothing while within it.
// relayed: bytes copied so far, both ways; now_ms and joined_ms monotonic.
std::optional<std::string> circuit_spent(const RelayLimits& limits, std::uint64_t relayed, std::uint64_t joined_ms,
                                         std::uint64_t now_ms);

}  // namespace peershare::tracker
