// proto/limits.hpp — every protocol limit, named once. Binaries may lower these
// at run time (--max-peers), never raise the hard caps.
#pragma once

#include <cstddef>
#include <cstdint>

namespace peershare::proto {

inline constexpr std::uint32_t kProtocolVersion = 1;

inline constexpr std::size_t kMaxFrame = 1u << 20;          // bytes of JSON per frame
inline constexpr std::size_t kMaxNameBytes = 255;           // a file or peer name
inline constexpr std::size_t kMaxSearchText = 255;
inline constexpr std::size_t kMaxHostBytes = 253;
inline constexpr std::size_t kMaxMessageText = 1024;        // error messages, reasons
inline constexpr std::size_t kMaxEventDetail = 200;          // an event's detail; 1,000 events fit a frame
inline constexpr std::size_t kPeerKeyHexLen = 64;           // 32 random bytes, hex
inline constexpr std::size_t kContentIdHexLen = 64;         // SHA-256, hex

inline constexpr std::size_t kMaxFilesPerPeer = 100'000;
inline constexpr std::size_t kDefaultMaxPeers = 20'000;
// Rows per listing reply: 2,000 rows of the longest names stay under kMaxFrame.
inline constexpr std::size_t kMaxListedItems = 2'000;
inline constexpr std::size_t kMaxListedHolders = 64;        // holder names per index row
inline constexpr std::size_t kMaxLookupHolders = 1'000;      // holders per lookup reply, under kMaxFrame
inline constexpr std::size_t kEventHistory = 1'000;

inline constexpr std::uint64_t kMaxFileSize = 1ull << 50;   // 1 PiB
inline constexpr std::uint64_t kMinPieceSize = 16u << 10;
inline constexpr std::uint64_t kMaxPieceSize = 16u << 20;
// The largest rate limit (bytes/s): 1 TB/s; 0 means unlimited.
inline constexpr std::uint64_t kMaxRate = 1'000'000'000'000;

inline constexpr std::uint32_t kHelloTimeoutMs = 5'000;     // a connection must say hello by then
// A request (HTTP request, or one frame on any session) must arrive whole
// within this many seconds of its first byte (--request-timeout): a deadline,
// not reset by bytes that trickle in.
inline constexpr std::uint32_t kDefaultRequestTimeoutS = 60;
inline constexpr std::uint32_t kDefaultHeartbeatS = 10;
inline constexpr std::uint32_t kDefaultPeerTimeoutS = 30;
inline constexpr std::uint32_t kMaxPingTimeoutMs = 60'000;

}  // namespace peershare::proto
