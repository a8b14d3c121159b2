// tests/unit/test_names.cpp — validation of names, content ids, peer keys,
// hosts and UTF-8 (proto/names.hpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proto/limits.hpp"
#include "proto/names.hpp"

using namespace peershare::proto;

namespace {

struct Case {
    const char* label;
    std::string value;
};

std::string repeat(const std::string& s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

// Printable for failure messages: bytes outside ASCII as \xNN.
std::string printable(const std::string& s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out.push_back(c);
        } else {
            out += "\\x";
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0xf]);
        }
    }
    return out.size() > 80 ? out.substr(0, 80) + "..." : out;
}

const std::string kHex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("names of valid UTF-8 are accepted") {
    const std::vector<Case> good = {
        {"one byte", "a"},
        {"spaces", "my holiday photos.zip"},
        {"leading and trailing spaces", " padded "},
        {"emoji", "🎉 party 🎶.mp4"},
        {"CJK", "中文文件名.txt"},
        {"Japanese", "日本語のファイル"},
        {"accents", "café résumé naïve"},
        {"RTL script", "ملف.txt"},
        {"dots that are not . or ..", "..."},
        {"hidden-style", ".hidden"},
        {"dot dot inside", "a..b"},
        {"backslash", "a\\b"},
        {"punctuation", "!#$%&'()*+,-;<=>?@[]^_`{|}~\""},
        {"U+00A0, the first code point after C1", "\xc2\xa0"},
        {"U+FFFD", "\xef\xbf\xbd"},
        {"U+10FFFF", "\xf4\x8f\xbf\xbf"},
        {"255 ASCII bytes", std::string(kMaxNameBytes, 'x')},
        {"255 bytes of 3-byte characters", repeat("中", 85)},
        {"255 bytes of 4-byte characters and ASCII", repeat("🎉", 63) + "abc"},
        {"255 bytes of 2-byte characters and ASCII", repeat("é", 127) + "e"},
    };
    for (const auto& c : good) {
        INFO(std::string(c.label) << ": " << printable(c.value));
        const auto why = check_name(c.value);
        CHECK_MESSAGE(!why, why.value_or(""));
    }
    CHECK(good[good.size() - 4].value.size() == kMaxNameBytes);
    CHECK(good[good.size() - 3].value.size() == kMaxNameBytes);
    CHECK(good[good.size() - 2].value.size() == kMaxNameBytes);
    CHECK(good[good.size() - 1].value.size() == kMaxNameBytes);
}

TEST_CASE(
    "names that are empty, too long, paths or control characters are rejected with a reason") {
    const std::vector<Case> bad = {
        {"empty", ""},
        {"256 bytes", std::string(kMaxNameBytes + 1, 'x')},
        {"256 bytes of multibyte", repeat("中", 85) + "x"},
        {"slash", "/"},
        {"leading slash", "/etc/passwd"},
        {"slash inside", "dir/file"},
        {"traversal", "../secret"},
        {"dot", "."},
        {"dot dot", ".."},
        {"NUL", std::string("a\0b", 3)},
        {"only NUL", std::string(1, '\0')},
        {"newline", "a\nb"},
        {"carriage return", "a\rb"},
        {"tab", "a\tb"},
        {"escape", "\x1b[2J"},
        {"0x01", "\x01"},
        {"0x1f", "a\x1f"},
        {"DEL", "a\x7f"},
        {"C1 U+0080", "a\xc2\x80"},
        {"C1 NEL U+0085", "a\xc2\x85"},
        {"C1 CSI U+009B",
         "a\xc2\x9b"
         "2J"},
        {"C1 U+009F", "\xc2\x9f"},
    };
    for (const auto& c : bad) {
        INFO(std::string(c.label) << ": " << printable(c.value));
        const auto why = check_name(c.value);
        REQUIRE(why);
        CHECK_FALSE(why->empty());
    }
}

TEST_CASE("names that are not valid UTF-8 are rejected") {
    const std::vector<Case> bad = {
        {"0xff", "a\xff"},
        {"0xfe", "\xfe"},
        {"lone continuation", "\x80"},
        {"continuation after ASCII", "ab\xbf"},
        {"truncated 2-byte at end", "caf\xc3"},
        {"truncated 3-byte at end", "x\xe4\xb8"},
        {"truncated 4-byte at end", "x\xf0\x9f\x8e"},
        {"bad continuation", "\xe2\x28\xa1"},
        {"overlong '/' in 2 bytes", "\xc0\xaf"},
        {"overlong NUL in 2 bytes", "\xc0\x80"},
        {"overlong 0x7f in 2 bytes", "\xc1\xbf"},
        {"overlong '/' in 3 bytes", "\xe0\x80\xaf"},
        {"overlong U+07FF in 3 bytes", "\xe0\x9f\xbf"},
        {"overlong '/' in 4 bytes", "\xf0\x80\x80\xaf"},
        {"overlong U+FFFF in 4 bytes", "\xf0\x8f\xbf\xbf"},
        {"high surrogate U+D800", "\xed\xa0\x80"},
        {"low surrogate U+DFFF", "\xed\xbf\xbf"},
        {"surrogate pair encoded as two", "\xed\xa0\xbd\xed\xb8\x80"},
        {"past U+10FFFF", "\xf4\x90\x80\x80"},
        {"lead 0xf5", "\xf5\x80\x80\x80"},
        {"5-byte form", "\xf8\x88\x80\x80\x80"},
        {"6-byte form", "\xfc\x84\x80\x80\x80\x80"},
    };
    for (const auto& c : bad) {
        INFO(std::string(c.label) << ": " << printable(c.value));
        CHECK_FALSE(is_valid_utf8(c.value));
        const auto why = check_name(c.value);
        REQUIRE(why);
        CHECK_FALSE(why->empty());
    }
}

TEST_CASE("is_valid_utf8 accepts every boundary code point") {
    const std::vector<Case> good = {
        {"empty", ""},
        {"ASCII", "plain"},
        {"NUL is valid UTF-8", std::string("a\0b", 3)},
        {"U+007F", "\x7f"},
        {"U+0080", "\xc2\x80"},
        {"U+07FF", "\xdf\xbf"},
        {"U+0800", "\xe0\xa0\x80"},
        {"U+D7FF, below the surrogates", "\xed\x9f\xbf"},
        {"U+E000, above the surrogates", "\xee\x80\x80"},
        {"U+FFFF", "\xef\xbf\xbf"},
        {"U+10000", "\xf0\x90\x80\x80"},
        {"U+10FFFF", "\xf4\x8f\xbf\xbf"},
        {"mixed", "a é 中 🎉"},
    };
    for (const auto& c : good) {
        INFO(std::string(c.label) << ": " << printable(c.value));
        CHECK(is_valid_utf8(c.value));
    }
}

TEST_CASE("the reasons for rejecting a name are distinct and say what is wrong") {
    const auto empty = check_name("");
    const auto long_name = check_name(std::string(kMaxNameBytes + 1, 'x'));
    const auto slash = check_name("a/b");
    const auto dots = check_name("..");
    const auto control = check_name("a\nb");
    const auto utf8 = check_name("\xff");
    REQUIRE(empty);
    REQUIRE(long_name);
    REQUIRE(slash);
    REQUIRE(dots);
    REQUIRE(control);
    REQUIRE(utf8);
    CHECK(empty->find("empty") != std::string::npos);
    CHECK(long_name->find(std::to_string(kMaxNameBytes)) != std::string::npos);
    CHECK(slash->find('/') != std::string::npos);
    CHECK(control->find("control") != std::string::npos);
    CHECK(utf8->find("UTF-8") != std::string::npos);
    CHECK(*empty != *slash);
    CHECK(*slash != *dots);
    CHECK(*dots != *control);
}

TEST_CASE("content ids and peer keys are 64 lowercase hex digits") {
    SUBCASE("accepted") {
        CHECK_FALSE(check_content_id(kHex64));
        CHECK_FALSE(check_content_id(std::string(64, '0')));
        CHECK_FALSE(check_content_id(std::string(64, 'f')));
        CHECK_FALSE(check_peer_key(kHex64));
        CHECK_FALSE(check_peer_key(std::string(64, 'a')));
    }
    SUBCASE("rejected with a reason") {
        std::string upper = kHex64;
        upper[10] = 'A';
        const std::vector<Case> bad = {
            {"empty", ""},
            {"63 digits", kHex64.substr(0, 63)},
            {"65 digits", kHex64 + "0"},
            {"128 digits", kHex64 + kHex64},
            {"one uppercase digit", upper},
            {"all uppercase", std::string(64, 'F')},
            {"non-hex letter", std::string(63, 'a') + "g"},
            {"space", std::string(63, 'a') + " "},
            {"NUL", std::string(63, 'a') + std::string(1, '\0')},
            {"prefix 0x", "0x" + kHex64.substr(2)},
            {"non-ASCII", kHex64.substr(0, 62) + "é"},
        };
        for (const auto& c : bad) {
            INFO(std::string(c.label) << ": " << printable(c.value));
            const auto id = check_content_id(c.value);
            const auto key = check_peer_key(c.value);
            REQUIRE(id);
            REQUIRE(key);
            CHECK_FALSE(id->empty());
            CHECK_FALSE(key->empty());
        }
    }
}

TEST_CASE("hosts are host names or IP literals") {
    SUBCASE("accepted") {
        const std::vector<std::string> hosts = {"localhost",
                                                "peer.example.org",
                                                "PEER-1.Example.ORG",
                                                "10.0.0.1",
                                                "::1",
                                                "fe80::1:2",
                                                "2001:db8::ffff:10.0.0.1",
                                                "a",
                                                std::string(kMaxHostBytes, 'h')};
        for (const auto& host : hosts) {
            INFO(host);
            const auto why = check_host(host);
            CHECK_MESSAGE(!why, why.value_or(""));
        }
    }
    SUBCASE("rejected with a reason") {
        const std::vector<Case> bad = {
            {"empty", ""},
            {"254 characters", std::string(kMaxHostBytes + 1, 'h')},
            {"space", "bad host"},
            {"slash", "host/path"},
            {"underscore", "a_b"},
            {"brackets", "[::1]"},
            {"at sign", "user@host"},
            {"percent (zone id)", "fe80::1%eth0"},
            {"NUL", std::string("a\0b", 3)},
            {"newline", "host\n"},
            {"non-ASCII", "évian.fr"},
            {"shell", "host;rm -rf"},
        };
        for (const auto& c : bad) {
            INFO(std::string(c.label) << ": " << printable(c.value));
            const auto why = check_host(c.value);
            REQUIRE(why);
            CHECK_FALSE(why->empty());
        }
    }
}
