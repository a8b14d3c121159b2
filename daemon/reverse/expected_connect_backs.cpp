// daemon/reverse/expected_connect_backs.cpp — see expected_connect_backs.hpp.
#include "daemon/reverse/expected_connect_backs.hpp"

#include <utility>

namespace peershare::peerd {

bool ExpectedConnectBacks::expect(const std::string& token, Expected expected, std::uint64_t now_ms) {
    return tokens_.add(token, std::move(expected), now_ms);
}

bool ExpectedConnectBacks::take(const std::string& token, common::UniqueFd socket, std::uint64_t now_ms,
                                std::string& why) {
    auto redeemed = tokens_.redeem(token, now_ms);
    if (!redeemed.binding) {
        why = redeemed.refusal == common::TokenRefusal::expired ? "its token expired"
                                                                : "its token is unknown or already used";
        return false;
    }
    const auto& expected = *redeemed.binding;
    const auto source = expected.source.lock();
    const auto what = " (holder " + expected.holder + ", content " + expected.content_id.substr(0, 12) + "…)";
    if (!source) {
        why = "the fetch that asked for it has ended" + what;
        return false;
    }
    if (!source->give(std::move(socket))) {
        why = "its source gave up or has enough connections waiting" + what;
        return false;
    }
    return true;
}

}  // namespace peershare::peerd
