// tests/fuzz/endpoint.cpp — names and endpoints, the identifiers that enter
// from outside: check_name, check_content_id, check_peer_key, check_host,
// is_valid_utf8 and truncate_utf8 (proto/names.hpp), and parse_endpoint
// ("HOST:PORT", "[IPv6]:PORT", common/net.hpp). Invariants: is_valid_utf8
// agrees with nlohmann's strict UTF-8 check (RFC 3629); truncate_utf8 gives a
// prefix within the limit, valid when its input was; an accepted name is
// 1-255 bytes of UTF-8 without '/' or control bytes and not "." or ".."; an
// accepted endpoint prints (to_string) as text that parses back the same.
// Seeds: tests/fuzz/corpus/endpoint/.
#include <nlohmann/json.hpp>
#include <string>

#include "common/net.hpp"
#include "proto/limits.hpp"
#include "proto/names.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare;
using peershare::fuzz::as_text;

namespace {

bool nlohmann_says_utf8(std::string_view text) {
    try {
        (void)nlohmann::json(std::string(text)).dump();   // the strict handler throws on bad UTF-8
        return true;
    } catch (const nlohmann::json::type_error&) {
        return false;
    }
}

void check_endpoint(std::string_view text, bool allow_names) {
    auto e = common::parse_endpoint(text, allow_names);
    if (!e) {
        FUZZ_CHECK(!e.error().message.empty());
        return;
    }
    FUZZ_CHECK(!e->host.empty());
    FUZZ_CHECK(allow_names ? (common::to_sockaddr(*e).ok() || !proto::check_host(e->host))
                           : common::to_sockaddr(*e).ok());
    const auto printed = common::to_string(*e);
    auto back = common::parse_endpoint(printed, allow_names);
    FUZZ_CHECK(back && back->host == e->host && back->port == e->port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = as_text(data, size);
    const bool utf8 = proto::is_valid_utf8(text);
    FUZZ_CHECK(utf8 == nlohmann_says_utf8(text));

    for (std::size_t limit : {std::size_t{0}, std::size_t{1}, size / 2, size, size + 1}) {
        const auto cut = proto::truncate_utf8(text, limit);
        FUZZ_CHECK(cut.size() <= limit && text.starts_with(cut));
        if (utf8) FUZZ_CHECK(proto::is_valid_utf8(cut));
    }

    if (!proto::check_name(text)) {
        FUZZ_CHECK(utf8 && !text.empty() && text.size() <= proto::kMaxNameBytes);
        FUZZ_CHECK(text != "." && text != ".." && text.find('/') == std::string_view::npos);
        for (char c : text) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
        for (std::size_t i = 0; i + 1 < text.size(); ++i) {   // no C1 controls, U+0080-U+009F
            FUZZ_CHECK(text[i] != '\xc2' || static_cast<unsigned char>(text[i + 1]) >= 0xa0);
        }
    }
    if (!proto::check_content_id(text) || !proto::check_peer_key(text)) {
        FUZZ_CHECK(text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos);
    }
    if (!proto::check_host(text)) {
        FUZZ_CHECK(!text.empty() && text.size() <= proto::kMaxHostBytes && utf8);
    }

    check_endpoint(text, false);
    check_endpoint(text, true);
    return 0;
}
