// proto/reverse.hpp — the pure parts of reverse connections (issue 11;
// docs/protocol.md §7.11 and §11.10). A fetcher that cannot reach a holder
// asks the tracker to have the holder connect back; the tracker gives both a
// one-time token. The holder dials the fetcher's upload port and, before
// anything else, writes the connect-back preface
//   PEERSHARE-REVERSE <token>\r\n
// (token: 32 lowercase hex digits, 128 random bits). The fetcher's upload
// server recognises it instead of an HTTP request and hands the socket to its
// download engine, which then speaks HTTP/1.1 as the client; the holder serves
// HTTP on it exactly as on an accepted connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace peershare::proto {

inline constexpr std::string_view kReversePrefaceWord = "PEERSHARE-REVERSE ";
inline constexpr std::size_t kReverseTokenDigits = 32;   // lowercase hex: 128 random bits
// The whole preface line, CRLF included: a connection that sent this many
// bytes without completing one is not a connect-back.
inline constexpr std::size_t kReversePrefaceBytes = kReversePrefaceWord.size() + kReverseTokenDigits + 2;

// 32 lowercase hex digits from OpenSSL's RAND_bytes.
std::string random_reverse_token();
// True if `token` is 32 lowercase hex digits.
bool valid_reverse_token(std::string_view token);
// "PEERSHARE-REVERSE <token>\r\n".
std::string reverse_preface(std::string_view token);

// What the first bytes of a connection on the upload port are.
struct PrefaceScan {
    enum class Kind {
        http,        // not a preface: an HTTP request (or garbage), for the HTTP reader
        incomplete,  // so far a prefix of a preface: read more
        preface,     // a whole preface: `token`, and `used` bytes of the input
        bad,         // starts like a preface but is not one (bad token, no CRLF): close
    };
    Kind kind = Kind::http;
    std::string token;
    std::size_t used = 0;
};

// Judges the bytes received so far on a connection (all of them, from the
// first). Pure; at most kReversePrefaceBytes of them are ever looked at.
PrefaceScan scan_preface(std::string_view received);

}  // namespace peershare::proto
