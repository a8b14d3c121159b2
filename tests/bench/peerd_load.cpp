// tests/bench/peerd_load.cpp — load generators for peerd's benchmarks
// (docs/design.md, "Tests and benchmarks"; driven by tests/bench/concurrent.sh;
// benchmarks, never tests). Three modes, each printing `key value` lines:
//   http     N concurrent GETs of one URL with libcurl's multi interface on
//            one thread: bodies are discarded but counted, and a transfer
//            counts as completed only with status 200 and exactly the
//            expected bytes. The same client measures peerd and nginx, so its
//            own cost (a copy per byte) weighs on both alike.
//   control  list_files round trips over one control session (the blocking
//            client peerctl uses), then whole sessions (connect, hello, list):
//            the control plane without a process start.
//   spawn    commands run R times each, interleaved so that noise from the
//            rest of the machine falls on all of them alike, timed from spawn
//            to exit: `peerctl list` as a user sees it, and its references.
//   publish  N small files made in a directory and published one after the
//            other over one control session (tests/bench/state.sh, and test
//            item 7 in tests/integration/test_state.cpp), each timed, while a
//            second thread GETs a URL of the same peerd every few ms: what
//            a publish costs as the publications grow, and whether serving
//            waits on it.
// Everything is bounded by a deadline; a failure says what failed and exits 1.
#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/client.hpp"
#include "proto/control.hpp"

extern char** environ;

namespace peershare::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point from, Clock::time_point to = Clock::now()) {
    return std::chrono::duration<double>(to - from).count();
}

// Nearest-rank percentile of samples (sorted here); 0 for none.
double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

double mean(const std::vector<double>& samples) {
    double sum = 0;
    for (double s : samples) sum += s;
    return samples.empty() ? 0 : sum / static_cast<double>(samples.size());
}

// Prints PREFIX_{p50,p99,mean,max}_UNIT of samples given in seconds.
void print_latency(const std::string& prefix, const std::vector<double>& s, const char* unit, double scale) {
    std::printf("%s_p50_%s %.3f\n", prefix.c_str(), unit, percentile(s, 0.50) * scale);
    std::printf("%s_p99_%s %.3f\n", prefix.c_str(), unit, percentile(s, 0.99) * scale);
    std::printf("%s_mean_%s %.3f\n", prefix.c_str(), unit, mean(s) * scale);
    std::printf("%s_max_%s %.3f\n", prefix.c_str(), unit, percentile(s, 1.0) * scale);
}

double own_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
}

// ---- http: N concurrent transfers ----

struct HttpOptions {
    std::string url;
    std::uint32_t concurrency = 200;
    std::uint64_t expect_bytes = 0;
    double timeout_s = 300;
    long buffer_bytes = 256 * 1024;   // fewer, larger recv() calls: less client CPU
};

struct EasyDeleter {
    void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct MultiDeleter {
    void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};

struct Transfer {
    std::unique_ptr<CURL, EasyDeleter> easy;
    std::uint64_t bytes = 0;
    Clock::time_point first_byte{};
    Clock::time_point done{};
    bool finished = false;
    CURLcode result = CURLE_OK;
    long status = 0;
    char error[CURL_ERROR_SIZE]{};
};

size_t count_body(char*, size_t size, size_t nmemb, void* user) {
    auto* t = static_cast<Transfer*>(user);
    if (t->bytes == 0) t->first_byte = Clock::now();
    t->bytes += size * nmemb;
    return size * nmemb;
}

// The multi handle and its transfers; every easy handle leaves the multi
// before either is cleaned up, as libcurl requires.
class HttpRun {
public:
    explicit HttpRun(const HttpOptions& o) : o_(o), multi_(curl_multi_init()) {}
    ~HttpRun() {
        for (auto& t : transfers_) curl_multi_remove_handle(multi_.get(), t->easy.get());
    }
    HttpRun(const HttpRun&) = delete;
    HttpRun& operator=(const HttpRun&) = delete;

    bool start();
    void run_until_done();
    void report() const;

private:
    bool add_transfer();
    void collect_finished();

    const HttpOptions& o_;
    std::unique_ptr<CURLM, MultiDeleter> multi_;
    std::vector<std::unique_ptr<Transfer>> transfers_;
    Clock::time_point started_{};
    std::size_t running_ = 0;
};

bool HttpRun::add_transfer() {
    auto t = std::make_unique<Transfer>();
    t->easy.reset(curl_easy_init());
    CURL* e = t->easy.get();
    if (!e) return false;
    curl_easy_setopt(e, CURLOPT_URL, o_.url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, o_.buffer_bytes);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout_s * 1000));
    if (curl_multi_add_handle(multi_.get(), e) != CURLM_OK) return false;
    transfers_.push_back(std::move(t));
    ++running_;
    return true;
}

bool HttpRun::start() {
    if (!multi_) return false;
    started_ = Clock::now();
    for (std::uint32_t i = 0; i < o_.concurrency; ++i) {
        if (!add_transfer()) return false;
    }
    return true;
}

void HttpRun::collect_finished() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
        t->done = Clock::now();
        t->finished = true;
        t->result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &t->status);
        --running_;
    }
}

// Each transfer has its own CURLOPT_TIMEOUT; the loop's deadline is a margin
// past it, so a wedged libcurl cannot hang the benchmark either.
void HttpRun::run_until_done() {
    const auto deadline = started_ + std::chrono::duration<double>(o_.timeout_s + 30);
    while (running_ > 0 && Clock::now() < deadline) {
        int still = 0;
        if (curl_multi_perform(multi_.get(), &still) != CURLM_OK) break;
        collect_finished();
        if (running_ > 0) curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
    }
}

bool completed(const Transfer& t, std::uint64_t expect) {
    return t.finished && t.result == CURLE_OK && t.status == 200 && t.bytes == expect;
}

std::string why_failed(const Transfer& t, std::uint64_t expect) {
    if (!t.finished) return "did not finish before the deadline";
    if (t.result != CURLE_OK) return std::string(curl_easy_strerror(t.result)) + ": " + t.error;
    if (t.status != 200) return "HTTP status " + std::to_string(t.status);
    return "got " + std::to_string(t.bytes) + " bytes, expected " + std::to_string(expect);
}

void HttpRun::report() const {
    std::size_t ok = 0, overlapped = 0;
    std::uint64_t bytes = 0;
    Clock::time_point last = started_, first_done = Clock::time_point::max();
    std::vector<double> per_transfer;
    for (const auto& t : transfers_) {
        bytes += t->bytes;
        if (!t->finished) continue;
        last = std::max(last, t->done);
        first_done = std::min(first_done, t->done);
        per_transfer.push_back(seconds_since(started_, t->done));
    }
    std::string first_failure;
    for (const auto& t : transfers_) {
        if (completed(*t, o_.expect_bytes)) ++ok;
        else if (first_failure.empty()) first_failure = why_failed(*t, o_.expect_bytes);
        // Started receiving before any transfer ended: served at the same time.
        if (t->bytes > 0 && t->first_byte < first_done) ++overlapped;
    }
    const double secs = seconds_since(started_, last);
    std::printf("transfers %zu\n", transfers_.size());
    std::printf("completed %zu\n", ok);
    std::printf("failed %zu\n", transfers_.size() - ok);
    std::printf("bytes_received %" PRIu64 "\n", bytes);
    std::printf("seconds %.3f\n", secs);
    std::printf("aggregate_mib_per_s %.1f\n", secs > 0 ? static_cast<double>(bytes) / 1048576 / secs : 0);
    std::printf("receiving_before_first_done %zu\n", overlapped);
    print_latency("transfer", per_transfer, "s", 1);
    // Near 1 s per second of run: the client, not the server, set the pace.
    std::printf("loadgen_cpu_s %.3f\n", own_cpu_seconds());
    if (!first_failure.empty()) std::printf("first_failure %s\n", first_failure.c_str());
}

// Raises the soft open-file limit to the hard one; every transfer needs one.
void raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
}

int run_http(const HttpOptions& o) {
    raise_fd_limit();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        std::fprintf(stderr, "peerd_load: curl_global_init failed\n");
        return 1;
    }
    int rc = 0;
    {
        HttpRun run(o);
        if (run.start()) {
            run.run_until_done();
            run.report();   // failed transfers are a figure, not an error of ours
        } else {
            std::fprintf(stderr, "peerd_load: could not set up %u transfers\n", o.concurrency);
            rc = 1;
        }
    }
    curl_global_cleanup();
    return rc;
}

// ---- control: list_files round trips over the control socket ----

struct ControlOptions {
    std::string socket;
    std::uint32_t requests = 5000;
    std::uint32_t sessions = 500;
    std::uint32_t warmup = 100;
    std::int64_t expect_files = -1;   // checked in every reply when ≥ 0
};

constexpr common::Millis kControlTimeout{10'000};

proto::Result<std::unique_ptr<common::Client>> open_session(const std::string& socket) {
    auto client = common::Client::connect_unix(socket, kControlTimeout);
    if (!client) return client.error();
    proto::Hello hello;
    hello.role = "admin";
    auto welcome = (*client)->request<proto::Welcome>(hello, kControlTimeout);
    if (!welcome) return welcome.error();
    return std::move(*client);
}

// One list round trip; an error, or a reply with the wrong number of files,
// is a failure with a message.
std::optional<std::string> list_once(common::Client& client, std::int64_t expect_files) {
    auto reply = client.request<proto::Publications>(proto::ListFiles{}, kControlTimeout);
    if (!reply) return "list_files: " + reply.error().message;
    const auto n = static_cast<std::int64_t>(reply->files.size());
    if (expect_files >= 0 && n != expect_files) {
        return "list_files returned " + std::to_string(n) + " files, expected " + std::to_string(expect_files);
    }
    return std::nullopt;
}

int fail(const std::string& what) {
    std::fprintf(stderr, "peerd_load: %s\n", what.c_str());
    return 1;
}

int run_control(const ControlOptions& o) {
    auto session = open_session(o.socket);
    if (!session) return fail(session.error().message);
    std::vector<double> round_trips;
    round_trips.reserve(o.requests);
    for (std::uint32_t i = 0; i < o.warmup + o.requests; ++i) {
        const auto t0 = Clock::now();
        if (auto err = list_once(**session, o.expect_files)) return fail(*err);
        if (i >= o.warmup) round_trips.push_back(seconds_since(t0));
    }
    std::vector<double> whole;   // connect + hello + list, then close
    whole.reserve(o.sessions);
    for (std::uint32_t i = 0; i < o.sessions; ++i) {
        const auto t0 = Clock::now();
        auto fresh = open_session(o.socket);
        if (!fresh) return fail(fresh.error().message);
        if (auto err = list_once(**fresh, o.expect_files)) return fail(*err);
        fresh->reset();
        whole.push_back(seconds_since(t0));
    }
    std::printf("control_requests %u\n", o.requests);
    print_latency("control_list", round_trips, "us", 1e6);
    std::printf("control_sessions %u\n", o.sessions);
    print_latency("control_session", whole, "us", 1e6);
    return 0;
}

// ---- publish: the cost of a publish as the publications grow ----

struct PublishOptions {
    std::string socket;
    std::string dir;               // made if missing; the files go here
    std::uint32_t count = 10'000;
    std::string url;               // GET while publishing
    std::uint32_t idle_requests = 200;   // GETs before publishing: the floor
    std::uint32_t interval_ms = 5;       // between GETs while publishing
};

std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) { return size * n; }

// One GET of `url` on a fresh connection; its seconds, or nullopt unless 200.
std::optional<double> time_get(CURL* easy) {
    const auto t0 = Clock::now();
    if (curl_easy_perform(easy) != CURLE_OK) return std::nullopt;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return std::nullopt;
    return seconds_since(t0);
}

std::unique_ptr<CURL, EasyDeleter> make_getter(const std::string& url) {
    std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
    curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(easy.get(), CURLOPT_FORBID_REUSE, 1L);   // a new connection each time, as a peer's fetch
    curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 30'000L);
    return easy;
}

// The median of samples[from, to) in ms.
double window_median_ms(const std::vector<double>& samples, std::size_t from, std::size_t to) {
    return percentile({samples.begin() + static_cast<std::ptrdiff_t>(from),
                       samples.begin() + static_cast<std::ptrdiff_t>(std::min(to, samples.size()))},
                      0.5) *
           1e3;
}

int run_publish(const PublishOptions& o) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(o.dir, ec);
    std::vector<std::string> paths;
    for (std::uint32_t i = 0; i < o.count; ++i) {
        paths.push_back(o.dir + "/f" + std::to_string(i));
        std::ofstream(paths.back()) << "file " << i << "\n";
    }
    auto session = open_session(o.socket);
    if (!session) return fail(session.error().message);
    auto getter = make_getter(o.url);
    std::vector<double> idle;
    for (std::uint32_t i = 0; i < o.idle_requests; ++i) {
        auto t = time_get(getter.get());
        if (!t) return fail("GET " + o.url + " failed before publishing");
        idle.push_back(*t);
    }
    std::atomic<bool> publishing{true};
    std::vector<double> busy;
    std::uint32_t http_errors = 0;
    std::thread prober([&] {   // owns busy and http_errors until joined
        while (publishing.load()) {
            if (auto t = time_get(getter.get())) busy.push_back(*t);
            else ++http_errors;
            std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
        }
    });
    std::vector<double> publishes;
    std::string error;
    for (std::uint32_t i = 0; i < o.count && error.empty(); ++i) {
        const auto t0 = Clock::now();
        auto reply = (*session)->request<proto::Published>(proto::PublishFile{paths[i], "f" + std::to_string(i)},
                                                           kControlTimeout);
        if (!reply) error = "publish " + paths[i] + ": " + reply.error().message;
        publishes.push_back(seconds_since(t0));
    }
    publishing = false;
    prober.join();
    if (!error.empty()) return fail(error);
    const std::size_t n = publishes.size();
    std::printf("publish_count %zu\n", n);
    std::printf("publish_first100_median_ms %.3f\n", window_median_ms(publishes, 0, 100));
    if (n >= 1000) std::printf("publish_at1000_median_ms %.3f\n", window_median_ms(publishes, 900, 1000));
    std::printf("publish_last100_median_ms %.3f\n", window_median_ms(publishes, n > 100 ? n - 100 : 0, n));
    print_latency("publish", publishes, "ms", 1e3);
    print_latency("http_idle", idle, "ms", 1e3);
    std::printf("http_busy_requests %zu\n", busy.size());
    std::printf("http_busy_errors %u\n", http_errors);
    print_latency("http_busy", busy, "ms", 1e3);
    return 0;
}

// ---- spawn: whole processes, interleaved ----

struct Command {
    std::string name;
    std::vector<std::string> argv;
    std::vector<double> samples;
};

// "NAME=PROGRAM ARG..." split on blanks (the script's paths have none).
std::optional<Command> parse_command(const std::string& spec) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return std::nullopt;
    Command c{spec.substr(0, eq), {}, {}};
    std::istringstream words(spec.substr(eq + 1));
    for (std::string w; words >> w;) c.argv.push_back(w);
    if (c.argv.empty()) return std::nullopt;
    return c;
}

// Runs argv with every standard stream on /dev/null; its wall time in
// seconds, or nullopt if it could not start or did not exit 0.
std::optional<double> time_process(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const auto t0 = Clock::now();
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return std::nullopt;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return std::nullopt;
    const double secs = seconds_since(t0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return secs;
}

int run_spawn(std::vector<Command>& commands, std::uint32_t runs) {
    for (std::uint32_t i = 0; i <= runs; ++i) {   // run 0 warms caches, not counted
        for (auto& c : commands) {
            auto secs = time_process(c.argv);
            if (!secs) return fail(c.name + ": `" + c.argv[0] + " ...` failed or exited non-zero");
            if (i > 0) c.samples.push_back(*secs);
        }
    }
    for (const auto& c : commands) {
        std::printf("%s_runs %u\n", c.name.c_str(), runs);
        print_latency(c.name, c.samples, "ms", 1e3);
    }
    return 0;
}

}  // namespace
}  // namespace peershare::bench

int main(int argc, char** argv) {
    using namespace peershare::bench;
    CLI::App app{"peerd_load — load generators for peerd's benchmarks (tests/bench/concurrent.sh)"};
    app.require_subcommand(1);

    HttpOptions http;
    auto* h = app.add_subcommand("http", "N concurrent GETs of one URL");
    h->add_option("--url", http.url, "what to GET")->required();
    h->add_option("--concurrency", http.concurrency, "transfers at once")
        ->capture_default_str()
        ->check(CLI::Range(1u, 10'000u));
    h->add_option("--expect-bytes", http.expect_bytes, "the body size every transfer must get")->required();
    h->add_option("--timeout", http.timeout_s, "seconds a transfer may take")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 3600.0));

    ControlOptions control;
    auto* c = app.add_subcommand("control", "list_files round trips over peerd's control socket");
    c->add_option("--socket", control.socket, "peerd's control socket")->required();
    c->add_option("--requests", control.requests, "round trips on one session")
        ->capture_default_str()
        ->check(CLI::Range(1u, 10'000'000u));
    c->add_option("--sessions", control.sessions, "whole sessions (connect, hello, list)")
        ->capture_default_str()
        ->check(CLI::Range(0u, 1'000'000u));
    c->add_option("--warmup", control.warmup, "round trips before measuring")->capture_default_str();
    c->add_option("--expect-files", control.expect_files, "files every reply must list");

    std::vector<std::string> specs;
    std::uint32_t runs = 200;
    auto* s = app.add_subcommand("spawn", "time whole processes, interleaved");
    s->add_option("--command", specs, "NAME=PROGRAM ARG... (absolute PROGRAM), repeatable")->required();
    s->add_option("--runs", runs, "runs of each command")->capture_default_str()->check(CLI::Range(1u, 100'000u));

    PublishOptions publish;
    auto* p = app.add_subcommand("publish", "publish N small files, timing each, while GETting a URL");
    p->add_option("--socket", publish.socket, "peerd's control socket")->required();
    p->add_option("--dir", publish.dir, "where to make the files")->required();
    p->add_option("--count", publish.count, "files to publish")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1'000'000u));
    p->add_option("--url", publish.url, "what to GET from the same peerd meanwhile")->required();
    p->add_option("--idle-requests", publish.idle_requests, "GETs before publishing")->capture_default_str();
    p->add_option("--interval-ms", publish.interval_ms, "pause between GETs while publishing")
        ->capture_default_str()
        ->check(CLI::Range(0u, 10'000u));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (*h) return run_http(http);
    if (*c) return run_control(control);
    if (*p) return run_publish(publish);
    std::vector<Command> commands;
    for (const auto& spec : specs) {
        auto cmd = parse_command(spec);
        if (!cmd) return fail("bad --command '" + spec + "' (NAME=PROGRAM ARG...)");
        commands.push_back(std::move(*cmd));
    }
    return run_spawn(commands, runs);
}
