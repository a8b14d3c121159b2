// proto/reach.hpp — the pure parts of the reachability check (issue 11;
// docs/protocol.md §7.10 and §11.9). When a peer says hello, the tracker dials
// the address it would give fetchers for that peer and asks its upload server
//   GET /v1/reach/<nonce> HTTP/1.1
// with a fresh random nonce; the peer answers 200 with reach_proof(key, nonce),
// an HMAC-SHA256 (RFC 2104) of the nonce under the peer's persisted key, which
// only that peer and the tracker know. So the tracker knows it reached that
// peer, not merely some server at that address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace peershare::proto {

inline constexpr std::string_view kReachPrefix = "/v1/reach/";
inline constexpr std::size_t kReachNonceDigits = 32;         // lowercase hex: 128 random bits
inline constexpr std::uint64_t kReachDeadlineMs = 2'000;     // resolve + connect + answer, all of it
inline constexpr std::size_t kMaxReachResponseBytes = 4096;  // more is not our upload server

// 32 lowercase hex digits from OpenSSL's RAND_bytes.
std::string random_reach_nonce();
// "/v1/reach/<nonce>".
std::string reach_path(std::string_view nonce);
// The nonce of a reach path ("/v1/reach/" and exactly 32 lowercase hex
// digits), else nullopt.
std::optional<std::string_view> parse_reach_target(std::string_view path);
// HMAC-SHA256 of `nonce` keyed with the bytes of `key` (the peer key's hex
// text), as 64 lowercase hex digits.
std::string reach_proof(std::string_view key, std::string_view nonce);

// The whole request the tracker writes: GET, Host, Connection: close.
// `host` is an IP literal or a name; an IPv6 literal gets brackets.
std::string reach_request(std::string_view host, std::uint16_t port, std::string_view nonce);

// Judges what came back (everything read until the peer closed, at most
// kMaxReachResponseBytes): nullopt if it is an HTTP/1.x 200 whose body
// starts with `proof`; else why not, in words for the operator ("answered
// HTTP 404: not a peerd that knows the check", "a wrong proof: another
// server answers there", "not an HTTP response"). Parsed with http-parser.
std::optional<std::string> reach_problem(std::string_view response, std::string_view proof);

}  // namespace peershare::proto
