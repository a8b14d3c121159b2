// daemon/fetch/http_source.hpp — one peer the engine downloads from over
// HTTP/1.1 (docs/protocol.md §11): its URLs, its state, and the verdict on
// each answer it gives. The verdict is a pure function of the answer, so
// every rule (404 drops, 503 waits for Retry-After, a short body strikes,
// ...) is unit-tested without a socket (tests/unit/test_http_source.cpp).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "proto/content.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

inline constexpr unsigned kRequestsPerSource = 4;  // HTTP requests in flight per source, at most
// A piece that took longer than this from request to last byte makes its
// source's request depth one less (see next_request_depth).
inline constexpr std::uint64_t kSlowPieceMs = 1'000;
inline constexpr unsigned kMaxStrikes = 3;       // failures before a source is dropped
inline constexpr unsigned kMaxBusyAnswers = 10;  // 503s in a row before a source is dropped
inline constexpr std::uint64_t kMaxRetryAfterMs = 30'000;
inline constexpr std::uint64_t kDefaultRetryAfterMs = 1'000;
// Times a source dropped for a 404 is taken back when a later lookup lists it
// again (it may have published the file since): bounded, so a holder the
// tracker keeps listing but that never has it costs a few requests, no more.
inline constexpr unsigned kMaxReadmissions = 3;

// Request depth (issue 10): how many piece requests to keep in flight at
// one source. Each request claims a whole piece. At a source whose upload
// is split among many fetchers (a publisher or a partial holder in a flash
// crowd) a deep queue makes every piece arrive late and holds pieces that
// other sources could send: with four each, 16 fetchers of a 2 MB/s
// publisher waited 8 s for their first pieces (scripts/bench swarm,
// docs/performance.md). So a source starts at kRequestsPerSource when it
// holds the whole file (one fast holder still fills a fast link), at 1 when
// partial; after each piece it sent, in `piece_ms` from its request, the
// depth goes one down if that took more than kSlowPieceMs, one up if it took
// less than half of that, within [1, kRequestsPerSource]. Like BitTorrent
// clients sizing their request queue by each peer's rate (BEP 3 leaves it to
// them; libtorrent's request_queue_time), in whole pieces.
unsigned initial_request_depth(bool partial);
unsigned next_request_depth(unsigned depth, std::uint64_t piece_ms);

// What came back for one request, as curl saw it.
struct Answer {
    bool listing = false;         // the piece list, not a piece
    int curl_code = 0;            // CURLcode; 0: the transfer completed
    std::string curl_error;       // curl's words for curl_code
    bool connected = false;       // a connection was made
    long status = 0;              // HTTP status; 0: none
    std::int64_t retry_after_s = 0;  // Retry-After of a 503, in seconds; ≤ 0: none
    bool overflow = false;        // more body than asked for (the write callback stopped it)
    std::uint64_t piece = 0;      // pieces: which
    std::uint64_t received = 0;   // pieces: body bytes kept
    std::uint64_t expected = 0;   // pieces: bytes asked for
    bool whole_file = false;      // pieces: the range is the whole file, so a 200 will do
    unsigned busy_before = 0;     // 503s in a row from this source before this answer
    bool have = false;            // a /have request (its bitfield), not a piece
    // A 503 carrying the piece a partial holder lacks (kNotHereYetHeader,
    // docs/protocol.md §11.8): "not here yet", not a busy server.
    bool not_here = false;
    // A reverse source (daemon/fetch/handed_sockets.hpp) had no handed-over
    // socket for this request: `connect_back_problem` says why it cannot go
    // on, if it cannot; else it waits for the holder to connect back.
    bool awaiting_connect_back = false;
    std::optional<std::string> connect_back_problem;
};

struct Verdict {
    enum class Kind {
        ok,           // a piece (to verify) or a piece list (to check)
        retry_after,  // busy: ask nothing of it for wait_ms
        strike,       // a failure; kMaxStrikes of them drop the source
        drop,         // never ask it again
        not_here,     // a partial holder lacks the piece: ask it of others, refresh its /have; no strike
        wait,         // a reverse source waits for its connect-back: ask nothing of it for wait_ms; not busy
    };
    Kind kind = Kind::ok;
    std::uint64_t wait_ms = 0;  // retry_after, wait
    std::string why;            // strike, drop: one line for the log and the user
    // drop: for not having the file (404), which a later lookup listing the
    // source again may undo; never for bad bytes or a broken answer.
    bool readmissible = false;
    // drop: the holder's address could not be connected to (refused, connect
    // timeout, no route, name not resolved): not an HTTP error, not bad
    // bytes. Another way to the same holder (a reverse or relay connection,
    // FetchRequest::fallback) may still work.
    bool unreachable = false;
};

// Whether a source dropped with `readmissible` (Verdict), already taken back
// `readmitted` times, is taken back when a lookup lists it again.
bool may_readmit(bool readmissible, unsigned readmitted);

// The verdict on an answer (a pure function).
Verdict judge(const Answer& a);

// The verdict on a piece list's body (after judge() said ok): the list, or
// why the source is dropped. Checks it against the content id, size and piece size.
proto::Result<proto::PieceList> judge_piece_list(const std::string& body, const std::string& id,
                                                 std::uint64_t size, std::uint64_t piece_size);

// "http://HOST:PORT" for an IPv4 or IPv6 literal (with an optional zone) or
// a DNS name (RFC 1123 labels of letters, digits and hyphens, at most 253
// bytes), nullopt for anything else: nothing from the network changes the
// request's path or reaches curl's URL parser unchecked.
std::optional<std::string> base_url(const std::string& host, std::uint16_t port);

// The engine checks whatever a name resolves to with common::refused_address
// (common/net.hpp) before a socket is opened.

}  // namespace peershare::peerd
