// daemon/reverse/relay_dialer.cpp — the relay's preface and answer on PrefaceDialer.
#include "daemon/reverse/relay_dialer.hpp"

#include <utility>
#include <variant>

#include "proto/hex.hpp"
#include "proto/relay.hpp"

namespace peershare::peerd {

namespace {

DialAnswer judge_relay_answer(std::string_view seen) {
    const auto answer = proto::parse_relay_answer(seen);
    if (const auto* bad = std::get_if<proto::RelayBad>(&answer)) return {DialAnswer::Kind::bad, 0, bad->why};
    if (const auto* line = std::get_if<proto::RelayLine>(&answer)) return {DialAnswer::Kind::ok, line->consumed, ""};
    return {};
}

}  // namespace

RelayDialer::RelayDialer(uv_loop_t* loop, std::uint64_t deadline_ms)
    : dialer_(loop, "the relay", DialLimits{deadline_ms, kMaxRelayDials, proto::kMaxRelayLineBytes}) {}

proto::Result<bool> RelayDialer::dial(const common::Endpoint& relay, const std::string& token, DoneFn done) {
    if (!proto::is_lower_hex(token, proto::kRelayTokenDigits)) {
        return proto::Error{proto::ErrorCode::bad_request,
                            "a relay token is " + std::to_string(proto::kRelayTokenDigits) + " lowercase hex digits"};
    }
    return dialer_.dial(relay, proto::relay_preface(token), judge_relay_answer, std::move(done));
}

}  // namespace peershare::peerd
