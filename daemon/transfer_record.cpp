// daemon/transfer_record.cpp — see transfer_record.hpp.
#include "daemon/transfer_record.hpp"

#include <array>
#include <utility>

namespace peershare::peerd {

namespace {
constexpr std::array<std::pair<TransferState, std::string_view>, 6> kNames{{
    {TransferState::queued, "queued"},
    {TransferState::running, "running"},
    {TransferState::waiting, "waiting"},
    {TransferState::paused, "paused"},
    {TransferState::failed, "failed"},
    {TransferState::done, "done"},
}};
}  // namespace

std::string_view to_string(TransferState s) {
    for (const auto& [state, name] : kNames)
        if (state == s) return name;
    return "unknown";
}

bool parse_transfer_state(std::string_view text, TransferState& out) {
    for (const auto& [state, name] : kNames)
        if (name == text) {
            out = state;
            return true;
        }
    return false;
}

}  // namespace peershare::peerd
