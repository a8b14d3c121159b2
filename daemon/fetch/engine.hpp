// daemon/fetch/engine.hpp — the download engine (docs/design.md: "Protocol
// layers", "Integrity and names", "The life of a transfer"): fetches one file
// by content id from one or more peers over HTTP/1.1 into a partial file
// beside the destination, verifies every piece, and renames the file into
// place only when all of it is verified. A download can be paused (destroy the
// Fetch, or cancel it) and resumed (a new Fetch on the same partial file with
// the pieces already known to be there).
//
// Threads and ownership. A Fetch lives on the loop thread. It drives its own
// libcurl multi handle from the libuv loop (uv_poll per socket, one uv_timer
// for curl's timeouts); SHA-256 checks, pread/pwrite, fdatasync and rename run
// in the worker pool (uv_queue_work). Verified pieces are written with O_DIRECT
// where the file system takes it (whole blocks; the tail and other file
// systems go through the page cache). Each work item owns the piece buffer it
// carries; the engine behind a Fetch outlives the Fetch until its last work
// item is back, so destroying a Fetch at any time is safe.
//
// The partial file. Its path is the caller's (partial_path_for gives the
// stable name). At start the engine creates it (sized, sparse) or opens the
// one there, and re-reads and hashes, in the worker pool, every piece the
// caller claims is in it (FetchRequest::have; every piece with adopt): those
// that match count as done, the others are fetched again. The engine never
// removes the partial file: a failure, a cancel or the Fetch's destruction
// leaves it, and whoever owns the transfer calls remove_partial() to discard
// it. Durability: the engine fdatasyncs the partial file at most about once a
// second while pieces arrive (and at the end), then reports through DurableFn
// every piece whose bytes are now on disk; it never reports a piece before.
//
// libcurl must have been initialised by the program (curl_global_init in
// main, before any thread starts); the engine keeps no global state.
//
// Protocol. Unless the request carries the piece list, the engine first GETs
// /v1/files/<id>/pieces from each source and checks it against the content
// id, size and piece size (a source that lies is dropped). It then asks every
// accepted source for pieces at once, up to kRequestsPerSource single-Range
// GETs in flight per source over keep-alive connections. A piece whose hash
// does not match is fetched again from another source; a source that fails
// kMaxStrikes times (bad data, transport errors), answers 404, or cannot be
// connected to is dropped (one dropped for a 404 may come back through
// add_sources; one that cannot be connected to is first offered to
// FetchRequest::fallback, which may give another way to the same holder). 503 pauses the source for Retry-After (clamped),
// kMaxBusyAnswers in a row drop it. When nothing is left to ask for, an idle
// source also asks for a piece another source has been sending for over
// kEndgameAfterMs; the first good copy wins.
//
// The parts, each in its own file under daemon/fetch/: the piece picker
// (which piece next, pure), the HTTP source (the verdict on each answer,
// pure), the partial file (prepare, write, verify, finalize, remove), the
// buffer pool, and the curl multi ↔ libuv glue.
//
// Memory: at most kMaxBuffers (or 2 × kRequestsPerSource × sources, if
// smaller) piece buffers per fetch at once, counting pieces being verified:
// twice the requests, so every source keeps receiving while the pieces it
// just sent are hashed and written. Buffers come from a BufferPool, which may
// be shared by every fetch of the daemon. Re-verification reads through one
// 1 MiB buffer per work item.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "common/token_bucket.hpp"
#include "daemon/fetch/buffer_pool.hpp"
#include "daemon/fetch/handed_sockets.hpp"
#include "daemon/fetch/partial_file.hpp"
#include "daemon/metrics.hpp"
#include "proto/bitfield.hpp"
#include "proto/content.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

inline constexpr unsigned kMaxBuffers = 16;      // piece buffers per fetch, in flight or verifying
inline constexpr long kConnectTimeoutMs = 10'000;
inline constexpr long kStallTimeoutS = 30;  // a request that receives nothing this long fails

// Every request to a holder has a deadline from when it was made, which no
// byte extends (a holder trickling one byte a second must not hold a fetch):
// a piece list or /have must be complete within `list_ms`; a piece within
// `piece_floor_ms` plus its length at `min_rate` bytes/s. Time a request
// spends paused by the download limit is added to its deadline. A piece
// list that misses it drops the holder; a piece that misses it is asked of
// the others and counts as a strike against the holder (kMaxStrikes drop it).
// Defaults: 30 s and 8 KiB/s (64 kbit/s), so a 256 KiB piece has 62 s and a
// 16 MiB piece about 35 min; peerd --holder-deadline sets the 30 s.
struct RequestDeadlines {
    std::uint64_t list_ms = 30'000;
    std::uint64_t piece_floor_ms = 30'000;
    std::uint64_t min_rate = 8 * 1024;   // bytes/s, > 0
};
// The deadline, in ms from its start, of a piece request of `length` bytes.
std::uint64_t piece_deadline_ms(std::uint64_t length, const RequestDeadlines& d);
// A source that sends nothing this long while it has requests outstanding is
// stalled: its requests go to the other sources, and it keeps one at a time
// until it sends again.
inline constexpr std::uint64_t kSourceStallMs = 5'000;
inline constexpr std::uint64_t kProgressIntervalMs = 250;
// After this long, an idle source may duplicate a request still running elsewhere.
inline constexpr std::uint64_t kEndgameAfterMs = 1'000;
// Newly verified pieces are made durable (fdatasync) and reported at most this often.
inline constexpr std::uint64_t kDurableIntervalMs = 1'000;
// A partial holder's /have is asked again this often (If-None-Match: a 304
// when nothing changed), and at once when it has nothing left we want.
inline constexpr std::uint64_t kHaveRefreshMs = 1'000;
// ... but not more often than this when it runs out of work.
inline constexpr std::uint64_t kHaveMinIntervalMs = 200;

// How a source's connections are made (issue 11, docs/protocol.md §7.10–§7.12,
// §15): dialled by us (direct), dialled by the holder to our upload port
// (reverse: a connect-back), or two outbound connections joined by the
// tracker's relay (relay). Shown per source in progress and `peerctl transfers`.
enum class Via { direct, reverse, relay };
std::string_view via_name(Via via);   // "direct", "reverse", "relay"

struct Source {
    std::string peer;
    std::string host;  // IPv4 or IPv6 literal, or a DNS name (see base_url)
    std::uint16_t port = 0;
    // A partial holder (issue 10): it serves only the pieces its /have
    // lists, and answers "not here yet" for others (docs/protocol.md §11.8).
    bool partial = false;
    // A reverse or relay source (issue 11): its connections are handed over
    // (handed_sockets.hpp: the holder's connect-backs, or relay circuits),
    // never dialled; one request at a time over each. Null exactly when `via`
    // is direct: dialled at host:port.
    std::shared_ptr<HandedSockets> handed = nullptr;
    Via via = Via::direct;
};

struct FetchRequest {
    std::string name;
    std::string id;  // content id, hex
    std::uint64_t size = 0;        // bytes
    std::uint64_t piece_size = 0;  // bytes
    std::vector<Source> sources;
    std::string destination;  // final path
    bool force = false;       // overwrite an existing destination
    // Absolute path of the partial file, chosen by the caller (partial_path_for).
    std::string partial_path;
    // The piece list, already checked against `id` by the caller (it is
    // checked again: a list that does not hash to `id` is bad_request). Empty:
    // the engine asks the sources for it.
    std::vector<proto::Digest> pieces;
    // Pieces the caller's record says are verified and durable in the partial
    // file: size 0 (none) or exactly the piece count. They are re-verified.
    proto::Bitfield have;
    // The partial file exists but no record does: verify every piece in it
    // and keep the good ones.
    bool adopt = false;
    // Sources asked at once: the first ones in `sources` not dropped; when one
    // is dropped, the next takes its place. 0 = no bound.
    unsigned max_sources = 0;
    // Where the engine counts bytes received, pieces verified and rejected,
    // sources dropped and download rate-limit waits (/metrics); null: not
    // counted. Must outlive the Fetch (a destroyed Fetch counts nothing more).
    PeerMetrics* metrics = nullptr;
    RequestDeadlines deadlines;
    // A direct source whose address cannot be connected to (refused, connect
    // timeout, no route: Verdict::unreachable; not an HTTP error, not bad
    // bytes) is offered here, with why in words, before it is dropped (issue
    // 11): a source for the same holder by another way (reverse or relay:
    // `handed` set, the same peer) takes its place, keeping what it
    // contributed, and the function logs it; with none (or no function) it
    // is dropped as before, `why_not` added to its reason. Called on the
    // loop, at most once per source (the one that takes its place is never
    // direct).
    struct Fallback {
        std::optional<Source> source;
        std::string why_not;   // no source: why not, one clause ("" adds nothing)
    };
    std::function<Fallback(const Source& unreachable, const std::string& why)> fallback;
};


struct SourceProgress {
    std::string peer;
    std::uint64_t bytes = 0;  // verified bytes this source contributed
    double rate = 0;          // verified bytes/s over the last couple of seconds
    bool dropped = false;
    bool stalled = false;  // nothing received for kSourceStallMs with requests outstanding
    std::string why;       // why it was dropped
    Via via = Via::direct;
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

// How DoneFn's error says why the fetch ended (the partial file stays in every case):
// - cancelled(): cancel() was called;
// - no_source_left(): every source was dropped (their reasons are in the
//   message); a new Fetch with fresh sources and the last DurableFn's bitfield
//   continues where this one stopped;
// - anything else: bad_request (the request, or the destination exists, or is
//   a directory), internal (an I/O error, with errno's text).
bool cancelled(const proto::Error& e);
bool no_source_left(const proto::Error& e);

class Fetch {
public:
    using ProgressFn = std::function<void(const FetchProgress&)>;  // ~4×/s while running
    // Once, when a source's piece list has been accepted (not when the request
    // carried it): the owner persists it.
    using PieceListFn = std::function<void(const proto::PieceList&)>;
    // Every piece verified and durable in the partial file so far (the whole
    // bitfield, not a delta), after each fdatasync: after the start's
    // re-verification (even if it kept nothing), at most every
    // kDurableIntervalMs while pieces arrive, and once at the end (before
    // DoneFn) if anything is new.
    using DurableFn = std::function<void(const proto::Bitfield&)>;
    // Exactly once, last; the owner may destroy the Fetch inside it. Every
    // work item is back by then: the partial file may be removed.
    using DoneFn = std::function<void(proto::Result<FetchResult>)>;
    // Called on the loop thread. Only DoneFn may destroy the Fetch; the
    // others may call cancel().
    struct Callbacks {
        ProgressFn progress;
        PieceListFn piece_list;
        DurableFn durable;
        DoneFn done;
    };

    // `buffers`: where piece buffers come from (shared by the daemon's
    // fetches; null: a pool of this fetch's own). `download_limit`: the bucket
    // every received byte of a piece is taken from (shared by the daemon's
    // fetches; null: no limit); it must outlive the Fetch, not its engine (a
    // destroyed Fetch receives nothing more). When it runs dry the transfer
    // is paused (CURL_WRITEFUNC_PAUSE) and resumed from a timer after
    // wait_ns(); one write (at most 64 KiB) per fetch may go ahead on credit,
    // paid back before the next.
    Fetch(uv_loop_t* loop, const common::Log& log, FetchRequest request, Callbacks callbacks,
          std::shared_ptr<BufferPool> buffers = nullptr,
          common::TokenBucket* download_limit = nullptr);
    // The abrupt pause: stops every transfer, keeps the partial file; no
    // callback is called any more (pieces verified since the last DurableFn
    // are not reported). Work items still in the pool finish there and are
    // freed later.
    ~Fetch();
    Fetch(const Fetch&) = delete;
    Fetch& operator=(const Fetch&) = delete;

    void start();
    // The graceful pause (and the first step of a cancel for good: then
    // remove_partial() in DoneFn). Stops every transfer; pieces verified but
    // not yet reported are made durable and reported through DurableFn; then
    // DoneFn gets cancelled() (on a later loop turn). Once every piece is
    // verified and the file is being renamed into place, it is too late: the
    // fetch completes and DoneFn reports the outcome.
    void cancel();
    // More holders of the same content (the owner looked the name up again
    // while the fetch runs: fetchers that became partial holders, say).
    // Sources already known by peer name are skipped, except one dropped for
    // a 404 (it may have published the file since), taken back at most
    // kMaxReadmissions times; the rest are asked like the first ones (a
    // partial one by its /have first). Ignored once the fetch is finalizing
    // or over.
    void add_sources(const std::vector<Source>& sources);

private:
    class Engine;
    Engine* engine_;  // deletes itself once detached and its last work item is back
};

}  // namespace peershare::peerd
