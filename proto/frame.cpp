// proto/frame.cpp — length-prefixed frames.
#include "proto/frame.hpp"

#include <algorithm>
#include <cassert>

namespace peershare::proto {

std::string encode_frame(std::string_view payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out;
    out.reserve(4 + payload.size());
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(payload);
    return out;
}

std::vector<std::string> FrameDecoder::feed(std::span<const char> bytes) {
    std::vector<std::string> frames;
    while (!error_ && !bytes.empty()) {
        if (!body_len_) {
            const auto take = std::min(bytes.size(), sizeof header_ - header_fill_);
            std::copy_n(bytes.begin(), take, header_ + header_fill_);
            header_fill_ += take;
            bytes = bytes.subspan(take);
            if (header_fill_ < sizeof header_) break;
            const auto* h = reinterpret_cast<const unsigned char*>(header_);
            const std::uint32_t len = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) |
                                      (std::uint32_t{h[2]} << 8) | std::uint32_t{h[3]};
            if (len > max_frame_) {
                error_ = Error{ErrorCode::limit, "frame of " + std::to_string(len) +
                                                     " bytes is over the limit of " +
                                                     std::to_string(max_frame_)};
                break;
            }
            body_len_ = len;
            body_.reserve(len);
        }
        const auto take = std::min<std::size_t>(bytes.size(), *body_len_ - body_.size());
        body_.append(bytes.data(), take);
        bytes = bytes.subspan(take);
        if (body_.size() == *body_len_) {
            frames.push_back(std::move(body_));
            body_.clear();
            body_len_.reset();
            header_fill_ = 0;
        }
    }
    assert(buffered() <= max_frame_ + sizeof header_);   // one frame and its header at most (tests/fuzz/frame)
    return frames;
}

}  // namespace peershare::proto
