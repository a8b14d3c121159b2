// tracker/relay/admission.cpp — the circuit cap and a circuit's budget.
#include "tracker/relay/admission.hpp"

#include <cassert>

namespace peershare::tracker {

CircuitAdmission::CircuitAdmission(std::size_t max_circuits) : max_(max_circuits) { assert(max_ > 0); }

bool CircuitAdmission::open() {
    if (active_ >= max_) return false;
    ++active_;
    return true;
}

void CircuitAdmission::close() {
    assert(active_ > 0);
    --active_;
}

std::optional<std::string> circuit_spent(const RelayLimits& limits, std::uint64_t relayed, std::uint64_t joined_ms,
                                         std::uint64_t now_ms) {
    if (relayed >= limits.circuit_bytes) {
        return "relayed its limit of " + std::to_string(limits.circuit_bytes) + " bytes";
    }
    if (now_ms - joined_ms >= limits.circuit_seconds * 1000) {
        return "open for its limit of " + std::to_string(limits.circuit_seconds) + " s";
    }
    return std::nullopt;
}

}  // namespace peershare::tracker
