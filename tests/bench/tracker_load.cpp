// tests/bench/tracker_load.cpp — load generator for trackerd (docs/design.md,
// "Tests and benchmarks"; run by `scripts/bench tracker`; a benchmark, never a
// test). One libuv loop drives N simulated peers over the real protocol
// (proto/): each says hello, then publishes M files whose names are each shared
// by a few peers with the same content id, so the tracker's interning matters.
// Then L of those peers keep K lookups in flight for a fixed time. Prints `key
// value` lines: time to accept N peers, publish rate, the tracker's RSS (read
// from /proc/PID/status), lookups per second and latency percentiles.
//
// Every reply is checked cheaply (its top-level type and id, in order) and one
// lookup reply in kValidateEvery is parsed and checked in full. Any error
// reply, disconnect or stall makes the run fail with exit 1: a benchmark that
// counted failures as answers would measure nothing. Everything is bounded:
// connects in flight, requests in flight per connection, the latency
// histogram (fixed buckets), and each phase (no progress for kStallSeconds
// fails the run).
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.hpp"
#include "common/uv.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"

namespace peershare::bench {
namespace {

constexpr std::size_t kPublishWindow = 16;        // publishes in flight per peer
constexpr std::uint64_t kValidateEvery = 64;      // lookup replies parsed in full
constexpr std::uint64_t kTickMs = 1000;           // heartbeats and the stall watchdog
constexpr std::uint64_t kStallSeconds = 30;       // a phase without progress this long fails
constexpr std::uint64_t kDrainMs = 10'000;        // in-flight lookups must land by then
constexpr std::uint64_t kPieceSize = 256u << 10;
constexpr std::uint16_t kFirstUploadPort = 20000;

struct Options {
    std::string tracker = "127.0.0.1:9999";
    std::uint32_t peers = 10'000;
    std::uint32_t files = 10;
    std::uint32_t holders_per_name = 4;
    std::uint32_t lookup_conns = 64;
    std::uint32_t pipeline = 2;
    double seconds = 10;
    double warmup = 1;
    std::uint32_t connect_concurrency = 1000;
    int tracker_pid = 0;
};

// ---- the data set: deterministic, so any reply can be checked ----

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// 64 lowercase hex digits derived from (salt, k): content ids and peer keys.
std::string hex64(std::uint64_t salt, std::uint64_t k) {
    std::string out;
    char part[17];
    for (std::uint64_t i = 0; i < 4; ++i) {
        std::snprintf(part, sizeof part, "%016" PRIx64, splitmix64(salt * 1'000'003 + k * 4 + i));
        out += part;
    }
    return out;
}

std::string file_name(std::uint64_t k) { return "file-" + std::to_string(k); }
std::string content_id(std::uint64_t k) { return hex64(1, k); }
std::uint64_t file_size(std::uint64_t k) { return 1'000'000 + splitmix64(k) % 1'000'000'000; }

// ---- cheap reply checks ----

// What every reply is checked for: its top-level "type" and "id".
struct ReplyHead {
    std::string_view type;            // without quotes; empty if absent
    std::optional<std::uint64_t> id;
};

// Reads the head of a JSON object in one pass that skips strings (found with
// find_first_of, so a reply costs little more than a memchr) and nested values
// without building anything. Malformed input gives an empty head.
ReplyHead read_head(std::string_view json) {
    ReplyHead head;
    int depth = 0;
    std::size_t i = 0;
    // Index just past the string opening at `open`, or npos if it never closes.
    const auto skip_string = [&](std::size_t open) {
        std::size_t j = open + 1;
        while ((j = json.find_first_of("\\\"", j)) != std::string_view::npos) {
            if (json[j] == '"') return j + 1;
            j += 2;   // an escape and the character it escapes
        }
        return std::string_view::npos;
    };
    while (i < json.size()) {
        const char c = json[i];
        if (c != '"') {
            if (c == '{' || c == '[') ++depth;
            if (c == '}' || c == ']') --depth;
            ++i;
            continue;
        }
        const std::size_t end = skip_string(i);
        if (end == std::string_view::npos) return {};
        const auto text = json.substr(i + 1, end - i - 2);
        i = end;
        if (depth != 1 || i >= json.size() || json[i] != ':') continue;   // not a top-level key
        const std::size_t value = ++i;
        if (text == "type" && i < json.size() && json[i] == '"') {
            i = skip_string(i);
            if (i == std::string_view::npos) return {};
            head.type = json.substr(value + 1, i - value - 2);
        } else if (text == "id") {
            std::uint64_t id = 0;
            auto [ptr, ec] = std::from_chars(json.data() + i, json.data() + json.size(), id);
            if (ec == std::errc{}) head.id = id;
        }
    }
    return head;
}

// ---- latency: fixed 1 µs buckets up to 100 ms, then one overflow bucket ----

class LatencyHistogram {
public:
    void record(std::uint64_t ns) {
        ++buckets_[std::min<std::uint64_t>(ns / 1000, kBuckets - 1)];
        ++count_;
        max_ns_ = std::max(max_ns_, ns);
        sum_ns_ += ns;
    }
    std::uint64_t count() const { return count_; }
    double mean_ms() const { return count_ ? static_cast<double>(sum_ns_) / count_ / 1e6 : 0; }
    double max_ms() const { return static_cast<double>(max_ns_) / 1e6; }
    // The upper edge of the bucket holding the p-th quantile: never flatters.
    double percentile_ms(double p) const {
        if (count_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
            seen += buckets_[i];
            if (seen >= std::max<std::uint64_t>(rank, 1)) return static_cast<double>(i + 1) / 1000;
        }
        return max_ms();
    }

private:
    static constexpr std::size_t kBuckets = 100'001;
    std::vector<std::uint32_t> buckets_ = std::vector<std::uint32_t>(kBuckets);
    std::uint64_t count_ = 0;
    std::uint64_t max_ns_ = 0;
    std::uint64_t sum_ns_ = 0;
};

// The tracker's resident and peak memory in kB, from /proc/PID/status.
struct Memory {
    std::uint64_t rss_kb = 0;
    std::uint64_t hwm_kb = 0;
};

std::optional<Memory> read_memory(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) return std::nullopt;
    Memory m;
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("VmRSS:")) m.rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
        if (line.starts_with("VmHWM:")) m.hwm_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
    }
    return m;
}

// CPU time (user + system) a process has used, in seconds: the tracker's
// from /proc/PID/stat, ours from getrusage. Tells whether the tracker was the
// bottleneck (near 100% of one core) and what one lookup costs it.
std::optional<double> process_cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!in || !std::getline(in, stat)) return std::nullopt;
    const auto paren = stat.rfind(')');   // the command name may hold spaces
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(paren + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip;   // state .. cmajflt
    unsigned long long utime = 0, stime = 0;
    if (!(fields >> utime >> stime)) return std::nullopt;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double own_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
}

std::uint64_t now_ns() { return uv_hrtime(); }
double seconds_between(std::uint64_t from_ns, std::uint64_t to_ns) {
    return static_cast<double>(to_ns - from_ns) / 1e9;
}

// ---- the simulated peers ----

class LoadGen;

enum class Kind : std::uint8_t { hello, publish, lookup };

struct Pending {        // a request whose reply has not come yet
    std::uint64_t id;
    std::uint64_t sent_ns;
    std::uint64_t name;  // lookups: the name index asked for
    Kind kind;
};

struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
};

class Peer {
public:
    Peer(LoadGen& gen, uv_loop_t* loop, std::uint32_t index) : gen_(gen), tcp_(loop), index_(index) {
        tcp_.get()->data = this;
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    void connect(const sockaddr_storage& at);
    // Queues a request (its reply is expected in order) or a one-way frame.
    template <class M>
    void request(const M& message, Kind kind, std::uint64_t name = 0) {
        const auto id = next_id_++;
        out_ += proto::make_frame(message, id);
        pending_.push_back({id, now_ns(), name, kind});
    }
    template <class M>
    void notify(const M& message) { out_ += proto::make_frame(message); }
    void flush();

    std::uint32_t index() const { return index_; }
    bool welcomed() const { return welcomed_; }
    std::size_t in_flight() const { return pending_.size(); }
    std::uint32_t next_file = 0;   // the publish phase's cursor

private:
    static void on_connect(uv_connect_t* req, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    void on_frame(std::string_view payload);

    LoadGen& gen_;
    common::Tcp tcp_;
    std::uint32_t index_;
    uv_connect_t connect_req_{};
    proto::FrameDecoder decoder_;
    std::string out_;             // frames for the next write
    bool writing_ = false;        // one write in flight at a time
    bool welcomed_ = false;
    std::uint64_t next_id_ = 1;
    std::deque<Pending> pending_;
};

class LoadGen {
public:
    explicit LoadGen(const Options& o);
    int run(const sockaddr_storage& tracker);

    // Called by peers.
    void fail(std::string message);
    void on_welcome(Peer& peer, std::uint32_t heartbeat_s);
    void on_published(Peer& peer);
    void on_looked_up(Peer& peer, const Pending& p, std::string_view payload);
    void on_progress() { ++progress_; }

private:
    void connect_more();
    void start_publishing();
    void queue_publishes(Peer& peer);
    void start_lookups();
    void queue_lookup(Peer& peer);
    void on_tick();
    void start_phase_timer(std::uint64_t ms);
    void on_phase_timer();
    void check_lookup(const Pending& p, std::string_view payload);
    void sample_memory(const char* key);
    void sample_cpu(double& tracker, double& own);
    void print_results() const;
    void stop() { uv_stop(loop_.get()); }

    Options o_;
    std::uint64_t names_;
    common::Loop loop_;   // declared before every handle: destroyed after them
    common::Timer tick_timer_;
    common::Timer phase_timer_;
    sockaddr_storage tracker_{};
    std::vector<std::unique_ptr<Peer>> peers_;
    std::optional<std::string> error_;
    std::uint64_t rng_ = 0x2545f4914f6cdd1dull;

    // progress
    std::uint64_t progress_ = 0;
    std::uint64_t progress_at_last_tick_ = 0;
    std::uint64_t ticks_without_progress_ = 0;
    std::uint64_t tick_ = 0;
    std::uint32_t heartbeat_s_ = 0;
    std::uint32_t next_connect_ = 0;
    std::uint32_t connecting_ = 0;
    std::uint32_t welcomed_ = 0;
    std::uint64_t published_ = 0;
    enum class Phase { connecting, publishing, warmup, measuring, draining, done } phase_ =
        Phase::connecting;

    // results
    std::uint64_t start_ns_ = 0, welcomed_ns_ = 0, published_ns_ = 0;
    std::uint64_t measure_start_ns_ = 0, measure_end_ns_ = 0;
    std::uint64_t lookups_in_flight_ = 0;
    std::uint64_t lookups_total_ = 0;
    std::uint64_t validated_ = 0;
    double tracker_cpu_start_ = 0, tracker_cpu_end_ = 0;   // seconds, over the measured time
    double own_cpu_start_ = 0, own_cpu_end_ = 0;
    LatencyHistogram latency_;
    std::vector<std::pair<std::string, Memory>> memory_;
};

void Peer::connect(const sockaddr_storage& at) {
    connect_req_.data = this;
    const int rc = uv_tcp_connect(&connect_req_, tcp_.get(), reinterpret_cast<const sockaddr*>(&at),
                                  on_connect);
    if (rc < 0) gen_.fail("connect: " + common::uv_error(rc));
}

void Peer::on_connect(uv_connect_t* req, int status) {
    if (status == UV_ECANCELED) return;   // closed at the end of the run
    auto* self = static_cast<Peer*>(req->data);
    if (status < 0) return self->gen_.fail("connect: " + common::uv_error(status));
    uv_tcp_nodelay(self->tcp_.get(), 1);
    const int rc = uv_read_start(self->tcp_.stream(), common::Loop::alloc_read_buffer, on_read);
    if (rc < 0) return self->gen_.fail("read: " + common::uv_error(rc));
    proto::Hello hello;
    hello.name = "peer-" + std::to_string(self->index_);
    hello.port = static_cast<std::uint16_t>(kFirstUploadPort + self->index_ % 40'000);
    hello.key = hex64(2, self->index_);
    self->request(hello, Kind::hello);
    self->flush();
}

void Peer::flush() {
    if (writing_ || out_.empty()) return;
    auto request = std::make_unique<WriteRequest>();
    request->bytes.swap(out_);
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    const int rc = uv_write(&request->req, tcp_.stream(), &buf, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<WriteRequest> owned(reinterpret_cast<WriteRequest*>(req));
        auto* self = static_cast<Peer*>(req->handle->data);
        if (!self) return;   // closed at the end of the run
        self->writing_ = false;
        if (status < 0) return self->gen_.fail("write: " + common::uv_error(status));
        self->flush();
    });
    if (rc < 0) return gen_.fail("write: " + common::uv_error(rc));
    request.release();   // owned by libuv until the write callback
    writing_ = true;
}

void Peer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Peer*>(stream->data);
    if (!self) return;
    if (nread < 0) {
        return self->gen_.fail("peer-" + std::to_string(self->index_) + ": tracker closed the " +
                               "connection (" + common::uv_error(static_cast<int>(nread)) + ")");
    }
    for (auto& payload : self->decoder_.feed({buf->base, static_cast<std::size_t>(nread)})) {
        self->on_frame(payload);
    }
    if (self->decoder_.error()) return self->gen_.fail("bad frame: " + self->decoder_.error()->message);
    self->flush();   // everything the replies above queued, in one write
}

void Peer::on_frame(std::string_view payload) {
    const auto [type, id] = read_head(payload);
    if (type == "ping") {   // the tracker checking we are alive (trackerctl ping)
        out_ += proto::make_frame(proto::Pong{}, id);
        return;
    }
    if (pending_.empty() || id != pending_.front().id) {
        return gen_.fail("unexpected frame: " + std::string(payload.substr(0, 200)));
    }
    const Pending p = pending_.front();
    pending_.pop_front();
    gen_.on_progress();
    if (type == "error") return gen_.fail("error reply: " + std::string(payload.substr(0, 300)));
    switch (p.kind) {
        case Kind::hello: {
            auto env = proto::parse_envelope(payload);
            if (!env) return gen_.fail("welcome: " + env.error().message);
            auto welcome = proto::expect<proto::Welcome>(*env);
            if (!welcome) return gen_.fail("welcome: " + welcome.error().message);
            welcomed_ = true;
            return gen_.on_welcome(*this, welcome->heartbeat_s);
        }
        case Kind::publish:
            if (type != "ok") return gen_.fail("publish: " + std::string(payload.substr(0, 200)));
            return gen_.on_published(*this);
        case Kind::lookup:
            if (type != "holders") return gen_.fail("lookup: " + std::string(payload.substr(0, 200)));
            return gen_.on_looked_up(*this, p, payload);
    }
}

LoadGen::LoadGen(const Options& o)
    : o_(o),
      names_(std::max<std::uint64_t>(o.files, std::uint64_t{o.peers} * o.files / o.holders_per_name)),
      tick_timer_(loop_.get()),
      phase_timer_(loop_.get()) {
    tick_timer_.get()->data = this;
    phase_timer_.get()->data = this;
}

void LoadGen::fail(std::string message) {
    if (!error_) error_ = std::move(message);
    stop();
}

int LoadGen::run(const sockaddr_storage& tracker) {
    tracker_ = tracker;
    peers_.reserve(o_.peers);
    for (std::uint32_t i = 0; i < o_.peers; ++i) {
        peers_.push_back(std::make_unique<Peer>(*this, loop_.get(), i));
    }
    sample_memory("tracker_rss_idle");
    uv_timer_start(
        tick_timer_.get(), [](uv_timer_t* t) { static_cast<LoadGen*>(t->data)->on_tick(); }, kTickMs,
        kTickMs);
    start_ns_ = now_ns();
    connect_more();
    loop_.run();

    if (!error_) print_results();
    // Close every connection and let the loop deliver the close callbacks.
    uv_timer_stop(tick_timer_.get());
    uv_timer_stop(phase_timer_.get());
    peers_.clear();
    loop_.run();
    if (error_) {
        std::fprintf(stderr, "tracker_load: %s\n", error_->c_str());
        return 1;
    }
    return 0;
}

void LoadGen::connect_more() {
    while (connecting_ < o_.connect_concurrency && next_connect_ < o_.peers) {
        ++connecting_;
        peers_[next_connect_++]->connect(tracker_);
    }
}

void LoadGen::on_welcome(Peer&, std::uint32_t heartbeat_s) {
    heartbeat_s_ = heartbeat_s;
    --connecting_;
    if (++welcomed_ < o_.peers) return connect_more();
    welcomed_ns_ = now_ns();
    sample_memory("tracker_rss_connected");
    start_publishing();
}

void LoadGen::start_publishing() {
    phase_ = Phase::publishing;
    if (o_.files == 0) {
        published_ns_ = now_ns();
        return start_lookups();
    }
    for (auto& peer : peers_) {
        queue_publishes(*peer);
        peer->flush();
    }
}

void LoadGen::queue_publishes(Peer& peer) {
    while (peer.next_file < o_.files && peer.in_flight() < kPublishWindow) {
        const std::uint64_t k = (std::uint64_t{peer.index()} * o_.files + peer.next_file++) % names_;
        proto::Publish publish;
        publish.file = {file_name(k), file_size(k), content_id(k), kPieceSize, 0};
        peer.request(publish, Kind::publish);
    }
}

void LoadGen::on_published(Peer& peer) {
    queue_publishes(peer);   // sent with the flush that ends this read
    if (++published_ < std::uint64_t{o_.peers} * o_.files) return;
    published_ns_ = now_ns();
    sample_memory("tracker_rss_published");
    start_lookups();
}

void LoadGen::start_lookups() {
    if (o_.seconds <= 0 || o_.lookup_conns == 0) {
        phase_ = Phase::done;
        return stop();
    }
    phase_ = Phase::warmup;
    for (std::uint32_t i = 0; i < o_.lookup_conns; ++i) {
        for (std::uint32_t j = 0; j < o_.pipeline; ++j) queue_lookup(*peers_[i]);
        peers_[i]->flush();
    }
    start_phase_timer(static_cast<std::uint64_t>(o_.warmup * 1000));
}

void LoadGen::start_phase_timer(std::uint64_t ms) {
    uv_timer_start(
        phase_timer_.get(), [](uv_timer_t* t) { static_cast<LoadGen*>(t->data)->on_phase_timer(); },
        ms, 0);
}

void LoadGen::queue_lookup(Peer& peer) {
    rng_ ^= rng_ << 13;   // xorshift64
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    const std::uint64_t k = rng_ % names_;
    peer.request(proto::Lookup{file_name(k)}, Kind::lookup, k);
    ++lookups_in_flight_;
}

void LoadGen::on_looked_up(Peer& peer, const Pending& p, std::string_view payload) {
    const auto done_ns = now_ns();
    --lookups_in_flight_;
    ++lookups_total_;
    if (lookups_total_ % kValidateEvery == 0) check_lookup(p, payload);
    if (phase_ == Phase::measuring && p.sent_ns >= measure_start_ns_) latency_.record(done_ns - p.sent_ns);
    if (phase_ == Phase::warmup || phase_ == Phase::measuring) return queue_lookup(peer);
    if (phase_ == Phase::draining && lookups_in_flight_ == 0) {
        phase_ = Phase::done;
        stop();
    }
}

// The full check on a sample: the reply parses as a holders message for the
// name asked, with every peer that publishes it and its content id.
void LoadGen::check_lookup(const Pending& p, std::string_view payload) {
    ++validated_;
    auto env = proto::parse_envelope(payload);
    if (!env) return fail("lookup reply: " + env.error().message);
    auto holders = proto::expect<proto::Holders>(*env);
    if (!holders) return fail("lookup reply: " + holders.error().message);
    const std::uint64_t total = std::uint64_t{o_.peers} * o_.files;
    const std::uint64_t expected = total / names_ + (p.name < total % names_ ? 1 : 0);
    if (holders->name != file_name(p.name) || holders->holders.size() != expected) {
        return fail("lookup of " + file_name(p.name) + ": expected " + std::to_string(expected) +
                    " holders, got " + std::to_string(holders->holders.size()) + " for '" +
                    holders->name + "'");
    }
    for (const auto& h : holders->holders) {
        if (h.id != content_id(p.name)) return fail("lookup of " + file_name(p.name) + ": wrong id");
    }
}

void LoadGen::on_phase_timer() {
    if (phase_ == Phase::warmup) {
        phase_ = Phase::measuring;
        measure_start_ns_ = now_ns();
        sample_cpu(tracker_cpu_start_, own_cpu_start_);
        start_phase_timer(static_cast<std::uint64_t>(o_.seconds * 1000));
    } else if (phase_ == Phase::measuring) {
        phase_ = Phase::draining;
        measure_end_ns_ = now_ns();
        sample_cpu(tracker_cpu_end_, own_cpu_end_);
        start_phase_timer(kDrainMs);
    } else if (phase_ == Phase::draining) {
        fail(std::to_string(lookups_in_flight_) + " lookups unanswered " +
             std::to_string(kDrainMs / 1000) + " s after the end");
    }
}

// Once a second: heartbeats (each peer every heartbeat_s, spread over the
// ticks, as real peers would send them) and the stall watchdog.
void LoadGen::on_tick() {
    ++tick_;
    if (progress_ == progress_at_last_tick_ && phase_ != Phase::done) {
        if (++ticks_without_progress_ * kTickMs >= kStallSeconds * 1000) {
            return fail("no reply for " + std::to_string(kStallSeconds) + " s (" +
                        std::to_string(welcomed_) + " peers welcomed, " +
                        std::to_string(published_) + " files published)");
        }
    } else {
        ticks_without_progress_ = 0;
    }
    progress_at_last_tick_ = progress_;
    if (heartbeat_s_ == 0) return;
    for (auto& peer : peers_) {
        if (peer->welcomed() && peer->index() % heartbeat_s_ == tick_ % heartbeat_s_) {
            peer->notify(proto::Heartbeat{});
            peer->flush();
        }
    }
}

void LoadGen::sample_memory(const char* key) {
    if (o_.tracker_pid <= 0) return;
    auto m = read_memory(o_.tracker_pid);
    if (!m) return fail("cannot read /proc/" + std::to_string(o_.tracker_pid) + "/status");
    memory_.emplace_back(key, *m);
}

void LoadGen::sample_cpu(double& tracker, double& own) {
    own = own_cpu_seconds();
    if (o_.tracker_pid <= 0) return;
    auto cpu = process_cpu_seconds(o_.tracker_pid);
    if (!cpu) return fail("cannot read /proc/" + std::to_string(o_.tracker_pid) + "/stat");
    tracker = *cpu;
}

void LoadGen::print_results() const {
    const double accept_s = seconds_between(start_ns_, welcomed_ns_);
    const std::uint64_t files = std::uint64_t{o_.peers} * o_.files;
    std::printf("peers %u\n", o_.peers);
    std::printf("files_per_peer %u\n", o_.files);
    std::printf("distinct_names %" PRIu64 "\n", names_);
    std::printf("accept_seconds %.3f\n", accept_s);
    std::printf("accepts_per_second %.0f\n", o_.peers / accept_s);
    if (files > 0) {
        const double publish_s = seconds_between(welcomed_ns_, published_ns_);
        std::printf("publish_seconds %.3f\n", publish_s);
        std::printf("publishes_per_second %.0f\n", static_cast<double>(files) / publish_s);
    }
    for (const auto& [key, m] : memory_) {
        std::printf("%s_kb %" PRIu64 "\n", key.c_str(), m.rss_kb);
        std::printf("%s_mb %.1f\n", key.c_str(), static_cast<double>(m.rss_kb) / 1024);
    }
    if (!memory_.empty()) {
        std::printf("tracker_hwm_mb %.1f\n", static_cast<double>(memory_.back().second.hwm_kb) / 1024);
    }
    if (latency_.count() == 0) return;
    const double measured_s = seconds_between(measure_start_ns_, measure_end_ns_);
    std::printf("lookup_connections %u\n", o_.lookup_conns);
    std::printf("lookup_pipeline %u\n", o_.pipeline);
    std::printf("lookup_seconds %.3f\n", measured_s);
    std::printf("lookups_measured %" PRIu64 "\n", latency_.count());
    std::printf("lookups_validated %" PRIu64 "\n", validated_);
    std::printf("lookups_per_second %.0f\n", static_cast<double>(latency_.count()) / measured_s);
    std::printf("lookup_mean_ms %.3f\n", latency_.mean_ms());
    std::printf("lookup_p50_ms %.3f\n", latency_.percentile_ms(0.50));
    std::printf("lookup_p99_ms %.3f\n", latency_.percentile_ms(0.99));
    std::printf("lookup_p999_ms %.3f\n", latency_.percentile_ms(0.999));
    std::printf("lookup_max_ms %.3f\n", latency_.max_ms());
    const double lookups = static_cast<double>(latency_.count());
    std::printf("loadgen_cpu_percent %.0f\n", 100 * (own_cpu_end_ - own_cpu_start_) / measured_s);
    if (o_.tracker_pid > 0) {
        const double tracker_cpu = tracker_cpu_end_ - tracker_cpu_start_;
        std::printf("tracker_cpu_percent %.0f\n", 100 * tracker_cpu / measured_s);
        std::printf("tracker_cpu_us_per_lookup %.2f\n", 1e6 * tracker_cpu / lookups);
    }
}

// Raises the soft open-file limit to the hard one; the peers need one each.
bool raise_fd_limit(std::uint64_t needed) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur >= needed) return true;
    std::fprintf(stderr, "tracker_load: %" PRIu64 " connections need %" PRIu64
                 " open files, the limit is %llu (raise ulimit -n)\n",
                 needed - 64, needed, static_cast<unsigned long long>(lim.rlim_cur));
    return false;
}

}  // namespace
}  // namespace peershare::bench

int main(int argc, char** argv) {
    using namespace peershare;
    bench::Options o;
    CLI::App app{"tracker_load — simulated peers publishing and looking up against trackerd"};
    app.add_option("--tracker", o.tracker, "trackerd's peer address")->capture_default_str();
    app.add_option("--peers", o.peers, "simulated peers (one connection each)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 100'000u));
    app.add_option("--files", o.files, "files each peer publishes")
        ->capture_default_str()
        ->check(CLI::Range(0u, 10'000u));
    app.add_option("--holders-per-name", o.holders_per_name, "peers sharing each file name")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1000u));
    app.add_option("--lookup-conns", o.lookup_conns, "peers that look up (0: no lookup phase)")
        ->capture_default_str();
    app.add_option("--pipeline", o.pipeline, "lookups in flight per looking peer")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1024u));
    app.add_option("--seconds", o.seconds, "measured lookup time (0: no lookup phase)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 3600.0));
    app.add_option("--warmup", o.warmup, "lookup time before measuring")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 600.0));
    app.add_option("--connect-concurrency", o.connect_concurrency,
                   "connections opening at once (under the listen backlog)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 4096u));
    app.add_option("--tracker-pid", o.tracker_pid, "trackerd's pid, to read its memory from /proc")
        ->check(CLI::PositiveNumber);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (o.lookup_conns > o.peers) {
        std::fprintf(stderr, "tracker_load: --lookup-conns must be at most --peers\n");
        return 2;
    }
    auto endpoint = common::parse_endpoint(o.tracker);
    if (!endpoint) {
        std::fprintf(stderr, "tracker_load: --tracker %s\n", endpoint.error().message.c_str());
        return 2;
    }
    auto addr = common::to_sockaddr(*endpoint);
    if (!addr) {
        std::fprintf(stderr, "tracker_load: --tracker %s\n", addr.error().message.c_str());
        return 2;
    }
    if (!bench::raise_fd_limit(std::uint64_t{o.peers} + 64)) return 1;
    std::signal(SIGPIPE, SIG_IGN);
    bench::LoadGen gen(o);
    return gen.run(*addr);
}
