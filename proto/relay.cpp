// proto/relay.cpp — the relay's preface and answer lines.
#include "proto/relay.hpp"

#include "proto/hex.hpp"
#include "proto/reach.hpp"

namespace peershare::proto {

namespace {

constexpr std::string_view kCrlf = "\r\n";

// The line before the first CRLF, if one comes within the bound.
std::variant<RelayIncomplete, std::string_view, RelayBad> first_line(std::string_view bytes) {
    const auto end = bytes.find(kCrlf);
    if (end == std::string_view::npos) {
        if (bytes.size() >= kMaxRelayLineBytes) {
            return RelayBad{"no line end within " + std::to_string(kMaxRelayLineBytes) + " bytes"};
        }
        // A byte that no line of ours holds is an error at once, not after 256 bytes.
        if (!bytes.empty() && !bytes.starts_with(kRelayMagic.substr(0, std::min(bytes.size(), kRelayMagic.size())))) {
            return RelayBad{"not a relay preface (expected " + std::string(kRelayMagic) + ")"};
        }
        return RelayIncomplete{};
    }
    if (end + kCrlf.size() > kMaxRelayLineBytes) {
        return RelayBad{"a line longer than " + std::to_string(kMaxRelayLineBytes) + " bytes"};
    }
    return bytes.substr(0, end);
}

}  // namespace

std::string random_relay_token() {
    static_assert(kRelayTokenDigits == kReachNonceDigits, "both are 128 random bits as hex");
    return random_reach_nonce();
}

std::string relay_preface(std::string_view token) {
    return std::string(kRelayMagic) + " " + std::string(token) + std::string(kCrlf);
}

std::string relay_joined() { return std::string(kRelayMagic) + " OK" + std::string(kCrlf); }

std::string relay_refused(std::string_view reason) {
    std::string line = std::string(kRelayMagic) + " REFUSED ";
    const std::size_t room = kMaxRelayLineBytes - line.size() - kCrlf.size();
    for (char c : reason.substr(0, room)) line += (c == '\r' || c == '\n') ? ' ' : c;
    return line + std::string(kCrlf);
}

RelayParse parse_relay_preface(std::string_view bytes) {
    const auto line = first_line(bytes);
    if (std::holds_alternative<RelayIncomplete>(line)) return RelayIncomplete{};
    if (const auto* bad = std::get_if<RelayBad>(&line)) return *bad;
    const auto text = std::get<std::string_view>(line);
    const std::size_t consumed = text.size() + kCrlf.size();
    if (!text.starts_with(kRelayMagic) || text.size() <= kRelayMagic.size() || text[kRelayMagic.size()] != ' ') {
        return RelayBad{"not a relay preface (expected " + std::string(kRelayMagic) + " <token>)"};
    }
    const auto token = text.substr(kRelayMagic.size() + 1);
    if (!is_lower_hex(token, kRelayTokenDigits)) {
        return RelayBad{"the token must be " + std::to_string(kRelayTokenDigits) + " lowercase hex digits"};
    }
    return RelayLine{std::string(token), consumed};
}

RelayParse parse_relay_answer(std::string_view bytes) {
    const auto line = first_line(bytes);
    if (std::holds_alternative<RelayIncomplete>(line)) return RelayIncomplete{};
    if (const auto* bad = std::get_if<RelayBad>(&line)) return *bad;
    const auto text = std::get<std::string_view>(line);
    const std::string ok = std::string(kRelayMagic) + " OK";
    const std::string refused = std::string(kRelayMagic) + " REFUSED ";
    if (text == ok) return RelayLine{"", text.size() + kCrlf.size()};
    if (text.starts_with(refused)) return RelayBad{"the relay refused: " + std::string(text.substr(refused.size()))};
    return RelayBad{"not a relay answer"};
}

}  // namespace peershare::proto
