// daemon/fetch/engine.cpp — the download engine: sources and their
// requests, the work items (prepare, re-verify, verify and write, sync,
// finalize) and the phases of a fetch. Which piece comes next is the
// picker's (piece_picker.hpp), what an answer means the HTTP source's
// (http_source.hpp), the file's own I/O the partial file's (partial_file.hpp).
//
// Lifecycle of a fetch (phases): idle → preparing (worker: check the
// destination, create or open and size the partial file) → running (piece
// lists, re-verification of the pieces claimed, then pieces) → finalizing
// (worker: fsync, rename) → finishing (waits for the work items still in the
// pool, a last fdatasync if pieces are unreported, then delivers the result on
// a fresh loop turn) → done. Any failure jumps to finishing; the partial file
// stays.
//
// The engine is separate from the Fetch object so the Fetch can be destroyed
// at any time: the engine then detaches, stops every transfer, and deletes
// itself when its last work item is back.
#include "daemon/fetch/engine.hpp"

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <utility>

#include "common/net.hpp"
#include "common/uv.hpp"
#include "daemon/fetch/curl_multi.hpp"
#include "daemon/fetch/http_source.hpp"
#include "daemon/fetch/piece_picker.hpp"
#include "proto/content.hpp"
#include "proto/hex.hpp"
#include "proto/http.hpp"
#include "proto/limits.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

std::uint64_t piece_deadline_ms(std::uint64_t length, const RequestDeadlines& d) {
    assert(d.min_rate > 0);
    return d.piece_floor_ms + length * 1000 / d.min_rate;
}

using proto::Error;
using proto::ErrorCode;
using Buffer = BufferPool::Buffer;

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kRateSamples = 9;             // 2 s of progress ticks
constexpr std::uint64_t kMaxErrorBody = 64 * 1024;  // body of an error answer we read and drop
// curl's receive buffer. Larger means fewer recv calls, but curl allocates it
// per transfer, and from 128 KiB up glibc hands it back to the kernel each
// time: measured, 64 KiB costs the least CPU per GiB (no page faults).
constexpr long kCurlBufferSize = 64 * 1024;
constexpr std::size_t kListBytesPerPiece = 80;  // a hex hash, quotes, comma, some indentation
constexpr std::size_t kListOverhead = 64 * 1024;
// Pieces per re-verification work item: about this many bytes, so the pool's
// threads share the work and other work items are not held up for long.
constexpr std::uint64_t kCheckBytesPerJob = 32ull << 20;

std::string errno_text(int err) { return std::strerror(err); }

// A cancel and "no source left" share the code; the message tells them apart.
std::string seconds(std::uint64_t ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%.10g", static_cast<double>(ms) / 1000.0);
    return text;
}

Error cancelled_error() { return Error{ErrorCode::unavailable, std::string(kCancelledMessage)}; }

// Bytes per second over the last kRateSamples samples.
class RateWindow {
public:
    double sample(std::uint64_t now_ms, std::uint64_t bytes) {
        samples_.emplace_back(now_ms, bytes);
        if (samples_.size() > kRateSamples) samples_.pop_front();
        const auto [t0, b0] = samples_.front();
        if (now_ms <= t0) return 0;
        return static_cast<double>(bytes - b0) * 1000.0 / static_cast<double>(now_ms - t0);
    }

private:
    std::deque<std::pair<std::uint64_t, std::uint64_t>> samples_;
};

// --- work items: each owns what it carries; results go back to the loop ---

struct PrepareJob {
    uv_work_t work{};
    void* engine = nullptr;  // the Fetch::Engine that queued it
    std::string destination, partial;
    bool force = false;
    std::uint64_t size = 0;
    std::unique_ptr<PartialFile> file;  // out
    std::optional<Error> error;         // out
};

struct CheckJob {
    uv_work_t work{};
    void* engine = nullptr;
    PartialFile* file = nullptr;  // the engine's
    std::uint64_t size = 0, piece_size = 0;
    std::vector<std::uint64_t> pieces;
    std::vector<proto::Digest> expected;  // one per piece
    std::vector<bool> good;               // out: one per piece
    int error = 0;                        // out: errno of a failed read
};

struct VerifyJob {
    uv_work_t work{};
    void* engine = nullptr;
    std::uint64_t piece = 0;
    std::size_t source = 0;
    Buffer buffer;
    std::uint64_t offset = 0, length = 0;
    proto::Digest expected{};
    PartialFile* file = nullptr;  // the engine's
    bool match = false;           // out
    int error = 0;                // out: errno of a failed write
};

// Makes everything written to the partial file so far durable.
struct SyncJob {
    uv_work_t work{};
    void* engine = nullptr;
    PartialFile* file = nullptr;  // the engine's
    proto::Bitfield written;      // pieces written before the fdatasync began
    int error = 0;                // out
};

struct FinalizeJob {
    uv_work_t work{};
    void* engine = nullptr;
    std::unique_ptr<PartialFile> file;  // closed (and renamed) here
    std::string destination;
    bool force = false;
    bool synced = false;         // out: every byte of the partial file is durable
    std::optional<Error> error;  // out; on error the partial file stays
};

template <class Job>
Job* job_of(uv_work_t* work) {
    return static_cast<Job*>(work->data);
}

// Queues `job` in the pool: `run` there, then `back` on the loop with the job.
template <class Job, class Run, class Back>
void queue(uv_loop_t* loop, std::unique_ptr<Job> job, Run, Back) {
    job->work.data = job.get();
    uv_queue_work(
        loop, &job.release()->work, [](uv_work_t* w) { Run{}(*job_of<Job>(w)); },
        [](uv_work_t* w, int) {
            std::unique_ptr<Job> owned(job_of<Job>(w));
            Back{}(*owned);
        });
}

}  // namespace

std::string_view via_name(Via via) {
    switch (via) {
        case Via::direct: return "direct";
        case Via::reverse: return "reverse";
        case Via::relay: return "relay";
    }
    return "direct";
}

bool cancelled(const proto::Error& e) {
    return e.code == ErrorCode::unavailable && e.message == kCancelledMessage;
}

bool no_source_left(const proto::Error& e) {
    return e.code == ErrorCode::unavailable && e.message != kCancelledMessage;
}

// --- the engine ---

class Fetch::Engine {
public:
    Engine(uv_loop_t* loop, const common::Log& log, FetchRequest request, Callbacks callbacks,
           std::shared_ptr<BufferPool> buffers, common::TokenBucket* download_limit);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void start();
    void cancel();
    void detach();  // the Fetch is gone: stop, free when the pool is done
    void add_sources(const std::vector<Source>& sources);

    void on_prepared(PrepareJob& job);
    void on_checked(CheckJob& job);
    void on_verified(VerifyJob& job);
    void on_synced(SyncJob& job);
    void on_finalized(FinalizeJob& job);

private:
    enum class Phase { idle, preparing, running, finalizing, finishing, done };
    enum class Stage { listing, ready, dropped };
    static constexpr std::size_t kNotPicking = SIZE_MAX;

    struct SourceState {
        Source source;
        std::string file_url, list_url, have_url;
        Stage stage = Stage::listing;
        bool have_in_flight = false;     // a /have request runs (partial holders)
        std::string have_etag;           // of the last /have, for If-None-Match
        std::uint64_t have_asked_ms = 0; // loop time the last /have went out
        std::size_t picker_index = kNotPicking;  // in picker_, once ready and picking
        bool list_in_flight = false;
        unsigned in_flight = 0;  // piece requests
        unsigned depth = kRequestsPerSource;   // piece requests it may have in flight (next_request_depth)
        unsigned strikes = 0;
        unsigned busy = 0;               // 503s in a row
        std::uint64_t paused_until = 0;  // loop time, ms
        std::uint64_t last_data_ms = 0;  // loop time: bytes last came, or its first request went out
        bool stalled = false;
        std::uint64_t verified = 0;
        double rate = 0;
        RateWindow window;
        std::string why;
        bool readmissible = false;  // dropped for a 404: a later lookup may take it back
        unsigned readmitted = 0;    // times taken back (kMaxReadmissions)
    };

    struct Request {
        Engine* engine = nullptr;
        CURL* easy = nullptr;
        std::size_t source = 0;
        bool listing = false;
        bool have = false;  // a /have request
        curl_slist* headers = nullptr;   // If-None-Match of a /have; freed with the request
        std::uint64_t piece = 0, offset = 0, length = 0, received = 0;
        std::uint64_t started_ms = 0;   // loop time the piece was asked for
        std::uint64_t allowed_ms = 0;   // from its start to its deadline (RequestDeadlines)
        std::uint64_t deadline_ms = 0;  // loop time it must be complete by
        std::uint64_t paused_ms = 0;    // loop time the download limit paused it (while rate_paused)
        bool whole_file = false;  // the range is the whole file: a 200 is as good as a 206
        Buffer buffer;
        std::string body;  // piece list
        std::size_t body_cap = 0;
        long status = 0;
        bool overflow = false;        // more bytes than asked for
        std::uint64_t discarded = 0;  // bytes of an error answer
        char error[CURL_ERROR_SIZE]{};
        bool rate_paused = false;  // paused by the download limit: not a stall
        std::string refused;  // why the address was not connected to (refused_address)
        common::UniqueFd handed;      // a connect-back, until it replaces curl_fd (on_new_socket)
        curl_socket_t curl_fd = CURL_SOCKET_BAD;   // the socket open_socket gave curl for it
        bool no_socket = false;       // a reverse source had none to give
    };

    // requests
    static size_t on_piece_data(char* data, size_t size, size_t count, void* userp);
    static size_t on_list_data(char* data, size_t size, size_t count, void* userp);
    static curl_socket_t open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address);
    void on_new_socket(CURL* easy, curl_socket_t s);
    Request* new_request(std::size_t source);
    bool add_request(Request* r);
    std::unique_ptr<Request> take_request(Request* r);
    void recycle(std::unique_ptr<Request> r);
    void start_list(std::size_t source);
    void start_have(std::size_t source);
    void on_have_done(Request& r, const Verdict& v);
    void refresh_haves(bool idle_only);
    void start_piece(std::size_t source, std::uint64_t piece, Buffer buffer);
    void on_request_done(CURL* easy, CURLcode rc);
    Answer answer_of(const Request& r, CURLcode rc) const;
    void on_list_done(Request& r, const Verdict& v);
    void on_piece_done(Request& r, const Verdict& v);
    void abort_request(Request* r);
    void teardown_transfers();

    // sources
    SourceState source_state(const Source& src) const;
    void apply(std::size_t source, const Verdict& v);
    void strike(std::size_t source, const std::string& why);
    // `readmissible`: for a 404, which a later add_sources listing it may undo.
    void drop(std::size_t source, const std::string& why, bool readmissible = false);
    // A direct source that cannot be connected to: replaced in place by the
    // one req_.fallback gives for the same holder, or dropped with the
    // fallback's reason for giving none (true); false: no fallback to ask.
    bool fall_back(std::size_t source, const std::string& why);
    void make_ready(std::size_t source);
    void fail_if_no_source();
    Error no_source_error() const;
    void check_stalls();
    bool pay_for(Request& r, std::size_t bytes);
    void resume_paused();
    std::vector<bool> allowed_sources() const;
    void received_from(std::size_t source);

    // pieces
    void accept_list(std::vector<proto::Digest> pieces);
    void schedule();
    void wake_for_paused(std::uint64_t now);
    Buffer take_buffer();
    void release_buffer(Buffer b);
    void piece_done(std::uint64_t piece);

    // work items
    void start_checks();
    void maybe_sync(bool now);
    void queue_sync();
    void maybe_finalize();
    void finalize();
    bool back_from_pool();  // false: the engine is detached or finishing, the caller stops

    // the end
    void fail(Error error);
    void succeed();
    void maybe_deliver();
    void deliver();
    void tick();
    void sample_rates();
    FetchProgress snapshot() const;
    std::string display_name() const;

    uv_loop_t* loop_;
    const common::Log& log_;
    FetchRequest req_;
    ProgressFn progress_;
    PieceListFn piece_list_;
    DurableFn durable_fn_;
    DoneFn done_;
    std::shared_ptr<BufferPool> pool_;
    common::TokenBucket* limit_;  // null: none
    std::uint64_t debt_ = 0;      // bytes received on credit from limit_

    Phase phase_ = Phase::idle;
    bool detached_ = false;
    unsigned pending_work_ = 0;
    std::optional<proto::Result<FetchResult>> result_;
    Clock::time_point started_{};

    CurlMulti multi_;
    std::vector<std::unique_ptr<Request>> requests_;  // added to multi_
    std::vector<std::unique_ptr<Request>> idle_;      // easy handles kept for reuse
    common::Timer tick_timer_;
    common::Timer retry_timer_;
    common::Timer finish_timer_;
    common::Timer limit_timer_;  // resumes transfers paused by limit_

    std::vector<SourceState> sources_;
    std::string listed_by_;  // peer whose piece list was accepted first

    bool listed_ = false;
    std::vector<proto::Digest> expected_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::optional<PiecePicker> picker_;  // once the piece list is known
    std::optional<PendingConnectTarget> pending_target_;  // once a reverse source connects
    std::uint64_t bytes_done_ = 0;
    std::uint64_t last_verified_ms_ = 0;
    RateWindow window_;
    double rate_ = 0;

    std::unique_ptr<PartialFile> file_;  // while running
    unsigned checks_pending_ = 0;        // re-verification work items in the pool
    std::uint64_t checks_started_ms_ = 0;   // uv_now when they were queued
    std::uint64_t checked_pieces_ = 0, checked_bad_ = 0;
    bool report_due_ = false;            // DurableFn owes a report even if nothing is new
    proto::Bitfield written_;            // verified pieces whose write has completed
    proto::Bitfield durable_;            // written pieces covered by a completed fdatasync
    bool sync_in_flight_ = false;
    bool final_synced_ = false;       // the last sync before DoneFn is queued
    std::uint64_t last_sync_ms_ = 0;  // loop time a sync was last queued

    unsigned buffers_out_ = 0;
    unsigned buffer_budget_ = 0;
};

Fetch::Engine::Engine(uv_loop_t* loop, const common::Log& log, FetchRequest request,
                      Callbacks callbacks, std::shared_ptr<BufferPool> buffers,
                      common::TokenBucket* download_limit)
    : loop_(loop),
      log_(log),
      req_(std::move(request)),
      progress_(std::move(callbacks.progress)),
      piece_list_(std::move(callbacks.piece_list)),
      durable_fn_(std::move(callbacks.durable)),
      done_(std::move(callbacks.done)),
      pool_(buffers ? std::move(buffers)
                    : std::make_shared<BufferPool>(kMaxBuffers * proto::kMaxPieceSize)),
      limit_(download_limit),
      multi_(
          loop, [this](CURL* easy, CURLcode rc) { on_request_done(easy, rc); },
          [this](const std::string& why) { fail(Error{ErrorCode::internal, why}); }),
      tick_timer_(loop),
      retry_timer_(loop),
      finish_timer_(loop),
      limit_timer_(loop) {
    for (auto* t : {&tick_timer_, &retry_timer_, &finish_timer_, &limit_timer_})
        t->get()->data = this;
    multi_.on_new_socket([this](CURL* easy, curl_socket_t s) { on_new_socket(easy, s); });
}

Fetch::Engine::~Engine() { teardown_transfers(); }

std::string Fetch::Engine::display_name() const {
    return req_.name.empty() ? req_.id.substr(0, 12) : req_.name;
}

// --- start, cancel, detach ---

void Fetch::Engine::start() {
    if (phase_ != Phase::idle) return;
    started_ = Clock::now();
    last_verified_ms_ = uv_now(loop_);
    phase_ = Phase::preparing;  // from here on, fail() cleans up and delivers

    if (auto why = proto::check_content_id(req_.id))
        return fail(Error{ErrorCode::bad_request, *why});
    if (req_.piece_size < proto::kMinPieceSize || req_.piece_size > proto::kMaxPieceSize ||
        req_.size > proto::kMaxFileSize) {
        return fail(
            Error{ErrorCode::bad_request, "invalid size or piece size for " + display_name()});
    }
    if (req_.destination.empty() || req_.destination.back() == '/') {
        return fail(Error{ErrorCode::bad_request, "not a file path: '" + req_.destination + "'"});
    }
    if (req_.partial_path.empty() || req_.partial_path.front() != '/' ||
        req_.partial_path.back() == '/' || req_.partial_path == req_.destination) {
        return fail(Error{ErrorCode::bad_request,
                          "not a partial file path: '" + req_.partial_path + "'"});
    }
    const auto count = proto::piece_count(req_.size, req_.piece_size);
    if (req_.have.size() != 0 && req_.have.size() != count) {
        return fail(Error{ErrorCode::bad_request,
                          "the bitfield of " + display_name() + " has " +
                              std::to_string(req_.have.size()) + " pieces, not " +
                              std::to_string(count)});
    }
    if (!req_.pieces.empty()) {
        const proto::PieceList list{req_.size, req_.piece_size, req_.pieces};
        if (req_.pieces.size() != count || proto::to_hex(list.content_id()) != req_.id) {
            return fail(Error{ErrorCode::bad_request,
                              "the piece list given for " + display_name() +
                                  " does not match its content id"});
        }
    }
    if (req_.sources.empty() && req_.pieces.empty())
        return fail(Error{ErrorCode::not_found, "no source offers " + display_name()});

    for (const auto& src : req_.sources) sources_.push_back(source_state(src));
    // Nobody to ask for the piece list: fail before touching the disk.
    if (req_.pieces.empty() && std::all_of(sources_.begin(), sources_.end(), [](const auto& x) {
            return x.stage == Stage::dropped;
        }))
        return fail(no_source_error());
    buffer_budget_ = static_cast<unsigned>(
        std::min<std::size_t>(kMaxBuffers, 2 * kRequestsPerSource * sources_.size()));
    buffer_budget_ = std::max(buffer_budget_, 1u);

    uv_timer_start(
        tick_timer_.get(),
        [](uv_timer_t* t) {
            if (t->data) static_cast<Engine*>(t->data)->tick();
        },
        kProgressIntervalMs, kProgressIntervalMs);

    auto job = std::make_unique<PrepareJob>();
    job->engine = this;
    job->destination = req_.destination;
    job->partial = req_.partial_path;
    job->force = req_.force;
    job->size = req_.size;
    ++pending_work_;
    queue(
        loop_, std::move(job),
        [](PrepareJob& j) {
            auto file = PartialFile::prepare(j.destination, j.force, j.partial, j.size);
            if (file) {
                j.file = std::move(*file);
            } else {
                j.error = file.error();
            }
        },
        [](PrepareJob& j) { static_cast<Engine*>(j.engine)->on_prepared(j); });
}

Fetch::Engine::SourceState Fetch::Engine::source_state(const Source& src) const {
    assert((src.handed != nullptr) == (src.via != Via::direct));
    SourceState s;
    s.source = src;
    s.depth = src.handed ? 1 : initial_request_depth(src.partial);
    if (auto base = base_url(src.host, src.port)) {
        s.file_url = *base + proto::file_path(req_.id);
        s.list_url = *base + proto::pieces_path(req_.id);
        s.have_url = *base + proto::have_path(req_.id);
    } else {
        s.stage = Stage::dropped;
        s.why = "not a host name or IP address and port: " + src.host + " port " + std::to_string(src.port);
        if (req_.metrics) req_.metrics->count_dropped_source(s.why);
    }
    return s;
}

void Fetch::Engine::add_sources(const std::vector<Source>& sources) {
    if (phase_ != Phase::preparing && phase_ != Phase::running) return;
    bool added = false;
    for (const auto& src : sources) {
        const auto known = std::find_if(sources_.begin(), sources_.end(),
                                        [&](const SourceState& s) { return s.source.peer == src.peer; });
        std::size_t i = sources_.size();
        if (known == sources_.end()) {
            sources_.push_back(source_state(src));
            log_.info("fetch " + display_name() + ": new source " + src.peer + (src.partial ? " (partial)" : ""));
        } else if (known->stage == Stage::dropped && may_readmit(known->readmissible, known->readmitted)) {
            // Dropped for a 404 and listed again: it may have published the file since.
            // Its requests were aborted when it was dropped; it starts afresh.
            i = static_cast<std::size_t>(known - sources_.begin());
            SourceState fresh = source_state(src);
            fresh.verified = known->verified;
            fresh.readmitted = known->readmitted + 1;
            *known = std::move(fresh);
            log_.info("fetch " + display_name() + ": source " + src.peer + " listed again after a 404, asked again");
        } else {
            continue;
        }
        added = true;
        // The piece list is known: no need to ask this one for it.
        if (phase_ == Phase::running && listed_ && sources_[i].stage == Stage::listing) make_ready(i);
    }
    if (!added) return;
    buffer_budget_ = static_cast<unsigned>(
        std::max<std::size_t>(buffer_budget_, std::min<std::size_t>(kMaxBuffers, 2 * kRequestsPerSource * sources_.size())));
    schedule();
}

void Fetch::Engine::cancel() {
    if (phase_ == Phase::idle) phase_ = Phase::preparing;  // not started: still answer once
    if (phase_ == Phase::preparing || phase_ == Phase::running) fail(cancelled_error());
}

void Fetch::Engine::detach() {
    detached_ = true;
    progress_ = nullptr;
    piece_list_ = nullptr;
    durable_fn_ = nullptr;
    done_ = nullptr;
    teardown_transfers();
    multi_.shut_down();
    limit_ = nullptr;  // the Fetch's owner may go now; nothing is received any more
    for (auto* t : {&tick_timer_, &retry_timer_, &finish_timer_, &limit_timer_}) t->close();
    if (pending_work_ == 0) delete this;
}

// --- requests ---

Fetch::Engine::Request* Fetch::Engine::new_request(std::size_t source) {
    std::unique_ptr<Request> r;
    if (!idle_.empty()) {
        r = std::move(idle_.back());
        idle_.pop_back();
    } else {
        r = std::make_unique<Request>();
        r->easy = curl_easy_init();
        if (!r->easy) return nullptr;
        CURL* e = r->easy;
        curl_easy_setopt(e, CURLOPT_PRIVATE, r.get());
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kCurlBufferSize);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, kStallTimeoutS);
        curl_easy_setopt(e, CURLOPT_PROXY, "");  // peers are direct: ignore http_proxy
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
        curl_easy_setopt(e, CURLOPT_USERAGENT, "peershare");
        // Names resolve to anything: each address is checked before connecting.
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r.get());
    }
    CURL* easy = r->easy;
    *r = Request{};
    r->engine = this;
    r->easy = easy;
    r->source = source;
    r->allowed_ms = req_.deadlines.list_ms;   // start_piece sets a piece's
    r->deadline_ms = uv_now(loop_) + r->allowed_ms;
    auto& s = sources_[source];
    if (s.in_flight == 0 && !s.list_in_flight) s.last_data_ms = uv_now(loop_);  // the clock starts now
    requests_.push_back(std::move(r));
    return requests_.back().get();
}

bool Fetch::Engine::add_request(Request* r) {
    if (multi_.add(r->easy)) return true;
    recycle(take_request(r));
    fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    return false;
}

std::unique_ptr<Fetch::Engine::Request> Fetch::Engine::take_request(Request* r) {
    auto it = std::find_if(requests_.begin(), requests_.end(),
                           [r](const auto& p) { return p.get() == r; });
    assert(it != requests_.end());
    std::unique_ptr<Request> owned = std::move(*it);
    requests_.erase(it);
    return owned;
}

void Fetch::Engine::recycle(std::unique_ptr<Request> r) {
    if (r->buffer) release_buffer(std::move(r->buffer));
    if (r->headers) {
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, nullptr);
        curl_slist_free_all(std::exchange(r->headers, nullptr));
    }
    if (multi_.is_open()) {
        r->body = {};
        idle_.push_back(std::move(r));
    } else {
        curl_easy_cleanup(r->easy);
    }
}

void Fetch::Engine::start_list(std::size_t source) {
    auto& s = sources_[source];
    Request* r = new_request(source);
    if (!r) return fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    r->listing = true;
    r->body_cap =
        proto::piece_count(req_.size, req_.piece_size) * kListBytesPerPiece + kListOverhead;
    curl_easy_setopt(r->easy, CURLOPT_URL, s.list_url.c_str());
    curl_easy_setopt(r->easy, CURLOPT_RANGE, nullptr);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_list_data);
    s.list_in_flight = true;
    if (!add_request(r)) s.list_in_flight = false;
}

// Asks a partial holder what it has (If-None-Match its last answer's ETag).
void Fetch::Engine::start_have(std::size_t source) {
    auto& s = sources_[source];
    Request* r = new_request(source);
    if (!r) return fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    r->have = true;
    r->body_cap = (proto::piece_count(req_.size, req_.piece_size) + 7) / 8;
    if (!s.have_etag.empty()) {
        r->headers = curl_slist_append(nullptr, ("If-None-Match: " + s.have_etag).c_str());
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, s.have_url.c_str());
    curl_easy_setopt(r->easy, CURLOPT_RANGE, nullptr);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_list_data);
    s.have_in_flight = true;
    s.have_asked_ms = uv_now(loop_);
    if (!add_request(r)) s.have_in_flight = false;
}

void Fetch::Engine::start_piece(std::size_t source, std::uint64_t piece, Buffer buffer) {
    auto& s = sources_[source];
    Request* r = new_request(source);
    if (!r) {
        release_buffer(std::move(buffer));
        picker_->request_ended(piece, s.picker_index);
        return fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    }
    r->piece = piece;
    r->offset = piece * req_.piece_size;
    r->length = proto::piece_length(req_.size, req_.piece_size, piece);
    r->whole_file = r->offset == 0 && r->length == req_.size;
    r->started_ms = uv_now(loop_);
    r->allowed_ms = piece_deadline_ms(r->length, req_.deadlines);
    r->deadline_ms = r->started_ms + r->allowed_ms;
    r->buffer = std::move(buffer);
    const std::string range =
        std::to_string(r->offset) + "-" + std::to_string(r->offset + r->length - 1);
    curl_easy_setopt(r->easy, CURLOPT_URL, s.file_url.c_str());
    curl_easy_setopt(r->easy, CURLOPT_RANGE, range.c_str());  // curl copies it
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_piece_data);
    ++s.in_flight;
    if (!add_request(r)) {
        assert(s.in_flight > 0);
        --s.in_flight;
        picker_->request_ended(piece, s.picker_index);
    }
}

size_t Fetch::Engine::on_piece_data(char* data, size_t size, size_t count, void* userp) {
    auto* r = static_cast<Request*>(userp);
    const std::size_t n = size * count;
    if (r->status == 0) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    const bool body = r->status == 206 || (r->status == 200 && r->whole_file);
    if (body && n > 0 && !r->engine->pay_for(*r, n)) return CURL_WRITEFUNC_PAUSE;
    if (n > 0) r->engine->received_from(r->source);
    if (body) {
        if (n > r->length - r->received) {
            r->overflow = true;
            return 0;  // aborts the transfer
        }
        std::memcpy(r->buffer.get() + r->received, data, n);
        r->received += n;
        return n;
    }
    // An error answer (or a 200 with the whole file): read a little to keep
    // the connection, never much.
    r->discarded += n;
    return r->discarded > kMaxErrorBody || r->status == 200 ? 0 : n;
}

size_t Fetch::Engine::on_list_data(char* data, size_t size, size_t count, void* userp) {
    auto* r = static_cast<Request*>(userp);
    const std::size_t n = size * count;
    if (n > 0) r->engine->received_from(r->source);
    if (r->status == 0) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status != 200) {
        r->discarded += n;
        return r->discarded > kMaxErrorBody ? 0 : n;
    }
    if (n > r->body_cap - r->body.size()) {
        r->overflow = true;
        return 0;
    }
    r->body.append(data, n);
    return n;
}

curl_socket_t Fetch::Engine::open_socket(void* clientp, curlsocktype, curl_sockaddr* address) {
    auto* r = static_cast<Request*>(clientp);
    if (const auto& handed = r->engine->sources_[r->source].source.handed) {
        // A reverse source (handed_sockets.hpp): curl connects a fresh socket
        // to the pending-connect target; on_new_socket swaps the connect-back in.
        Engine& e = *r->engine;
        if (!e.pending_target_) {
            auto target = PendingConnectTarget::open();
            if (!target) {
                r->refused = target.error().message;
                return CURL_SOCKET_BAD;
            }
            e.pending_target_.emplace(std::move(*target));
        }
        common::UniqueFd fd(handed->take(uv_now(e.loop_)));
        r->no_socket = !fd;
        if (!fd) return CURL_SOCKET_BAD;
        const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) return CURL_SOCKET_BAD;
        const auto& to = e.pending_target_->address();
        static_assert(sizeof(sockaddr_in) <= sizeof(sockaddr));
        address->family = AF_INET;
        address->socktype = SOCK_STREAM;
        address->protocol = 0;
        address->addrlen = sizeof to;
        std::memcpy(&address->addr, &to, sizeof to);
        r->handed = std::move(fd);
        r->curl_fd = s;
        return s;   // curl owns (and closes) it
    }
    if (auto why = common::refused_address(&address->addr)) {
        r->refused = *why;
        return CURL_SOCKET_BAD;  // curl tries the next address, or fails to connect
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// curl's connect of a reverse request's socket is in progress (towards the
// pending-connect target): the connect-back takes the descriptor's place, and
// curl finds it connected when it checks (handed_sockets.hpp).
void Fetch::Engine::on_new_socket(CURL* easy, curl_socket_t s) {
    char* priv = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    auto* r = reinterpret_cast<Request*>(priv);
    if (!r || !r->handed || r->curl_fd != s) return;
    if (::dup2(r->handed.get(), s) < 0) log_.warning(std::string("cannot use a connect-back: ") + std::strerror(errno));
    r->handed.reset();
}

Answer Fetch::Engine::answer_of(const Request& r, CURLcode rc) const {
    Answer a;
    if (r.no_socket && rc != CURLE_OK) {
        a.awaiting_connect_back = true;
        a.connect_back_problem = sources_[r.source].source.handed->problem(uv_now(loop_));
    }
    a.listing = r.listing;
    a.curl_code = rc;
    a.curl_error = r.refused.empty() ? std::string(r.error) : "refused to connect: " + r.refused;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(r.easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    a.connected = connect_us > 0;
    a.status = r.status;
    curl_off_t retry_after_s = 0;
    curl_easy_getinfo(r.easy, CURLINFO_RETRY_AFTER, &retry_after_s);
    a.retry_after_s = retry_after_s;
    a.overflow = r.overflow;
    a.piece = r.piece;
    a.received = r.received;
    a.expected = r.length;
    a.whole_file = r.whole_file;
    a.busy_before = sources_[r.source].busy;
    a.have = r.have;
    if (r.status == 503 && !r.listing && !r.have) {
        curl_header* missing = nullptr;
        a.not_here = curl_easy_header(r.easy, std::string(proto::kNotHereYetHeader).c_str(), 0, CURLH_HEADER, -1,
                                      &missing) == CURLHE_OK;
    }
    return a;
}

void Fetch::Engine::on_request_done(CURL* easy, CURLcode rc) {
    char* priv = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    multi_.remove(easy);
    auto r = take_request(reinterpret_cast<Request*>(priv));
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    const Verdict v = judge(answer_of(*r, rc));
    if (r->listing) {
        sources_[r->source].list_in_flight = false;
        on_list_done(*r, v);
    } else if (r->have) {
        sources_[r->source].have_in_flight = false;
        on_have_done(*r, v);
    } else {
        assert(sources_[r->source].in_flight > 0);   // counted when the request was added
        --sources_[r->source].in_flight;
        on_piece_done(*r, v);
    }
    recycle(std::move(r));
    schedule();
}

void Fetch::Engine::on_list_done(Request& r, const Verdict& v) {
    const std::size_t i = r.source;
    if (v.kind != Verdict::Kind::ok) return apply(i, v);
    auto list = judge_piece_list(r.body, req_.id, req_.size, req_.piece_size);
    if (!list) return drop(i, list.error().message);
    sources_[i].busy = 0;
    if (!listed_) {
        listed_by_ = sources_[i].source.peer;
        if (piece_list_) piece_list_(*list);  // may cancel
        if (phase_ != Phase::running) return;
        accept_list(std::move(list->pieces));
    }
    make_ready(i);
}

void Fetch::Engine::on_have_done(Request& r, const Verdict& v) {
    const std::size_t i = r.source;
    auto& s = sources_[i];
    if (v.kind != Verdict::Kind::ok) return apply(i, v);
    s.busy = 0;
    if (r.status == 304 || s.picker_index == kNotPicking) return;   // unchanged, or dropped meanwhile
    auto has = proto::Bitfield::from_bytes(
        {reinterpret_cast<const std::uint8_t*>(r.body.data()), r.body.size()}, picker_->size());
    if (!has) return drop(i, "sent a bad bitfield: " + has.error().message);
    char* etag = nullptr;
    curl_header* h = nullptr;
    if (curl_easy_header(r.easy, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) etag = h->value;
    s.have_etag = etag ? etag : "";
    picker_->update_source(s.picker_index, std::move(*has));
}

// Asks the partial holders what they have again: every kHaveRefreshMs, or
// (idle_only) those that have nothing left we want, at most every
// kHaveMinIntervalMs.
void Fetch::Engine::refresh_haves(bool idle_only) {
    if (phase_ != Phase::running || !picker_) return;
    const std::uint64_t now = uv_now(loop_);
    for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) {
        const auto& s = sources_[i];
        if (!s.source.partial || s.stage != Stage::ready || s.have_in_flight || s.paused_until > now) continue;
        const auto since = now - s.have_asked_ms;
        const bool due = idle_only ? since >= kHaveMinIntervalMs && !picker_->has_wanted(s.picker_index)
                                   : since >= kHaveRefreshMs;
        if (due) start_have(i);
    }
}

void Fetch::Engine::on_piece_done(Request& r, const Verdict& v) {
    auto& s = sources_[r.source];
    if (v.kind == Verdict::Kind::not_here) {
        // A partial holder whose bitfield we had before it changed: not a
        // strike, not a busy server; the piece goes to others.
        picker_->request_ended(r.piece, s.picker_index);
        picker_->lacks(s.picker_index, r.piece);
        log_.debug("fetch " + display_name() + ": source " + s.source.peer + " " + v.why);
        return;
    }
    if (v.kind != Verdict::Kind::ok) {
        picker_->request_ended(r.piece, s.picker_index);
        return apply(r.source, v);
    }
    s.busy = 0;
    // One request at a time over a reverse source's one connection.
    if (!s.source.handed) s.depth = next_request_depth(s.depth, uv_now(loop_) - r.started_ms);
    std::vector<std::size_t> others;
    if (!picker_->received(r.piece, s.picker_index, others)) return;  // lost the race
    // Endgame: the copies still on their way from other sources are not needed.
    std::vector<Request*> doomed;
    for (auto& q : requests_) {
        if (!q->listing && !q->have && q->piece == r.piece) doomed.push_back(q.get());
    }
    for (auto* q : doomed) {
        multi_.remove(q->easy);
        assert(sources_[q->source].in_flight > 0);
        --sources_[q->source].in_flight;
        recycle(take_request(q));
    }
    auto job = std::make_unique<VerifyJob>();
    job->engine = this;
    job->piece = r.piece;
    job->source = r.source;
    job->buffer = std::move(r.buffer);
    job->offset = r.offset;
    job->length = r.length;
    job->expected = expected_[r.piece];
    job->file = file_.get();
    ++pending_work_;
    queue(
        loop_, std::move(job),
        [](VerifyJob& j) {
            proto::Sha256 hash;
            hash.update(j.buffer.get(), j.length);
            j.match = hash.finish() == j.expected;
            if (j.match) j.error = j.file->write(j.buffer.get(), j.length, j.offset);
        },
        [](VerifyJob& j) { static_cast<Engine*>(j.engine)->on_verified(j); });
}

// Ends a request without a verdict on its source (its source is dropped, or the fetch ends).
void Fetch::Engine::abort_request(Request* raw) {
    multi_.remove(raw->easy);
    auto r = take_request(raw);
    auto& s = sources_[r->source];
    if (r->listing) {
        s.list_in_flight = false;
    } else if (r->have) {
        s.have_in_flight = false;
    } else {
        assert(s.in_flight > 0);
        --s.in_flight;
        if (picker_ && s.picker_index != kNotPicking) picker_->request_ended(r->piece, s.picker_index);
    }
    recycle(std::move(r));
}

void Fetch::Engine::teardown_transfers() {
    if (multi_.is_open()) {
        for (auto& r : requests_) {
            multi_.remove(r->easy);
            if (r->buffer) release_buffer(std::move(r->buffer));
        }
    }
    for (auto& r : requests_) {
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(std::exchange(r->headers, nullptr));
    }
    requests_.clear();
    for (auto& r : idle_) curl_easy_cleanup(r->easy);
    idle_.clear();
    multi_.close();
    if (retry_timer_.get()) uv_timer_stop(retry_timer_.get());
}

// --- sources ---

void Fetch::Engine::apply(std::size_t i, const Verdict& v) {
    switch (v.kind) {
        case Verdict::Kind::ok:
        case Verdict::Kind::not_here:   // handled where the piece is known
            return;
        case Verdict::Kind::retry_after: {
            auto& s = sources_[i];
            ++s.busy;
            s.paused_until = std::max(s.paused_until, uv_now(loop_) + v.wait_ms);
            return;
        }
        case Verdict::Kind::wait: {
            auto& s = sources_[i];
            s.paused_until = std::max(s.paused_until, uv_now(loop_) + v.wait_ms);
            return;
        }
        case Verdict::Kind::strike:
            return strike(i, v.why);
        case Verdict::Kind::drop:
            if (v.unreachable && fall_back(i, v.why)) return;
            return drop(i, v.why, v.readmissible);
    }
}

void Fetch::Engine::strike(std::size_t i, const std::string& why) {
    auto& s = sources_[i];
    if (s.stage == Stage::dropped) return;
    ++s.strikes;
    log_.debug("fetch " + display_name() + ": source " + s.source.peer + ": " + why);
    if (s.strikes >= kMaxStrikes)
        drop(i, std::to_string(s.strikes) + " failures, the last: " + why);
}

void Fetch::Engine::drop(std::size_t i, const std::string& why, bool readmissible) {
    auto& s = sources_[i];
    if (s.stage == Stage::dropped) return;
    s.stage = Stage::dropped;
    s.why = why;
    s.readmissible = readmissible;
    if (req_.metrics) req_.metrics->count_dropped_source(why);
    log_.info("fetch " + display_name() + ": dropped source " + s.source.peer + ": " + why);
    std::vector<Request*> doomed;
    for (auto& r : requests_) {
        if (r->source == i) doomed.push_back(r.get());
    }
    for (auto* r : doomed) abort_request(r);
    if (picker_ && s.picker_index != kNotPicking) picker_->drop_source(s.picker_index);
    s.picker_index = kNotPicking;
    fail_if_no_source();
}

bool Fetch::Engine::fall_back(std::size_t i, const std::string& why) {
    if (sources_[i].stage == Stage::dropped || sources_[i].source.via != Via::direct || !req_.fallback) return false;
    auto answer = req_.fallback(sources_[i].source, why);
    if (!answer.source) {
        drop(i, answer.why_not.empty() ? why : why + "; " + answer.why_not);
        return true;
    }
    const auto& other = answer.source;
    assert(other->handed && other->via != Via::direct && other->peer == sources_[i].source.peer);
    std::vector<Request*> doomed;
    for (auto& r : requests_) {
        if (r->source == i) doomed.push_back(r.get());
    }
    for (auto* r : doomed) abort_request(r);
    auto& s = sources_[i];
    if (picker_ && s.picker_index != kNotPicking) picker_->drop_source(s.picker_index);
    SourceState fresh = source_state(*other);
    fresh.verified = s.verified;
    s = std::move(fresh);
    // The piece list is known: no need to ask this one for it.
    if (phase_ == Phase::running && listed_ && s.stage == Stage::listing) make_ready(i);
    return true;
}

void Fetch::Engine::received_from(std::size_t i) {
    auto& s = sources_[i];
    s.last_data_ms = uv_now(loop_);
    if (s.stalled) log_.info("fetch " + display_name() + ": source " + s.source.peer + " sends again");
    s.stalled = false;
}

// The download limit: `bytes` just arrived for `r`. False when the bucket
// cannot pay off what earlier writes took on credit: curl keeps the bytes
// and the transfer is paused until limit_timer_ fires. Otherwise the bytes
// are taken, on credit for what the bucket lacks now.
bool Fetch::Engine::pay_for(Request& r, std::size_t bytes) {
    if (!limit_) return true;
    if (debt_ > 0) debt_ -= limit_->take(debt_);
    if (debt_ > 0) {
        if (!r.rate_paused) r.paused_ms = uv_now(loop_);
        r.rate_paused = true;
        if (!uv_is_active(reinterpret_cast<uv_handle_t*>(limit_timer_.get()))) {
            if (req_.metrics) ++req_.metrics->download_rate_limit_waits;
            const auto wait_ms = std::max<std::uint64_t>(1, (limit_->wait_ns(debt_) + 999'999) / 1'000'000);
            uv_timer_start(
                limit_timer_.get(),
                [](uv_timer_t* t) {
                    if (t->data) static_cast<Engine*>(t->data)->resume_paused();
                },
                wait_ms, 0);
        }
        return false;
    }
    debt_ += bytes - limit_->take(bytes);
    return true;
}

// Unpauses every transfer the limit paused (each may pause again at once).
void Fetch::Engine::resume_paused() {
    if (phase_ != Phase::running) return;
    std::vector<CURL*> paused;
    const std::uint64_t now = uv_now(loop_);
    for (auto& r : requests_) {
        if (!r->rate_paused) continue;
        r->rate_paused = false;
        r->deadline_ms += now - r->paused_ms;    // nor does it count against the deadline
        sources_[r->source].last_data_ms = now;  // waiting for tokens is not a stall
        paused.push_back(r->easy);
    }
    for (CURL* easy : paused) {
        const bool still_ours = std::any_of(requests_.begin(), requests_.end(),
                                            [easy](const auto& r) { return r->easy == easy; });
        if (still_ours && phase_ == Phase::running) multi_.resume(easy);
    }
}

// A source silent for kSourceStallMs with requests outstanding loses them to
// the others (its connections are closed), and is asked one piece at a time
// until it sends again. A request past its deadline (RequestDeadlines) ends
// however much it received: a piece list's drops its source, a piece's or
// a /have's is a strike against it.
void Fetch::Engine::check_stalls() {
    const std::uint64_t now = uv_now(loop_);
    std::vector<Request*> late;
    for (auto& r : requests_) {
        if (!r->rate_paused && now >= r->deadline_ms) late.push_back(r.get());
    }
    for (auto* r : late) {
        if (phase_ != Phase::running) return;
        const bool still_ours = std::any_of(requests_.begin(), requests_.end(),
                                            [r](const auto& q) { return q.get() == r; });
        if (!still_ours) continue;   // ended by the drop of its source below
        const std::size_t i = r->source;
        const bool listing = r->listing;
        const std::string what = listing ? "its piece list" : r->have ? "its /have" : "piece " + std::to_string(r->piece);
        const std::string why = "sent " + what + " too slowly: not complete within its deadline of " +
                                seconds(r->allowed_ms) + " s";
        abort_request(r);
        if (listing) {
            drop(i, why);
        } else {
            sources_[i].stalled = true;   // one request at a time until it sends again
            strike(i, why);
        }
    }
    for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) {
        auto& s = sources_[i];
        if (s.stage != Stage::ready || s.in_flight == 0 || now - s.last_data_ms < kSourceStallMs)
            continue;
        const bool limited = std::any_of(requests_.begin(), requests_.end(), [i](const auto& r) {
            return r->source == i && r->rate_paused;
        });
        if (limited) continue;  // waiting for the download limit, not for the source
        if (!s.stalled) {
            log_.info("fetch " + display_name() + ": source " + s.source.peer + " sent nothing for " +
                      std::to_string(kSourceStallMs / 1000) + " s: its pieces go to the others");
        }
        s.stalled = true;
        std::vector<Request*> doomed;
        for (auto& r : requests_) {
            if (r->source == i && !r->listing && !r->have) doomed.push_back(r.get());
        }
        for (auto* r : doomed) abort_request(r);
        s.last_data_ms = now;
    }
}

// Which sources may be asked now: with max_sources, the first that many not dropped.
std::vector<bool> Fetch::Engine::allowed_sources() const {
    std::vector<bool> allowed(sources_.size(), false);
    unsigned n = 0;
    for (std::size_t i = 0; i < sources_.size(); ++i) {
        if (sources_[i].stage == Stage::dropped) continue;
        if (req_.max_sources != 0 && n == req_.max_sources) break;
        allowed[i] = true;
        ++n;
    }
    return allowed;
}

// The source may be asked for pieces (its list was accepted, or the request carried it).
void Fetch::Engine::make_ready(std::size_t i) {
    auto& s = sources_[i];
    if (s.stage != Stage::listing) return;
    s.stage = Stage::ready;
    proto::Bitfield has(picker_->size());  // a complete holder: every piece
    if (!s.source.partial) {
        for (std::uint64_t p = 0; p < has.size(); ++p) has.set(p);
    }
    s.picker_index = picker_->add_source(std::move(has));
    if (s.source.partial) start_have(i);   // nothing is asked of it before its /have
}

// Fails with "no source left" when every source is dropped and a piece
// still needs one (pieces being re-verified or written may yet complete it).
void Fetch::Engine::fail_if_no_source() {
    if (phase_ != Phase::running) return;
    const bool any_left = std::any_of(sources_.begin(), sources_.end(),
                                      [](const auto& x) { return x.stage != Stage::dropped; });
    if (any_left) return;
    if (listed_ && !picker_->wants_more()) return;
    fail(no_source_error());
}

Error Fetch::Engine::no_source_error() const {
    std::string reasons;
    for (const auto& x : sources_) {
        reasons += (reasons.empty() ? "" : "; ") + x.source.peer + ": " + x.why;
    }
    return Error{ErrorCode::unavailable, "no source could provide " + display_name() +
                                             (reasons.empty() ? "" : " (" + reasons + ")")};
}

// --- pieces ---

void Fetch::Engine::accept_list(std::vector<proto::Digest> pieces) {
    listed_ = true;
    expected_ = std::move(pieces);
    const auto count = expected_.size();
    picker_.emplace(count, kEndgameAfterMs, [this](std::uint64_t n) {
        return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
    });
    written_ = proto::Bitfield(count);
    durable_ = proto::Bitfield(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        if (req_.adopt || (req_.have.size() != 0 && req_.have.test(i))) picker_->check(i);
    }
    start_checks();
    if (count == 0) maybe_finalize();
}

void Fetch::Engine::schedule() {
    if (phase_ != Phase::running) return;
    const std::uint64_t now = uv_now(loop_);
    const auto allowed = allowed_sources();
    for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) {
        const auto& s = sources_[i];
        if (allowed[i] && s.stage == Stage::listing && !s.list_in_flight && s.paused_until <= now)
            start_list(i);
    }
    // Round robin: one request per source per pass, so every source fills its slots.
    bool started = listed_;
    while (started && phase_ == Phase::running) {
        started = false;
        for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) {
            const auto& s = sources_[i];
            const unsigned slots = s.stalled ? 1 : s.depth;
            if (!allowed[i] || s.stage != Stage::ready || s.in_flight >= slots ||
                s.paused_until > now)
                continue;
            Buffer buffer = take_buffer();
            if (!buffer) return wake_for_paused(now);  // one comes back: schedule() again
            const auto piece = picker_->pick(s.picker_index, now);
            if (!piece) {
                release_buffer(std::move(buffer));
                continue;
            }
            start_piece(i, *piece, std::move(buffer));
            started = true;
        }
    }
    refresh_haves(true);
    wake_for_paused(now);
}

// Wakes up for the earliest paused source that has something to do.
void Fetch::Engine::wake_for_paused(std::uint64_t now) {
    if (phase_ != Phase::running) return;
    std::uint64_t wake = UINT64_MAX;
    for (const auto& s : sources_) {
        if (s.stage != Stage::dropped && s.paused_until > now)
            wake = std::min(wake, s.paused_until);
    }
    if (wake == UINT64_MAX) {
        uv_timer_stop(retry_timer_.get());
    } else {
        uv_timer_start(
            retry_timer_.get(),
            [](uv_timer_t* t) {
                if (t->data) static_cast<Engine*>(t->data)->schedule();
            },
            wake - now, 0);
    }
}

Buffer Fetch::Engine::take_buffer() {
    if (buffers_out_ >= buffer_budget_) return {};
    Buffer b = pool_->take(req_.piece_size, buffers_out_);
    if (b) ++buffers_out_;
    return b;
}

void Fetch::Engine::release_buffer(Buffer b) {
    assert(buffers_out_ > 0);
    --buffers_out_;
    pool_->give_back(std::move(b));
}

void Fetch::Engine::piece_done(std::uint64_t piece) {
    bytes_done_ += proto::piece_length(req_.size, req_.piece_size, piece);
    written_.set(piece);
}

// --- work items back on the loop ---

bool Fetch::Engine::back_from_pool() {
    assert(pending_work_ > 0);   // each job comes back once
    --pending_work_;
    if (detached_) {
        if (pending_work_ == 0) delete this;
        return false;
    }
    if (phase_ == Phase::finishing) {
        maybe_deliver();
        return false;
    }
    return true;
}

void Fetch::Engine::on_prepared(PrepareJob& job) {
    if (!back_from_pool()) return;  // cancelled meanwhile: the file stays, closed
    if (job.error) return fail(std::move(*job.error));
    file_ = std::move(job.file);
    phase_ = Phase::running;
    if (!multi_.open()) return fail(Error{ErrorCode::internal, "cannot create an HTTP client"});
    if (!req_.pieces.empty()) {
        accept_list(std::move(req_.pieces));
        req_.pieces.clear();
        for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) make_ready(i);
    }
    fail_if_no_source();  // every source may have been unusable from the start
    schedule();
}

// Queues the re-verification of every piece being checked, in work items of
// about kCheckBytesPerJob.
void Fetch::Engine::start_checks() {
    const std::uint64_t per_job = std::max<std::uint64_t>(1, kCheckBytesPerJob / req_.piece_size);
    std::unique_ptr<CheckJob> job;
    const auto send = [this](std::unique_ptr<CheckJob> j) {
        ++pending_work_;
        ++checks_pending_;
        queue(
            loop_, std::move(j),
            [](CheckJob& c) {
                c.good.assign(c.pieces.size(), false);
                for (std::size_t k = 0; k < c.pieces.size() && c.error == 0; ++k) {
                    bool good = false;
                    c.error = c.file->verify(c.pieces[k] * c.piece_size,
                                             proto::piece_length(c.size, c.piece_size, c.pieces[k]),
                                             c.expected[k], good);
                    c.good[k] = good;
                }
            },
            [](CheckJob& c) { static_cast<Engine*>(c.engine)->on_checked(c); });
    };
    checks_started_ms_ = uv_now(loop_);
    for (std::uint64_t i = 0; i < picker_->size(); ++i) {
        if (picker_->state(i) != PiecePicker::State::checking) continue;
        if (!job) {
            job = std::make_unique<CheckJob>();
            job->engine = this;
            job->file = file_.get();
            job->size = req_.size;
            job->piece_size = req_.piece_size;
        }
        job->pieces.push_back(i);
        job->expected.push_back(expected_[i]);
        if (job->pieces.size() == per_job) send(std::move(job));
    }
    if (job) send(std::move(job));
}

void Fetch::Engine::on_checked(CheckJob& job) {
    --checks_pending_;
    if (!back_from_pool()) return;
    if (job.error != 0) {
        return fail(Error{ErrorCode::internal,
                          "cannot read " + req_.partial_path + ": " + errno_text(job.error)});
    }
    std::uint64_t bad = 0;
    for (std::size_t k = 0; k < job.pieces.size(); ++k) {
        picker_->checked(job.pieces[k], job.good[k]);
        if (job.good[k]) {
            piece_done(job.pieces[k]);
        } else {
            ++bad;
        }
    }
    checked_pieces_ += job.pieces.size();
    checked_bad_ += bad;
    if (checks_pending_ == 0) {
        // Read by tests/bench/resume.sh ("re-verified ...").
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.2f",
                      static_cast<double>(uv_now(loop_) - checks_started_ms_) / 1000.0);
        log_.info("fetch " + display_name() + ": re-verified " + std::to_string(checked_pieces_) + " pieces of " +
                  req_.partial_path + " in " + seconds + " s; " + std::to_string(checked_bad_) +
                  " did not match and are fetched again");
        report_due_ = true;  // the record's claims are now known true or false
        maybe_sync(true);
    }
    if (picker_->complete()) return maybe_finalize();
    fail_if_no_source();
    schedule();
}

void Fetch::Engine::on_verified(VerifyJob& job) {
    // Written after a failure or cancel: still worth the final sync and report.
    if (!detached_ && phase_ == Phase::finishing && job.match && job.error == 0)
        written_.set(job.piece);
    release_buffer(std::move(job.buffer));  // whatever happens next: the pool counts it
    if (!back_from_pool()) return;
    auto& s = sources_[job.source];
    if (job.error != 0) {
        return fail(Error{ErrorCode::internal,
                          "cannot write " + req_.partial_path + ": " + errno_text(job.error)});
    }
    if (req_.metrics) {
        req_.metrics->downloaded_bytes += job.length;
        ++(job.match ? req_.metrics->pieces_verified : req_.metrics->pieces_rejected);
    }
    if (!job.match) {
        picker_->rejected(job.piece, s.picker_index);  // kNotPicking if dropped meanwhile
        strike(job.source,
               "sent piece " + std::to_string(job.piece) + " that does not match its hash");
        fail_if_no_source();
        return schedule();
    }
    picker_->verified(job.piece);
    piece_done(job.piece);
    s.verified += job.length;
    last_verified_ms_ = uv_now(loop_);
    if (picker_->complete()) return maybe_finalize();
    schedule();
}

// Durability: an fdatasync in the pool now and then; the pieces written
// before it began are then durable and reported.
void Fetch::Engine::maybe_sync(bool now) {
    if (phase_ != Phase::running || !file_ || sync_in_flight_) return;
    if (written_ == durable_ && !report_due_) return;
    if (!now && uv_now(loop_) - last_sync_ms_ < kDurableIntervalMs) return;
    queue_sync();
}

void Fetch::Engine::queue_sync() {
    auto job = std::make_unique<SyncJob>();
    job->engine = this;
    job->file = file_.get();
    job->written = written_;
    sync_in_flight_ = true;
    last_sync_ms_ = uv_now(loop_);
    report_due_ = false;  // this sync's report settles what was due
    ++pending_work_;
    queue(
        loop_, std::move(job), [](SyncJob& j) { j.error = j.file->sync(); },
        [](SyncJob& j) { static_cast<Engine*>(j.engine)->on_synced(j); });
}

void Fetch::Engine::on_synced(SyncJob& job) {
    sync_in_flight_ = false;
    assert(pending_work_ > 0);   // each job comes back once
    --pending_work_;
    if (detached_) {
        if (pending_work_ == 0) delete this;
        return;
    }
    if (job.error != 0) {
        const std::string why = "cannot write " + req_.partial_path + ": " + errno_text(job.error);
        if (phase_ == Phase::finishing) {
            log_.warning("fetch " + display_name() + ": " + why);
            return maybe_deliver();
        }
        return fail(Error{ErrorCode::internal, why});
    }
    durable_ = std::move(job.written);
    if (durable_fn_) durable_fn_(durable_);  // may cancel
    if (phase_ == Phase::finishing) return maybe_deliver();
    if (phase_ != Phase::running) return;
    if (picker_->complete()) return maybe_finalize();
    if (report_due_) maybe_sync(true);
}

// The partial file goes to the finalize work item: no sync may still be using it.
void Fetch::Engine::maybe_finalize() {
    if (phase_ != Phase::running || sync_in_flight_) return;  // on_synced comes back here
    finalize();
}

void Fetch::Engine::finalize() {
    phase_ = Phase::finalizing;
    teardown_transfers();  // sources still listing are not needed any more
    auto job = std::make_unique<FinalizeJob>();
    job->engine = this;
    job->file = std::move(file_);
    job->destination = req_.destination;
    job->force = req_.force;
    ++pending_work_;
    queue(
        loop_, std::move(job),
        [](FinalizeJob& j) { j.error = j.file->finalize(j.destination, j.force, j.synced); },
        [](FinalizeJob& j) { static_cast<Engine*>(j.engine)->on_finalized(j); });
}

void Fetch::Engine::on_finalized(FinalizeJob& job) {
    if (!back_from_pool()) return;
    if (job.synced && durable_ != written_) {
        durable_ = written_;  // every piece: the fsync covered them all
        if (durable_fn_) durable_fn_(durable_);
    }
    if (job.error) return fail(std::move(*job.error));
    succeed();
}

// --- the end ---

void Fetch::Engine::fail(Error error) {
    if (phase_ == Phase::finishing || phase_ == Phase::done) return;
    log_.debug("fetch " + display_name() + ": " + error.message);
    phase_ = Phase::finishing;
    result_.emplace(std::move(error));
    teardown_transfers();
    uv_timer_stop(tick_timer_.get());
    maybe_deliver();
}

void Fetch::Engine::succeed() {
    FetchResult r;
    r.path = req_.destination;
    r.bytes = req_.size;
    r.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    for (const auto& s : sources_) {
        if (s.verified > 0) r.sources_used.push_back(s.source.peer);
    }
    if (r.sources_used.empty() && !listed_by_.empty()) r.sources_used.push_back(listed_by_);
    phase_ = Phase::finishing;
    result_.emplace(std::move(r));
    uv_timer_stop(tick_timer_.get());
    sample_rates();
    if (progress_) progress_(snapshot());  // the final 100 %
    maybe_deliver();
}

void Fetch::Engine::maybe_deliver() {
    if (phase_ != Phase::finishing || pending_work_ != 0 || detached_) return;
    // Pieces written since the last report: make them durable and say so, so
    // that the next Fetch need not fetch them again.
    if (file_ && durable_fn_ && !final_synced_ && durable_ != written_) {
        final_synced_ = true;
        return queue_sync();
    }
    file_.reset();
    // On a fresh loop turn: DoneFn may destroy the Fetch, which must not
    // happen under a curl or libuv callback that still uses the engine.
    uv_timer_start(
        finish_timer_.get(),
        [](uv_timer_t* t) {
            if (t->data) static_cast<Engine*>(t->data)->deliver();
        },
        0, 0);
}

void Fetch::Engine::deliver() {
    // Proven, so asserted (live in debug and sanitizer builds): only
    // finish_timer_ calls this; maybe_deliver starts it in finishing, which
    // fail()/succeed() enter with result_ set; nothing leaves finishing but
    // this; and detaching closes the timer. A release build that somehow gets
    // here twice says so and does not call DoneFn again.
    assert(phase_ == Phase::finishing && result_);
    if (phase_ != Phase::finishing || !result_) {
        log_.error("fetch " + display_name() + ": internal error: done delivered twice; ignored");
        return;
    }
    phase_ = Phase::done;   // the only way here: the done callback runs once
    auto done = std::move(done_);
    auto result = std::move(*result_);
    result_.reset();
    if (done) done(std::move(result));  // may delete the Fetch and this engine: nothing after
}

void Fetch::Engine::tick() {
    if (phase_ != Phase::preparing && phase_ != Phase::running && phase_ != Phase::finalizing)
        return;
    sample_rates();
    check_stalls();
    refresh_haves(false);
    schedule();  // time passes: a slow request may be worth duplicating now
    maybe_sync(false);
    if (progress_ && phase_ != Phase::finishing) progress_(snapshot());  // may cancel: nothing after
}

void Fetch::Engine::sample_rates() {
    const std::uint64_t now = uv_now(loop_);
    rate_ = window_.sample(now, bytes_done_);
    for (auto& s : sources_) s.rate = s.window.sample(now, s.verified);
}

FetchProgress Fetch::Engine::snapshot() const {
    FetchProgress p;
    p.done = bytes_done_;
    p.total = req_.size;
    p.rate = rate_;
    p.stalled_ms = bytes_done_ == req_.size && listed_ ? 0 : uv_now(loop_) - last_verified_ms_;
    for (const auto& s : sources_) {
        const bool dropped = s.stage == Stage::dropped;
        p.sources.push_back({s.source.peer, s.verified, dropped ? 0.0 : s.rate, dropped,
                             s.stalled && !dropped, s.why, s.source.via});
    }
    return p;
}

// --- Fetch ---

Fetch::Fetch(uv_loop_t* loop, const common::Log& log, FetchRequest request, Callbacks callbacks,
             std::shared_ptr<BufferPool> buffers, common::TokenBucket* download_limit)
    : engine_(new Engine(loop, log, std::move(request), std::move(callbacks), std::move(buffers),
                         download_limit)) {}

Fetch::~Fetch() { engine_->detach(); }

void Fetch::start() { engine_->start(); }

void Fetch::cancel() { engine_->cancel(); }

void Fetch::add_sources(const std::vector<Source>& sources) { engine_->add_sources(sources); }

}  // namespace peershare::peerd
