// proto/reverse.cpp — tokens and the connect-back preface.
#include "proto/reverse.hpp"

#include <algorithm>
#include <cassert>

#include "proto/hex.hpp"

namespace peershare::proto {

std::string random_reverse_token() { return random_hex(kReverseTokenDigits); }

bool valid_reverse_token(std::string_view token) { return is_lower_hex(token, kReverseTokenDigits); }

std::string reverse_preface(std::string_view token) {
    assert(valid_reverse_token(token));
    return std::string(kReversePrefaceWord) + std::string(token) + "\r\n";
}

PrefaceScan scan_preface(std::string_view received) {
    const auto word = kReversePrefaceWord;
    const std::size_t common = std::min(received.size(), word.size());
    if (received.substr(0, common) != word.substr(0, common)) return {};   // HTTP (or not ours)
    if (received.size() < kReversePrefaceBytes) {
        // A CR or LF before the token is whole: the line ended too soon (a
        // CR right after the token is the start of the CRLF).
        const auto eol = received.find_first_of("\r\n");
        const std::size_t token_end = word.size() + kReverseTokenDigits;
        if (eol != std::string_view::npos && (eol < token_end || received[eol] != '\r'))
            return {PrefaceScan::Kind::bad, {}, 0};
        return {PrefaceScan::Kind::incomplete, {}, 0};
    }
    const auto token = received.substr(word.size(), kReverseTokenDigits);
    const auto end = received.substr(word.size() + kReverseTokenDigits, 2);
    if (!valid_reverse_token(token) || end != "\r\n") return {PrefaceScan::Kind::bad, {}, 0};
    return {PrefaceScan::Kind::preface, std::string(token), kReversePrefaceBytes};
}

}  // namespace peershare::proto
