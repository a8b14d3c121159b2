// proto/frame.hpp — the one framing of every session: a 4-byte big-endian
// length, then that many bytes of UTF-8 JSON. The decoder takes bytes in any
// split and never buffers more than one frame plus its header.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/errors.hpp"
#include "proto/limits.hpp"

namespace peershare::proto {

// The bytes of one frame carrying `payload`. The caller keeps payloads under
// the limit; encode never truncates.
std::string encode_frame(std::string_view payload);

class FrameDecoder {
public:
    explicit FrameDecoder(std::size_t max_frame = kMaxFrame) : max_frame_(max_frame) {}

    // Appends bytes and returns the payloads they complete. After an error the
    // decoder stays failed and returns nothing more.
    std::vector<std::string> feed(std::span<const char> bytes);
    const std::optional<Error>& error() const { return error_; }
    // Bytes held for a frame not yet complete (for tests and memory bounds).
    std::size_t buffered() const { return header_fill_ + body_.size(); }

private:
    std::size_t max_frame_;
    char header_[4]{};
    std::size_t header_fill_ = 0;
    std::optional<std::uint32_t> body_len_;
    std::string body_;
    std::optional<Error> error_;
};

}  // namespace peershare::proto
