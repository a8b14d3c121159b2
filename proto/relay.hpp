// proto/relay.hpp — the pure parts of the relay (issue 11; docs/protocol.md
// §7.11 and §15). A peer connects to the tracker's relay (trackerd
// --relay-listen) and first writes one line, the preface:
//   PEERSHARE-RELAY/1 <token>\r\n
// where <token> is the one-time token the tracker gave it over its session
// (relay_ticket to the fetcher, relay_offer to the holder). Once the other
// side's token of the same pair has arrived too, the relay writes
//   PEERSHARE-RELAY/1 OK\r\n
// to both and from then on copies bytes both ways, untouched. A bad, used or
// expired token, a full relay or a partner that never came gets
//   PEERSHARE-RELAY/1 REFUSED <reason in words>\r\n
// and the connection is closed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace peershare::proto {

inline constexpr std::string_view kRelayMagic = "PEERSHARE-RELAY/1";
inline constexpr std::size_t kRelayTokenDigits = 32;     // lowercase hex: 128 random bits
inline constexpr std::size_t kMaxRelayLineBytes = 256;   // a preface or an answer, CRLF included

// 32 lowercase hex digits from OpenSSL's RAND_bytes.
std::string random_relay_token();

// "PEERSHARE-RELAY/1 <token>\r\n".
std::string relay_preface(std::string_view token);
std::string relay_joined();                          // "PEERSHARE-RELAY/1 OK\r\n"
std::string relay_refused(std::string_view reason);  // "... REFUSED <reason>\r\n", one line

// What the first bytes of a connection say. Incomplete: no CRLF yet within
// kMaxRelayLineBytes. Otherwise the line (and how many bytes it took, CRLF
// included: what follows is the payload), or why it is not a preface.
struct RelayIncomplete {};
struct RelayLine {
    std::string text;        // the token, or for an answer the refusal's reason ("" when OK)
    std::size_t consumed;    // bytes of the line, CRLF included
};
struct RelayBad {
    std::string why;
};
using RelayParse = std::variant<RelayIncomplete, RelayLine, RelayBad>;

// A preface: the magic, one space, exactly kRelayTokenDigits lowercase hex digits, CRLF.
RelayParse parse_relay_preface(std::string_view bytes);

// The relay's answer, as a peer reads it: RelayLine with text "" for OK;
// RelayBad with the relay's reason for REFUSED (or what is wrong with the line).
RelayParse parse_relay_answer(std::string_view bytes);

}  // namespace peershare::proto
