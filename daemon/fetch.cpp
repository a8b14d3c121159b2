// daemon/fetch.cpp — the download engine: libcurl's multi interface driven by
// the libuv loop, piece scheduling over every source, verification and
// writing in the worker pool, and the atomic rename into place.
//
// Lifecycle of a fetch (phases): idle → preparing (worker: check the
// destination, create and size the temporary file) → running (piece lists,
// then pieces) → finalizing (worker: fsync, rename) → finishing (waits for the
// work items still in the pool, then delivers the result on a fresh loop turn)
// → done. Any failure jumps to finishing, removing the temporary file.
//
// The engine is separate from the Fetch object so the Fetch can be destroyed
// at any time: the engine then detaches, stops every transfer, removes the
// temporary file, and deletes itself when its last work item is back.
#include "daemon/fetch.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <utility>

#include "common/uv.hpp"
#include "proto/content.hpp"
#include "proto/hex.hpp"
#include "proto/http.hpp"
#include "proto/limits.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

namespace {

// Piece buffers are aligned for O_DIRECT writes (see verify_in_worker).
constexpr std::size_t kDirectAlign = 4096;
struct FreeBuffer {
    void operator()(std::uint8_t* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::uint8_t, FreeBuffer>;

Buffer aligned_buffer(std::uint64_t size) {
    const auto rounded = (size + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    auto* p = static_cast<std::uint8_t*>(std::aligned_alloc(kDirectAlign, rounded));
    if (!p) throw std::bad_alloc();
    return Buffer(p);
}
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kNoPiece = UINT64_MAX;
constexpr std::size_t kRateSamples = 9;             // 2 s of progress ticks
constexpr std::uint64_t kMaxErrorBody = 64 * 1024;  // body of an error answer we read and drop
// curl's receive buffer. Larger means fewer recv calls, but curl allocates it
// per transfer, and from 128 KiB up glibc hands it back to the kernel each
// time: measured, 64 KiB costs the least CPU per GiB (no page faults).
constexpr long kCurlBufferSize = 64 * 1024;
constexpr std::size_t kListBytesPerPiece = 80;  // a hex hash, quotes, comma, some indentation
constexpr std::size_t kListOverhead = 64 * 1024;
constexpr mode_t kFileMode = 0644;

std::string errno_text(int err) { return std::strerror(err); }

Error cancelled_error() { return Error{ErrorCode::unavailable, std::string(kCancelledMessage)}; }
Error exists_error(const std::string& destination) {
    return Error{ErrorCode::bad_request, destination + " exists; use --force to overwrite"};
}

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

// "http://ADDR:PORT" for an IPv4 or IPv6 literal (with an optional zone),
// nullopt for anything else: nothing from the network reaches a resolver or
// changes the request path.
std::optional<std::string> base_url(const Source& s) {
    if (s.port == 0) return std::nullopt;
    const auto pct = s.address.find('%');
    const std::string ip = s.address.substr(0, pct);
    unsigned char addr[sizeof(in6_addr)];
    const std::string port = ":" + std::to_string(s.port);
    if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
        if (pct != std::string::npos) return std::nullopt;
        return "http://" + ip + port;
    }
    if (inet_pton(AF_INET6, ip.c_str(), addr) != 1) return std::nullopt;
    std::string host = ip;
    if (pct != std::string::npos) {
        const std::string zone = s.address.substr(pct + 1);
        const bool ok = !zone.empty() && zone.size() <= IF_NAMESIZE &&
                        std::all_of(zone.begin(), zone.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                   c == '-' || c == '_';
                        });
        if (!ok) return std::nullopt;
        host += "%25" + zone;  // a zone is percent-encoded inside a URL
    }
    return "http://[" + host + "]" + port;
}

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// ".NAME.peershare-part-XXXXXX" in the destination's directory; NAME is cut
// (at a UTF-8 boundary) so the whole name stays within NAME_MAX.
std::string temp_template(const std::string& destination) {
    constexpr std::string_view kSuffix = ".peershare-part-XXXXXX";
    const auto slash = destination.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : destination.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? destination : destination.substr(slash + 1);
    const std::size_t max_base = NAME_MAX - 1 - kSuffix.size();
    if (base.size() > max_base) {
        base.resize(max_base);
        while (!base.empty() && (static_cast<unsigned char>(base.back()) & 0xC0) == 0x80)
            base.pop_back();
        if (!base.empty() && static_cast<unsigned char>(base.back()) >= 0xC0) base.pop_back();
    }
    return dir + "." + base + std::string(kSuffix);
}

// --- work items: each owns what it touches; results go back to the loop ---

struct PrepareJob {
    uv_work_t work{};
    void* engine = nullptr;  // the Fetch::Engine that queued it
    std::string destination;
    bool force = false;
    std::uint64_t size = 0;
    int fd = -1;                 // out: the temporary file, open
    int buffered_fd = -1;        // out: when fd has O_DIRECT, the file again without it
    std::string temp;            // out: its path
    std::optional<Error> error;  // out
};

void prepare_in_worker(PrepareJob& j) {
    struct stat st {};
    if (::lstat(j.destination.c_str(), &st) == 0) {
        if (!j.force) {
            j.error = exists_error(j.destination);
            return;
        }
        if (S_ISDIR(st.st_mode)) {
            j.error = Error{ErrorCode::bad_request, j.destination + " is a directory"};
            return;
        }
    } else if (errno != ENOENT) {
        j.error = Error{ErrorCode::internal, j.destination + ": " + errno_text(errno)};
        return;
    }
    std::string temp = temp_template(j.destination);
    const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) {
        j.error =
            Error{ErrorCode::internal, "cannot create a temporary file in " +
                                           parent_dir(j.destination) + ": " + errno_text(errno)};
        return;
    }
    if (::fchmod(fd, kFileMode) != 0 || ::ftruncate(fd, static_cast<off_t>(j.size)) != 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(temp.c_str());
        j.error = Error{ErrorCode::internal, "cannot size " + temp + ": " + errno_text(err)};
        return;
    }
    // Verified pieces go to disk without the page cache where the file
    // system allows: the download must reach the disk anyway (fsync before
    // the rename), and copying a GiB through the page cache costs the CPU
    // that hashing needs (measured: 0.1 s of system time per GiB direct,
    // 0.2-1.3 s buffered, on this project's 2-core VM).
    // Reopened through /proc/self/fd, not by its name: the same file, whatever
    // happens to the name meanwhile.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    const int direct = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct >= 0) {
        j.fd = direct;
        j.buffered_fd = fd;
    } else {
        j.fd = fd;
    }
    j.temp = std::move(temp);
}

struct VerifyJob {
    uv_work_t work{};
    void* engine = nullptr;  // the Fetch::Engine that queued it
    std::uint64_t piece = 0;
    std::size_t source = 0;
    Buffer buffer;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    proto::Digest expected{};
    int fd = -1;
    int buffered_fd = -1;              // if fd has O_DIRECT: for what it cannot write
    std::mutex* write_lock = nullptr;  // the engine's: one buffered writer at a time
    bool match = false;  // out
    int error = 0;       // out: errno of a failed write
};

// Writes all of buf at offset; 0 or an errno.
int write_all(int fd, const std::uint8_t* buf, std::uint64_t length, std::uint64_t offset) {
    std::uint64_t written = 0;
    while (written < length) {
        const auto n = ::pwrite(fd, buf + written, length - written, static_cast<off_t>(offset + written));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        written += static_cast<std::uint64_t>(n);
    }
    return 0;
}

// Through the page cache: the file's tail (not a whole number of blocks), or
// every piece where O_DIRECT is not available.
int write_buffered(VerifyJob& j) {
    const int fd = j.buffered_fd >= 0 ? j.buffered_fd : j.fd;
    int err = 0;
    {
        // Buffered writes to one file take its inode lock in turn anyway; the
        // kernel's waiters spin for it, burning the CPU that hashing and
        // receiving need. Ours sleep.
        std::lock_guard lock(*j.write_lock);
        err = write_all(fd, j.buffer.get(), j.length, j.offset);
    }
    // Start writeback now, so the fsync at the end has little left to wait for.
    if (err == 0) {
        ::sync_file_range(fd, static_cast<off_t>(j.offset), static_cast<off_t>(j.length),
                          SYNC_FILE_RANGE_WRITE);
    }
    return err;
}

void verify_in_worker(VerifyJob& j) {
    proto::Sha256 hash;
    hash.update(j.buffer.get(), j.length);
    if (hash.finish() != j.expected) return;
    j.match = true;
    const bool whole_blocks = j.offset % kDirectAlign == 0 && j.length % kDirectAlign == 0;
    if (j.buffered_fd >= 0 && whole_blocks) {
        j.error = write_all(j.fd, j.buffer.get(), j.length, j.offset);
        if (j.error != EINVAL) return;   // EINVAL: the device wants larger blocks
    }
    j.error = write_buffered(j);
}

struct FinalizeJob {
    uv_work_t work{};
    void* engine = nullptr;  // the Fetch::Engine that queued it
    int fd = -1;             // owned: closed here
    int buffered_fd = -1;    // owned: closed here (-1: none)
    std::string temp;
    std::string destination;
    bool force = false;
    std::optional<Error> error;  // out; on error the temporary file is gone
};

void finalize_in_worker(FinalizeJob& j) {
    const auto fail = [&j](ErrorCode code, std::string message) {
        j.error = Error{code, std::move(message)};
        ::unlink(j.temp.c_str());
    };
    // One inode: this fsync also covers what went through buffered_fd.
    const bool synced = ::fsync(j.fd) == 0;
    const int sync_err = errno;
    ::close(j.fd);
    if (j.buffered_fd >= 0) ::close(j.buffered_fd);
    if (!synced)
        return fail(ErrorCode::internal, "cannot write " + j.temp + ": " + errno_text(sync_err));

    if (j.force) {
        if (::rename(j.temp.c_str(), j.destination.c_str()) != 0) {
            return fail(ErrorCode::internal,
                        "cannot rename into " + j.destination + ": " + errno_text(errno));
        }
    } else if (::renameat2(AT_FDCWD, j.temp.c_str(), AT_FDCWD, j.destination.c_str(),
                           RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST)
            return fail(ErrorCode::bad_request, exists_error(j.destination).message);
        if (errno != EINVAL && errno != ENOSYS) {
            return fail(ErrorCode::internal,
                        "cannot rename into " + j.destination + ": " + errno_text(errno));
        }
        // A file system without RENAME_NOREPLACE: link() never replaces either.
        if (::link(j.temp.c_str(), j.destination.c_str()) != 0) {
            if (errno == EEXIST)
                return fail(ErrorCode::bad_request, exists_error(j.destination).message);
            return fail(ErrorCode::internal,
                        "cannot link into " + j.destination + ": " + errno_text(errno));
        }
        ::unlink(j.temp.c_str());
    }
    // Make the rename itself durable; a failure here loses nothing already visible.
    const int dir = ::open(parent_dir(j.destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

template <class Job>
Job* job_of(uv_work_t* work) {
    return static_cast<Job*>(work->data);
}

}  // namespace

// --- the engine ---

class Fetch::Engine {
public:
    Engine(uv_loop_t* loop, const common::Log& log, FetchRequest request, ProgressFn progress,
           DoneFn done);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void start();
    void cancel();
    void detach();  // the Fetch is gone: stop, clean up, free when the pool is done

private:
    enum class Phase { idle, preparing, running, finalizing, finishing, done };
    enum class Stage { listing, ready, dropped };
    enum class PieceState : std::uint8_t { missing, active, verifying, done };

    struct SourceState {
        Source source;
        std::string file_url, list_url;
        Stage stage = Stage::listing;
        bool list_in_flight = false;
        unsigned in_flight = 0;  // piece requests
        unsigned strikes = 0;
        unsigned busy = 0;               // 503s in a row
        std::uint64_t paused_until = 0;  // loop time, ms
        std::uint64_t verified = 0;
        double rate = 0;
        RateWindow window;
        std::string why;
    };

    struct Request {
        CURL* easy = nullptr;
        std::size_t source = 0;
        bool listing = false;
        std::uint64_t piece = 0, offset = 0, length = 0, received = 0;
        std::uint64_t started_ms = 0;  // loop time
        bool whole_file = false;       // the range is the whole file: a 200 is as good as a 206
        Buffer buffer;
        std::string body;  // piece list
        std::size_t body_cap = 0;
        long status = 0;
        bool overflow = false;        // more bytes than asked for
        std::uint64_t discarded = 0;  // bytes of an error answer
        char error[CURL_ERROR_SIZE]{};
    };

    struct SocketWatch {
        uv_poll_t poll;  // first: the handle's address is the watch's
        Engine* engine = nullptr;
        curl_socket_t fd = CURL_SOCKET_BAD;
    };

    // curl ↔ libuv
    static int on_curl_socket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
    static int on_curl_timer(CURLM* multi, long timeout_ms, void* userp);
    static void on_poll(uv_poll_t* poll, int status, int events);
    static size_t on_piece_data(char* data, size_t size, size_t count, void* userp);
    static size_t on_list_data(char* data, size_t size, size_t count, void* userp);
    void drive(curl_socket_t s, int events);
    void collect_finished();
    void close_watch(SocketWatch* w);
    void teardown_transfers();

    // requests
    Request* new_request(std::size_t source);
    bool add_request(Request* r);
    std::unique_ptr<Request> take_request(Request* r);
    void recycle(std::unique_ptr<Request> r);
    void start_list(std::size_t source);
    void start_piece(std::size_t source, std::uint64_t piece);
    void on_request_done(Request* r, CURLcode rc);
    void on_list_done(Request& r, CURLcode rc);
    void on_piece_done(Request& r, CURLcode rc);
    bool transport_failed(Request& r, CURLcode rc);

    // sources
    void strike(std::size_t source, const std::string& why);
    void busy(std::size_t source, CURL* easy);
    void drop(std::size_t source, const std::string& why);
    void abort_requests_of(std::size_t source);
    void fail_if_no_source();

    // pieces
    void schedule();
    std::uint64_t pick(std::size_t source);
    std::uint64_t pick_duplicate(std::size_t source);
    std::size_t requests_for(std::uint64_t piece) const;
    void piece_failed(std::uint64_t piece);
    void abort_duplicates(std::uint64_t piece);
    bool usable(std::uint64_t piece, std::size_t source) const;
    void requeue(std::uint64_t piece);
    Buffer take_buffer();
    void release_buffer(Buffer b);
    void accept_list(proto::PieceList list);

    // work items
    void on_prepared(PrepareJob& job);
    void on_verified(VerifyJob& job);
    void finalize();
    void on_finalized(FinalizeJob& job);
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
    DoneFn done_;

    Phase phase_ = Phase::idle;
    bool detached_ = false;
    unsigned pending_work_ = 0;
    std::optional<proto::Result<FetchResult>> result_;
    Clock::time_point started_{};

    CURLM* multi_ = nullptr;
    bool socket_failed_ = false;
    std::set<SocketWatch*> watches_;
    std::vector<std::unique_ptr<Request>> requests_;  // added to multi_
    std::vector<std::unique_ptr<Request>> idle_;      // easy handles kept for reuse
    common::Timer curl_timer_;
    common::Timer tick_timer_;
    common::Timer retry_timer_;
    common::Timer finish_timer_;

    std::vector<SourceState> sources_;
    std::string listed_by_;  // peer whose piece list was accepted first

    bool listed_ = false;
    std::vector<proto::Digest> expected_;
    std::vector<PieceState> pieces_;
    std::deque<std::uint64_t> requeued_;
    std::uint64_t cursor_ = 0;  // every piece from here on was never requested
    std::set<std::pair<std::uint64_t, std::size_t>> rejected_;  // (piece, source) hash mismatches
    std::uint64_t pieces_done_ = 0;
    std::uint64_t bytes_done_ = 0;
    std::uint64_t last_verified_ms_ = 0;
    RateWindow window_;
    double rate_ = 0;

    int fd_ = -1;
    int buffered_fd_ = -1;   // when fd_ has O_DIRECT: the file again, without it
    std::mutex write_lock_;  // for the workers; the engine outlives their jobs
    std::string temp_;
    std::vector<Buffer> free_buffers_;
    unsigned buffers_out_ = 0;
    unsigned buffer_budget_ = 0;
};

Fetch::Engine::Engine(uv_loop_t* loop, const common::Log& log, FetchRequest request,
                      ProgressFn progress, DoneFn done)
    : loop_(loop),
      log_(log),
      req_(std::move(request)),
      progress_(std::move(progress)),
      done_(std::move(done)),
      curl_timer_(loop),
      tick_timer_(loop),
      retry_timer_(loop),
      finish_timer_(loop) {
    for (auto* t : {&curl_timer_, &tick_timer_, &retry_timer_, &finish_timer_})
        t->get()->data = this;
}

Fetch::Engine::~Engine() {
    teardown_transfers();
    if (fd_ >= 0) ::close(fd_);
    if (buffered_fd_ >= 0) ::close(buffered_fd_);
}

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
    if (req_.sources.empty())
        return fail(Error{ErrorCode::not_found, "no source offers " + display_name()});

    for (const auto& src : req_.sources) {
        SourceState s;
        s.source = src;
        if (auto base = base_url(src)) {
            s.file_url = *base + proto::file_path(req_.id);
            s.list_url = *base + proto::pieces_path(req_.id);
        } else {
            s.stage = Stage::dropped;
            s.why =
                "not an IP address and port: " + src.address + " port " + std::to_string(src.port);
        }
        sources_.push_back(std::move(s));
    }
    buffer_budget_ = static_cast<unsigned>(
        std::min<std::size_t>(kMaxBuffers, 2 * kRequestsPerSource * sources_.size()));

    uv_timer_start(
        tick_timer_.get(),
        [](uv_timer_t* t) {
            if (t->data) static_cast<Engine*>(t->data)->tick();
        },
        kProgressIntervalMs, kProgressIntervalMs);

    auto job = std::make_unique<PrepareJob>();
    job->engine = this;
    job->destination = req_.destination;
    job->force = req_.force;
    job->size = req_.size;
    job->work.data = job.get();
    ++pending_work_;
    uv_queue_work(
        loop_, &job.release()->work,
        [](uv_work_t* w) { prepare_in_worker(*job_of<PrepareJob>(w)); },
        [](uv_work_t* w, int) {
            std::unique_ptr<PrepareJob> j(job_of<PrepareJob>(w));
            static_cast<Engine*>(j->engine)->on_prepared(*j);
        });
}

void Fetch::Engine::cancel() {
    if (phase_ == Phase::idle) phase_ = Phase::preparing;  // not started: still answer once
    if (phase_ == Phase::preparing || phase_ == Phase::running) fail(cancelled_error());
}

void Fetch::Engine::detach() {
    detached_ = true;
    progress_ = nullptr;
    done_ = nullptr;
    teardown_transfers();
    for (auto* t : {&curl_timer_, &tick_timer_, &retry_timer_, &finish_timer_}) t->close();
    // Unlinking is one quick syscall, done here so the file is gone when the
    // Fetch is. A finalize still in the pool then fails to rename (or already has).
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
    if (pending_work_ == 0) delete this;
}

// --- curl driven by libuv ---

int Fetch::Engine::on_curl_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<Engine*>(userp);
    auto* w = static_cast<SocketWatch*>(socketp);
    if (what == CURL_POLL_REMOVE) {
        if (w) self->close_watch(w);
        if (self->multi_) curl_multi_assign(self->multi_, s, nullptr);
        return 0;
    }
    if (!self->multi_) return 0;  // tearing down
    if (!w) {
        w = new SocketWatch;
        if (const int rc = uv_poll_init_socket(self->loop_, &w->poll, s); rc != 0) {
            delete w;
            self->log_.error("fetch " + self->display_name() +
                             ": cannot watch a socket: " + common::uv_error(rc));
            self->socket_failed_ = true;
            return -1;
        }
        w->engine = self;
        w->fd = s;
        self->watches_.insert(w);
        curl_multi_assign(self->multi_, s, w);
    }
    const int events =
        ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&w->poll, events, on_poll);
    return 0;
}

int Fetch::Engine::on_curl_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Engine*>(userp);
    if (!self->multi_ || !self->curl_timer_.get()) return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(self->curl_timer_.get());
        return 0;
    }
    // Even a 0 timeout goes through the loop: curl must not be re-entered from here.
    uv_timer_start(
        self->curl_timer_.get(),
        [](uv_timer_t* t) {
            if (t->data) static_cast<Engine*>(t->data)->drive(CURL_SOCKET_TIMEOUT, 0);
        },
        static_cast<std::uint64_t>(timeout_ms), 0);
    return 0;
}

void Fetch::Engine::on_poll(uv_poll_t* poll, int status, int events) {
    auto* w = reinterpret_cast<SocketWatch*>(poll);
    if (!w->engine) return;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    w->engine->drive(w->fd, flags);
}

void Fetch::Engine::drive(curl_socket_t s, int events) {
    if (!multi_) return;
    int running = 0;
    curl_multi_socket_action(multi_, s, events, &running);
    if (socket_failed_) return fail(Error{ErrorCode::internal, "cannot watch a socket"});
    collect_finished();
}

void Fetch::Engine::collect_finished() {
    int left = 0;
    // multi_ turns null when a finished transfer ends the whole fetch.
    while (multi_) {
        CURLMsg* m = curl_multi_info_read(multi_, &left);
        if (!m) break;
        if (m->msg != CURLMSG_DONE) continue;
        char* priv = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        const CURLcode rc = m->data.result;
        on_request_done(reinterpret_cast<Request*>(priv), rc);
    }
}

void Fetch::Engine::close_watch(SocketWatch* w) {
    watches_.erase(w);
    w->engine = nullptr;
    uv_poll_stop(&w->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll),
             [](uv_handle_t* h) { delete reinterpret_cast<SocketWatch*>(h); });
}

void Fetch::Engine::teardown_transfers() {
    CURLM* multi = std::exchange(multi_, nullptr);  // callbacks from here on only release
    if (multi) {
        for (auto& r : requests_) {
            curl_multi_remove_handle(multi, r->easy);
            curl_easy_cleanup(r->easy);
            if (r->buffer) release_buffer(std::move(r->buffer));
        }
        requests_.clear();
        for (auto& r : idle_) curl_easy_cleanup(r->easy);
        idle_.clear();
        curl_multi_cleanup(multi);
    }
    for (auto* w : std::set<SocketWatch*>(watches_)) close_watch(w);
    if (curl_timer_.get()) uv_timer_stop(curl_timer_.get());
    if (retry_timer_.get()) uv_timer_stop(retry_timer_.get());
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
    }
    CURL* easy = r->easy;
    *r = Request{};
    r->easy = easy;
    r->source = source;
    requests_.push_back(std::move(r));
    return requests_.back().get();
}

bool Fetch::Engine::add_request(Request* r) {
    if (curl_multi_add_handle(multi_, r->easy) == CURLM_OK) return true;
    recycle(take_request(r));
    fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    return false;
}

std::unique_ptr<Fetch::Engine::Request> Fetch::Engine::take_request(Request* r) {
    auto it = std::find_if(requests_.begin(), requests_.end(),
                           [r](const auto& p) { return p.get() == r; });
    std::unique_ptr<Request> owned = std::move(*it);
    requests_.erase(it);
    return owned;
}

void Fetch::Engine::recycle(std::unique_ptr<Request> r) {
    if (r->buffer) release_buffer(std::move(r->buffer));
    if (multi_) {
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

void Fetch::Engine::start_piece(std::size_t source, std::uint64_t piece) {
    auto& s = sources_[source];
    Request* r = new_request(source);
    if (!r) return fail(Error{ErrorCode::internal, "cannot start an HTTP request"});
    r->piece = piece;
    r->offset = piece * req_.piece_size;
    r->length = proto::piece_length(req_.size, req_.piece_size, piece);
    r->whole_file = r->offset == 0 && r->length == req_.size;
    r->started_ms = uv_now(loop_);
    r->buffer = take_buffer();
    const std::string range =
        std::to_string(r->offset) + "-" + std::to_string(r->offset + r->length - 1);
    curl_easy_setopt(r->easy, CURLOPT_URL, s.file_url.c_str());
    curl_easy_setopt(r->easy, CURLOPT_RANGE, range.c_str());  // curl copies it
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_piece_data);
    pieces_[piece] = PieceState::active;
    ++s.in_flight;
    if (!add_request(r)) --s.in_flight;
}

size_t Fetch::Engine::on_piece_data(char* data, size_t size, size_t count, void* userp) {
    auto* r = static_cast<Request*>(userp);
    const std::size_t n = size * count;
    if (r->status == 0) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status == 206 || (r->status == 200 && r->whole_file)) {
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

void Fetch::Engine::on_request_done(Request* raw, CURLcode rc) {
    curl_multi_remove_handle(multi_, raw->easy);
    auto r = take_request(raw);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->listing) {
        sources_[r->source].list_in_flight = false;
        on_list_done(*r, rc);
    } else {
        --sources_[r->source].in_flight;
        on_piece_done(*r, rc);
    }
    recycle(std::move(r));
    schedule();
}

// Handles a transfer that did not complete at the HTTP level. True if it did
// not (the source has been struck or dropped), false if there is an answer to look at.
bool Fetch::Engine::transport_failed(Request& r, CURLcode rc) {
    if (rc == CURLE_OK) return false;
    const bool aborted_error_body = rc == CURLE_WRITE_ERROR && !r.overflow && r.status != 0;
    if (aborted_error_body) return false;
    if (r.overflow) {
        drop(r.source, r.listing ? "sent a piece list too long for the file"
                                 : "sent more bytes than asked for");
        return true;
    }
    const std::string what = r.error[0] ? r.error : curl_easy_strerror(rc);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(r.easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        (rc == CURLE_OPERATION_TIMEDOUT && connect_us == 0)) {
        drop(r.source, "cannot connect: " + what);
    } else {
        strike(r.source, what);
    }
    return true;
}

void Fetch::Engine::on_list_done(Request& r, CURLcode rc) {
    if (transport_failed(r, rc)) return;
    const std::size_t i = r.source;
    if (r.status == 503) return busy(i, r.easy);
    if (r.status == 404) return drop(i, "does not have this file (HTTP 404)");
    if (r.status != 200)
        return strike(i, "answered HTTP " + std::to_string(r.status) + " for the piece list");
    const auto j = proto::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return drop(i, "sent a piece list that is not a JSON object");
    auto list = proto::PieceList::from_json(j, req_.id);
    if (!list) return drop(i, "sent a bad piece list: " + list.error().message);
    if (list->size != req_.size || list->piece_size != req_.piece_size) {
        return drop(i, "sent the piece list of another file (size " + std::to_string(list->size) +
                           ", piece size " + std::to_string(list->piece_size) + ")");
    }
    auto& s = sources_[i];
    s.stage = Stage::ready;
    s.busy = 0;
    if (!listed_) {
        listed_by_ = s.source.peer;
        accept_list(std::move(*list));
    }
}

void Fetch::Engine::on_piece_done(Request& r, CURLcode rc) {
    const bool good = rc == CURLE_OK && (r.status == 206 || (r.status == 200 && r.whole_file)) &&
                      r.received == r.length;
    if (good && pieces_[r.piece] != PieceState::active) return;  // a duplicate that lost the race
    if (good) {
        sources_[r.source].busy = 0;
        abort_duplicates(r.piece);
        auto job = std::make_unique<VerifyJob>();
        job->engine = this;
        job->piece = r.piece;
        job->source = r.source;
        job->buffer = std::move(r.buffer);
        job->offset = r.offset;
        job->length = r.length;
        job->expected = expected_[r.piece];
        job->fd = fd_;
        job->buffered_fd = buffered_fd_;
        job->write_lock = &write_lock_;
        job->work.data = job.get();
        pieces_[r.piece] = PieceState::verifying;
        ++pending_work_;
        uv_queue_work(
            loop_, &job.release()->work,
            [](uv_work_t* w) { verify_in_worker(*job_of<VerifyJob>(w)); },
            [](uv_work_t* w, int) {
                std::unique_ptr<VerifyJob> j(job_of<VerifyJob>(w));
                static_cast<Engine*>(j->engine)->on_verified(*j);
            });
        return;
    }
    piece_failed(r.piece);
    if (transport_failed(r, rc)) return;
    const std::size_t i = r.source;
    if (r.status == 503) return busy(i, r.easy);
    if (r.status == 404) return drop(i, "does not have this file (HTTP 404)");
    if (r.status == 200) return drop(i, "does not honour Range requests (HTTP 200)");
    if (r.status != 206)
        return strike(i, "answered HTTP " + std::to_string(r.status) + " for a piece");
    strike(i, "sent " + std::to_string(r.received) + " of " + std::to_string(r.length) +
                  " bytes of piece " + std::to_string(r.piece));
}

// --- sources ---

void Fetch::Engine::strike(std::size_t i, const std::string& why) {
    auto& s = sources_[i];
    if (s.stage == Stage::dropped) return;
    ++s.strikes;
    log_.debug("fetch " + display_name() + ": source " + s.source.peer + ": " + why);
    if (s.strikes >= kMaxStrikes)
        drop(i, std::to_string(s.strikes) + " failures, the last: " + why);
}

void Fetch::Engine::busy(std::size_t i, CURL* easy) {
    auto& s = sources_[i];
    if (++s.busy >= kMaxBusyAnswers) {
        return drop(i, "busy (HTTP 503) " + std::to_string(s.busy) + " times in a row");
    }
    curl_off_t retry_after_s = 0;
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after_s);
    const std::uint64_t wait_ms =
        retry_after_s > 0 ? std::min<std::uint64_t>(
                                static_cast<std::uint64_t>(retry_after_s) * 1000, kMaxRetryAfterMs)
                          : kDefaultRetryAfterMs;
    s.paused_until = std::max(s.paused_until, uv_now(loop_) + wait_ms);
}

void Fetch::Engine::drop(std::size_t i, const std::string& why) {
    auto& s = sources_[i];
    if (s.stage == Stage::dropped) return;
    s.stage = Stage::dropped;
    s.why = why;
    if (req_.metrics) req_.metrics->count_dropped_source(why);
    log_.info("fetch " + display_name() + ": dropped source " + s.source.peer + ": " + why);
    abort_requests_of(i);
    fail_if_no_source();
}

void Fetch::Engine::fail_if_no_source() {
    const bool any_left = std::any_of(sources_.begin(), sources_.end(),
                                      [](const auto& x) { return x.stage != Stage::dropped; });
    if (any_left) return;
    std::string reasons;
    for (const auto& x : sources_) {
        reasons += (reasons.empty() ? "" : "; ") + x.source.peer + ": " + x.why;
    }
    fail(Error{ErrorCode::unavailable,
               "no source could provide " + display_name() + " (" + reasons + ")"});
}

void Fetch::Engine::abort_requests_of(std::size_t i) {
    std::vector<Request*> doomed;
    for (auto& r : requests_) {
        if (r->source == i) doomed.push_back(r.get());
    }
    for (auto* raw : doomed) {
        curl_multi_remove_handle(multi_, raw->easy);
        auto r = take_request(raw);
        if (!r->listing) piece_failed(r->piece);
        recycle(std::move(r));
    }
    sources_[i].in_flight = 0;
    sources_[i].list_in_flight = false;
}

// --- pieces ---

void Fetch::Engine::schedule() {
    if (phase_ != Phase::running) return;
    const std::uint64_t now = uv_now(loop_);
    for (std::size_t i = 0; i < sources_.size() && phase_ == Phase::running; ++i) {
        const auto& s = sources_[i];
        if (s.stage == Stage::listing && !s.list_in_flight && s.paused_until <= now) start_list(i);
    }
    // Round robin: one request per source per pass, so every source fills its slots.
    bool started = listed_;
    while (started && phase_ == Phase::running && buffers_out_ < buffer_budget_) {
        started = false;
        for (std::size_t i = 0; i < sources_.size() && buffers_out_ < buffer_budget_; ++i) {
            const auto& s = sources_[i];
            if (s.stage != Stage::ready || s.in_flight >= kRequestsPerSource ||
                s.paused_until > now)
                continue;
            const auto piece = pick(i);
            if (piece == kNoPiece) continue;
            start_piece(i, piece);
            if (phase_ != Phase::running) return;
            started = true;
        }
    }
    // Wake up for the earliest paused source that has something to do.
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

std::uint64_t Fetch::Engine::pick(std::size_t source) {
    for (auto it = requeued_.begin(); it != requeued_.end(); ++it) {
        if (usable(*it, source)) {
            const auto piece = *it;
            requeued_.erase(it);
            return piece;
        }
    }
    while (cursor_ < pieces_.size() && pieces_[cursor_] != PieceState::missing) ++cursor_;
    if (cursor_ < pieces_.size()) return cursor_++;
    return pick_duplicate(source);
}

// Endgame: nothing is left to ask for, but a piece another source has been
// sending for a while may come faster from this one. The first good copy
// wins; the other request is aborted.
std::uint64_t Fetch::Engine::pick_duplicate(std::size_t source) {
    const std::uint64_t now = uv_now(loop_);
    for (const auto& r : requests_) {  // oldest first
        if (r->listing || r->source == source || now - r->started_ms < kEndgameAfterMs) continue;
        if (pieces_[r->piece] != PieceState::active || requests_for(r->piece) != 1) continue;
        if (usable(r->piece, source)) return r->piece;
    }
    return kNoPiece;
}

std::size_t Fetch::Engine::requests_for(std::uint64_t piece) const {
    return static_cast<std::size_t>(
        std::count_if(requests_.begin(), requests_.end(),
                      [piece](const auto& r) { return !r->listing && r->piece == piece; }));
}

// A request for `piece` failed: ask again, unless another copy is on its way.
void Fetch::Engine::piece_failed(std::uint64_t piece) {
    if (requests_for(piece) == 0) requeue(piece);
}

void Fetch::Engine::abort_duplicates(std::uint64_t piece) {
    std::vector<Request*> doomed;
    for (auto& r : requests_) {
        if (!r->listing && r->piece == piece) doomed.push_back(r.get());
    }
    for (auto* raw : doomed) {
        curl_multi_remove_handle(multi_, raw->easy);
        auto r = take_request(raw);
        --sources_[r->source].in_flight;
        recycle(std::move(r));
    }
}

// A source may have a piece it once sent wrong only when every other live
// source did too (then each retry costs a strike, so this ends).
bool Fetch::Engine::usable(std::uint64_t piece, std::size_t source) const {
    if (!rejected_.contains({piece, source})) return true;
    for (std::size_t j = 0; j < sources_.size(); ++j) {
        if (sources_[j].stage != Stage::dropped && !rejected_.contains({piece, j})) return false;
    }
    return true;
}

void Fetch::Engine::requeue(std::uint64_t piece) {
    pieces_[piece] = PieceState::missing;
    requeued_.push_back(piece);
}

Buffer Fetch::Engine::take_buffer() {
    ++buffers_out_;
    if (free_buffers_.empty()) return aligned_buffer(req_.piece_size);
    Buffer b = std::move(free_buffers_.back());
    free_buffers_.pop_back();
    return b;
}

void Fetch::Engine::release_buffer(Buffer b) {
    --buffers_out_;
    free_buffers_.push_back(std::move(b));
}

void Fetch::Engine::accept_list(proto::PieceList list) {
    listed_ = true;
    expected_ = std::move(list.pieces);
    pieces_.assign(expected_.size(), PieceState::missing);
    if (expected_.empty()) finalize();
}

// --- work items back on the loop ---

bool Fetch::Engine::back_from_pool() {
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
    const bool abandoned = detached_ || phase_ == Phase::finishing;
    if (abandoned && job.fd >= 0) {  // cancelled meanwhile: nobody wants the file
        ::close(job.fd);
        if (job.buffered_fd >= 0) ::close(job.buffered_fd);
        ::unlink(job.temp.c_str());
    }
    if (!back_from_pool()) return;
    if (job.error) return fail(std::move(*job.error));
    fd_ = job.fd;
    buffered_fd_ = job.buffered_fd;
    temp_ = std::move(job.temp);
    phase_ = Phase::running;

    multi_ = curl_multi_init();
    if (!multi_) return fail(Error{ErrorCode::internal, "cannot create an HTTP client"});
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);

    fail_if_no_source();  // every source may have been unusable from the start
    schedule();
}

void Fetch::Engine::on_verified(VerifyJob& job) {
    if (!back_from_pool()) return;
    release_buffer(std::move(job.buffer));
    auto& s = sources_[job.source];
    if (job.error != 0) {
        return fail(
            Error{ErrorCode::internal, "cannot write " + temp_ + ": " + errno_text(job.error)});
    }
    if (req_.metrics) {
        req_.metrics->downloaded_bytes += job.length;
        ++(job.match ? req_.metrics->pieces_verified : req_.metrics->pieces_rejected);
    }
    if (!job.match) {
        requeue(job.piece);
        rejected_.insert({job.piece, job.source});
        strike(job.source,
               "sent piece " + std::to_string(job.piece) + " that does not match its hash");
        return schedule();
    }
    pieces_[job.piece] = PieceState::done;
    ++pieces_done_;
    bytes_done_ += job.length;
    s.verified += job.length;
    last_verified_ms_ = uv_now(loop_);
    if (pieces_done_ == pieces_.size()) return finalize();
    schedule();
}

void Fetch::Engine::finalize() {
    phase_ = Phase::finalizing;
    teardown_transfers();  // sources still listing are not needed any more
    auto job = std::make_unique<FinalizeJob>();
    job->engine = this;
    job->fd = std::exchange(fd_, -1);
    job->buffered_fd = std::exchange(buffered_fd_, -1);
    job->temp = temp_;
    job->destination = req_.destination;
    job->force = req_.force;
    job->work.data = job.get();
    ++pending_work_;
    uv_queue_work(
        loop_, &job.release()->work,
        [](uv_work_t* w) { finalize_in_worker(*job_of<FinalizeJob>(w)); },
        [](uv_work_t* w, int) {
            std::unique_ptr<FinalizeJob> j(job_of<FinalizeJob>(w));
            static_cast<Engine*>(j->engine)->on_finalized(*j);
        });
}

void Fetch::Engine::on_finalized(FinalizeJob& job) {
    if (!back_from_pool()) return;
    temp_.clear();  // renamed into place, or removed by the worker
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
    // One quick syscall on the loop thread: the file must be gone before DoneFn.
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
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
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    if (buffered_fd_ >= 0) ::close(std::exchange(buffered_fd_, -1));
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
    if (phase_ != Phase::finishing || !result_) return;
    phase_ = Phase::done;
    auto done = std::move(done_);
    auto result = std::move(*result_);
    result_.reset();
    if (done) done(std::move(result));  // may delete the Fetch and this engine: nothing after
}

void Fetch::Engine::tick() {
    if (phase_ != Phase::preparing && phase_ != Phase::running && phase_ != Phase::finalizing)
        return;
    sample_rates();
    schedule();  // time passes: a slow request may be worth duplicating now
    if (progress_) progress_(snapshot());  // may cancel: nothing after
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
        p.sources.push_back({s.source.peer, s.verified, s.stage == Stage::dropped ? 0.0 : s.rate,
                             s.stage == Stage::dropped, s.why});
    }
    return p;
}

// --- Fetch ---

Fetch::Fetch(uv_loop_t* loop, const common::Log& log, FetchRequest request, ProgressFn progress,
             DoneFn done)
    : engine_(new Engine(loop, log, std::move(request), std::move(progress), std::move(done))) {}

Fetch::~Fetch() { engine_->detach(); }

void Fetch::start() { engine_->start(); }

void Fetch::cancel() { engine_->cancel(); }

}  // namespace peershare::peerd
