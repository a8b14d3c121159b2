// daemon/fetch.hpp — the download engine (DESIGN §3, §4, §6): fetches one
// file by content id from one or more peers over HTTP/1.1 into a temporary
// file beside the destination, verifies every piece, and renames the file into
// place only when all of it is verified.
//
// Threads and ownership. A Fetch lives on the loop thread. It drives its own
// libcurl multi handle from the libuv loop (uv_poll per socket, one uv_timer
// for curl's timeouts); SHA-256 checks, pwrite, fsync and rename run in the
// worker pool (uv_queue_work). Verified pieces are written with O_DIRECT where
// the file system takes it (whole blocks; the tail and other file systems go
// through the page cache). Each work item owns the piece buffer it
// carries; the engine behind a Fetch outlives the Fetch until its last work
// item is back, so destroying a Fetch at any time is safe.
//
// libcurl must have been initialised by the program (curl_global_init in
// main, before any thread starts); the engine keeps no global state.
//
// Protocol. From each source the engine first GETs /v1/files/<id>/pieces and
// checks it against the content id, size and piece size (a source that lies
// is dropped). It then asks every accepted source for pieces at once, up to
// kRequestsPerSource single-Range GETs in flight per source over keep-alive
// connections. A piece whose hash does not match is fetched again from
// another source; a source that fails kMaxStrikes times (bad data, transport
// errors), answers 404, or cannot be connected to is dropped. 503 pauses the
// source for Retry-After (clamped), kMaxBusyAnswers in a row drop it. When
// nothing is left to ask for, an idle source also asks for a piece another
// source has been sending for over kEndgameAfterMs; the first good copy wins.
//
// Memory: at most kMaxBuffers (or 2 × kRequestsPerSource × sources, if
// smaller) piece buffers exist at once, counting pieces being verified: twice
// the requests, so every source keeps receiving while the pieces it just sent
// are hashed and written.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "daemon/metrics.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

inline constexpr unsigned kRequestsPerSource = 4;  // HTTP requests in flight per source
inline constexpr unsigned kMaxBuffers = 16;      // piece buffers per fetch, in flight or verifying
inline constexpr unsigned kMaxStrikes = 3;       // failures before a source is dropped
inline constexpr unsigned kMaxBusyAnswers = 10;  // 503s in a row before a source is dropped
inline constexpr std::uint64_t kMaxRetryAfterMs = 30'000;
inline constexpr std::uint64_t kDefaultRetryAfterMs = 1'000;
inline constexpr long kConnectTimeoutMs = 10'000;
inline constexpr long kStallTimeoutS = 30;  // a request that receives nothing this long fails
inline constexpr std::uint64_t kProgressIntervalMs = 250;
// After this long, an idle source may duplicate a request still running elsewhere.
inline constexpr std::uint64_t kEndgameAfterMs = 1'000;

struct Source {
    std::string peer;
    std::string address;  // IPv4 or IPv6 literal
    std::uint16_t port = 0;
};

struct FetchRequest {
    std::string name;
    std::string id;  // content id, hex
    std::uint64_t size = 0;
    std::uint64_t piece_size = 0;
    std::vector<Source> sources;
    std::string destination;  // final path
    bool force = false;       // overwrite an existing destination
    PeerMetrics* metrics = nullptr;   // counts bytes, pieces and dropped sources; outlives the fetch
};

struct SourceProgress {
    std::string peer;
    std::uint64_t bytes = 0;  // verified bytes this source contributed
    double rate = 0;          // verified bytes/s over the last couple of seconds
    bool dropped = false;
    std::string why;  // why it was dropped
};

struct FetchProgress {
    std::uint64_t done = 0, total = 0;  // verified bytes, file size
    double rate = 0;                    // verified bytes/s over the last couple of seconds
    std::uint64_t stalled_ms = 0;       // since the last verified byte (or the start)
    std::vector<SourceProgress> sources;
};

struct FetchResult {
    std::string path;
    std::uint64_t bytes = 0;
    double seconds = 0;
    std::vector<std::string> sources_used;  // peers that contributed verified data
};

inline constexpr std::string_view kCancelledMessage = "cancelled";

class Fetch {
public:
    using ProgressFn = std::function<void(const FetchProgress&)>;  // ~4×/s while running
    // Exactly once, last; the owner may destroy the Fetch inside it. A cancel
    // gives Error{unavailable, "cancelled"}.
    using DoneFn = std::function<void(proto::Result<FetchResult>)>;

    Fetch(uv_loop_t* loop, const common::Log& log, FetchRequest request, ProgressFn progress,
          DoneFn done);
    // Cancels anything running and removes the temporary file; DoneFn is not
    // called. Work items still in the pool finish there and are freed later
    // (a temporary file still being created there is removed when it is back).
    ~Fetch();
    Fetch(const Fetch&) = delete;
    Fetch& operator=(const Fetch&) = delete;

    void start();
    // DoneFn gets "cancelled" (on a later loop turn). Once every piece is
    // verified and the file is being renamed into place, it is too late: the
    // fetch completes and DoneFn reports the outcome.
    void cancel();

private:
    class Engine;
    Engine* engine_;  // deletes itself once detached and its last work item is back
};

}  // namespace peershare::peerd
