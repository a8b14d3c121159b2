// tests/unit/test_frame.cpp — the length-prefixed framing (proto/frame.hpp):
// encoding, decoding under every split of the input, and the size limit.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.hpp"
#include "proto/limits.hpp"

using peershare::proto::encode_frame;
using peershare::proto::ErrorCode;
using peershare::proto::FrameDecoder;
using peershare::proto::kMaxFrame;

namespace {

std::span<const char> bytes_of(std::string_view s) { return {s.data(), s.size()}; }

// Appends what a feed returned to everything decoded so far.
void collect(std::vector<std::string>& into, std::vector<std::string> frames) {
    for (auto& f : frames) into.push_back(std::move(f));
}

// A stream with frames of several shapes: empty, tiny, JSON, binary with NULs,
// and one long enough that its length has a byte over 0x7f.
std::vector<std::string> sample_payloads() {
    std::string binary;
    for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
    return {"a", "", R"({"type":"ping","id":7})", binary, "", std::string(0x181, 'z'), "last"};
}

std::string concat_frames(const std::vector<std::string>& payloads) {
    std::string stream;
    for (const auto& p : payloads) stream += encode_frame(p);
    return stream;
}

}  // namespace

TEST_CASE("a frame is a 4-byte big-endian length followed by the payload") {
    SUBCASE("short payload") {
        const auto bytes = encode_frame("hello");
        REQUIRE(bytes.size() == 9);
        CHECK(bytes.substr(0, 4) == std::string("\0\0\0\x05", 4));
        CHECK(bytes.substr(4) == "hello");
    }
    SUBCASE("every length byte is significant") {
        const std::uint32_t n = 0x00018283;  // bytes 00 01 82 83: two have the top bit set
        const auto bytes = encode_frame(std::string(n, 'x'));
        REQUIRE(bytes.size() == 4 + n);
        CHECK(static_cast<unsigned char>(bytes[0]) == 0x00);
        CHECK(static_cast<unsigned char>(bytes[1]) == 0x01);
        CHECK(static_cast<unsigned char>(bytes[2]) == 0x82);
        CHECK(static_cast<unsigned char>(bytes[3]) == 0x83);
    }
}

TEST_CASE("an encoded frame decodes to the same payload") {
    std::string payload;
    SUBCASE("text") { payload = R"({"type":"hello","version":1})"; }
    SUBCASE("binary with NUL and high bytes") { payload = std::string("\0\xff\x80\x7f\n", 5); }
    SUBCASE("length with high-bit bytes") { payload = std::string(0x8081, 'q'); }
    SUBCASE("UTF-8") { payload = "名前 🎉"; }
    FrameDecoder dec;
    const auto frames = dec.feed(bytes_of(encode_frame(payload)));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == payload);
    CHECK_FALSE(dec.error());
    CHECK(dec.buffered() == 0);
}

TEST_CASE("a stream of frames decodes the same fed one byte at a time") {
    const auto payloads = sample_payloads();
    const auto stream = concat_frames(payloads);
    FrameDecoder dec;
    std::vector<std::string> got;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        collect(got, dec.feed({&stream[i], 1}));
        REQUIRE(dec.buffered() <= kMaxFrame + 4);
    }
    CHECK(got == payloads);
    CHECK_FALSE(dec.error());
    CHECK(dec.buffered() == 0);
}

TEST_CASE("a stream of frames split at every byte position decodes the same") {
    const auto payloads = sample_payloads();
    const auto stream = concat_frames(payloads);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        INFO("split at byte " << cut);
        FrameDecoder dec;
        std::vector<std::string> got;
        collect(got, dec.feed(bytes_of(std::string_view(stream).substr(0, cut))));
        collect(got, dec.feed(bytes_of(std::string_view(stream).substr(cut))));
        REQUIRE(got == payloads);
        REQUIRE_FALSE(dec.error());
        REQUIRE(dec.buffered() == 0);
    }
}

TEST_CASE("a stream of small frames split at every pair of positions decodes the same") {
    const std::vector<std::string> payloads = {"ab", "", "c", R"({"x":1})"};
    const auto stream = concat_frames(payloads);
    const std::string_view s(stream);
    for (std::size_t i = 0; i <= s.size(); ++i) {
        for (std::size_t j = i; j <= s.size(); ++j) {
            INFO("split at " << i << " and " << j);
            FrameDecoder dec;
            std::vector<std::string> got;
            collect(got, dec.feed(bytes_of(s.substr(0, i))));
            collect(got, dec.feed(bytes_of(s.substr(i, j - i))));
            collect(got, dec.feed(bytes_of(s.substr(j))));
            REQUIRE(got == payloads);
        }
    }
}

TEST_CASE("a zero-length frame decodes to an empty payload") {
    const auto bytes = encode_frame("");
    CHECK(bytes == std::string(4, '\0'));
    FrameDecoder dec;
    SUBCASE("alone") {
        const auto frames = dec.feed(bytes_of(bytes));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].empty());
    }
    SUBCASE("several in a row") {
        const auto frames = dec.feed(bytes_of(bytes + bytes + bytes));
        CHECK(frames == std::vector<std::string>{"", "", ""});
    }
    SUBCASE("the header arriving one byte at a time") {
        std::vector<std::string> got;
        for (char c : bytes) collect(got, dec.feed({&c, 1}));
        CHECK(got == std::vector<std::string>{""});
    }
    CHECK_FALSE(dec.error());
    CHECK(dec.buffered() == 0);
}

TEST_CASE("feeding no bytes returns nothing and changes nothing") {
    FrameDecoder dec;
    CHECK(dec.feed({}).empty());
    CHECK(dec.buffered() == 0);
    CHECK_FALSE(dec.error());
}

TEST_CASE("a frame of exactly the limit is accepted") {
    const std::string payload(kMaxFrame, 'm');
    FrameDecoder dec;
    const auto frames = dec.feed(bytes_of(encode_frame(payload)));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].size() == kMaxFrame);
    CHECK(frames[0] == payload);
    CHECK_FALSE(dec.error());
}

TEST_CASE("a frame over the limit fails the decoder and nothing further comes out") {
    const std::string oversized = encode_frame(std::string(kMaxFrame + 1, 'o'));
    const std::string valid = encode_frame("after");
    FrameDecoder dec;
    std::vector<std::string> got;

    SUBCASE("in one feed") { collect(got, dec.feed(bytes_of(oversized + valid))); }
    SUBCASE("header one byte at a time, then the rest") {
        for (std::size_t i = 0; i < 4; ++i) collect(got, dec.feed({&oversized[i], 1}));
        REQUIRE(dec.error());
        collect(got, dec.feed(bytes_of(std::string_view(oversized).substr(4))));
        collect(got, dec.feed(bytes_of(valid)));
    }
    SUBCASE("a maximal length header") {
        collect(got, dec.feed(bytes_of(std::string("\xff\xff\xff\xff", 4) + valid)));
    }

    CHECK(got.empty());
    REQUIRE(dec.error());
    CHECK(dec.error()->code == ErrorCode::limit);
    CHECK_FALSE(dec.error()->message.empty());
    // Failed for good: even a valid frame fed later yields nothing, and no body is kept.
    CHECK(dec.feed(bytes_of(valid)).empty());
    CHECK(dec.error());
    CHECK(dec.buffered() <= 4);
}

TEST_CASE("frames completed before an oversized one in the same feed are still returned") {
    FrameDecoder dec{16};
    const auto frames =
        dec.feed(bytes_of(encode_frame("one") + encode_frame("two") +
                          encode_frame(std::string(17, 'x')) + encode_frame("three")));
    CHECK(frames == std::vector<std::string>{"one", "two"});
    REQUIRE(dec.error());
    CHECK(dec.error()->code == ErrorCode::limit);
}

TEST_CASE("a decoder with a small custom limit accepts up to it and rejects past it") {
    SUBCASE("limit 8") {
        FrameDecoder dec{8};
        const auto frames = dec.feed(bytes_of(encode_frame("12345678")));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0] == "12345678");
        CHECK_FALSE(dec.error());
        CHECK(dec.feed(bytes_of(encode_frame("123456789"))).empty());
        REQUIRE(dec.error());
        CHECK(dec.error()->code == ErrorCode::limit);
        // The message names the limit so an operator can tell why.
        CHECK(dec.error()->message.find('8') != std::string::npos);
    }
    SUBCASE("limit 0 allows only empty frames") {
        FrameDecoder dec{0};
        CHECK(dec.feed(bytes_of(encode_frame(""))) == std::vector<std::string>{""});
        CHECK_FALSE(dec.error());
        CHECK(dec.feed(bytes_of(encode_frame("x"))).empty());
        CHECK(dec.error());
    }
    SUBCASE("the default is kMaxFrame") {
        FrameDecoder dec;
        CHECK(dec.feed(bytes_of(encode_frame(std::string(kMaxFrame + 1, 'd')))).empty());
        CHECK(dec.error());
    }
}

TEST_CASE("buffered counts the bytes of the incomplete frame and nothing more") {
    FrameDecoder dec{64};
    const auto frame = encode_frame(std::string(64, 'b'));
    SUBCASE("grows with each byte of one frame, then drops to zero") {
        for (std::size_t i = 0; i + 1 < frame.size(); ++i) {
            CHECK(dec.feed({&frame[i], 1}).empty());
            REQUIRE(dec.buffered() == i + 1);
        }
        CHECK(dec.feed({&frame.back(), 1}).size() == 1);
        CHECK(dec.buffered() == 0);
    }
    SUBCASE("holds only the tail after complete frames") {
        const auto stream = frame + frame + frame.substr(0, 10);
        CHECK(dec.feed(bytes_of(stream)).size() == 2);
        CHECK(dec.buffered() == 10);
    }
    SUBCASE("stays at the header after an oversized header, whatever follows") {
        CHECK(dec.feed(bytes_of(encode_frame(std::string(65, 'x')))).empty());
        const std::string junk(100'000, 'j');
        CHECK(dec.feed(bytes_of(junk)).empty());
        CHECK(dec.buffered() <= 4);
    }
    SUBCASE("never exceeds one frame plus its header under the default limit") {
        FrameDecoder big;
        const auto max_frame = encode_frame(std::string(kMaxFrame, 'M'));
        const std::size_t chunk = 4093;  // prime: chunks straddle the header and the end
        std::size_t frames = 0;
        for (std::size_t off = 0; off < max_frame.size(); off += chunk) {
            frames += big.feed(bytes_of(std::string_view(max_frame).substr(off, chunk))).size();
            REQUIRE(big.buffered() <= kMaxFrame + 4);
        }
        CHECK(frames == 1);
        CHECK(big.buffered() == 0);
    }
}
