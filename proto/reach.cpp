// proto/reach.cpp — nonces, proofs and the verdict of a reachability check.
#include "proto/reach.hpp"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <span>

#include "proto/hex.hpp"

namespace peershare::proto {

std::string random_reach_nonce() { return random_hex(kReachNonceDigits); }

std::string reach_path(std::string_view nonce) { return std::string(kReachPrefix) + std::string(nonce); }

std::optional<std::string_view> parse_reach_target(std::string_view path) {
    if (!path.starts_with(kReachPrefix)) return std::nullopt;
    const auto nonce = path.substr(kReachPrefix.size());
    if (!is_lower_hex(nonce, kReachNonceDigits)) return std::nullopt;
    return nonce;
}

std::string reach_proof(std::string_view key, std::string_view nonce) {
    std::array<std::uint8_t, EVP_MAX_MD_SIZE> mac{};
    unsigned int length = 0;
    const auto* out = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                           reinterpret_cast<const unsigned char*>(nonce.data()), nonce.size(), mac.data(), &length);
    assert(out && length == 32);
    (void)out;
    return to_hex(std::span<const std::uint8_t>(mac.data(), length));
}

std::string reach_request(std::string_view host, std::uint16_t port, std::string_view nonce) {
    const bool v6 = host.find(':') != std::string_view::npos;
    std::string out = "GET " + reach_path(nonce) + " HTTP/1.1\r\nHost: ";
    out += v6 ? "[" + std::string(host) + "]" : std::string(host);
    out += ":" + std::to_string(port) + "\r\nConnection: close\r\nUser-Agent: trackerd-reach\r\n\r\n";
    return out;
}

namespace {

struct Parsed {
    std::string body;
    bool headers_done = false;
};

int on_headers_complete(http_parser* p) {
    static_cast<Parsed*>(p->data)->headers_done = true;
    return 0;
}

int on_body(http_parser* p, const char* at, std::size_t length) {
    auto* parsed = static_cast<Parsed*>(p->data);
    if (parsed->body.size() < kMaxReachResponseBytes)
        parsed->body.append(at, std::min(length, kMaxReachResponseBytes - parsed->body.size()));
    return 0;
}

}  // namespace

std::optional<std::string> reach_problem(std::string_view response, std::string_view proof) {
    if (response.empty()) return "the connection was accepted, then closed without an answer";
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    Parsed parsed;
    parser.data = &parsed;
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    http_parser_execute(&parser, &settings, response.data(), response.size());
    // The end of the input is the end of a body without a length.
    if (HTTP_PARSER_ERRNO(&parser) == HPE_OK) http_parser_execute(&parser, &settings, nullptr, 0);
    if (!parsed.headers_done) return std::string("not an HTTP response: not a peerd upload server");
    if (parser.status_code != 200) {
        return "answered HTTP " + std::to_string(parser.status_code) + ": not a peerd that knows the check";
    }
    if (!std::string_view(parsed.body).starts_with(proof)) {
        return std::string("answered with a wrong proof: another server, not this peer, listens there");
    }
    return std::nullopt;
}

}  // namespace peershare::proto
