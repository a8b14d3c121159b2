// tests/unit/test_fetch.cpp — the download engine (daemon/fetch/engine.hpp) against
// real HTTP servers: each test starts nginx in a temp dir on a free loopback
// port, serving generated files and their piece lists at the peer paths
// (/v1/files/<id>, /v1/files/<id>/pieces), some of them corrupt, lying, busy,
// slow, or partial holders never ready (/have), and counting the pieces
// asked of them (an access log). Paused and resumed fetches start from
// partial files the tests write or leave. The Fetch runs on a common::Loop in
// the test thread; tests wait for conditions with a deadline, never sleep.
// Without nginx they fail, saying so: scripts/lib.sh installs it (nginx-light
// in DEPS).
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "common/token_bucket.hpp"
#include "common/uv.hpp"
#include "daemon/fetch/engine.hpp"
#include "proto/content.hpp"
#include "proto/hex.hpp"

namespace fs = std::filesystem;
using peershare::common::Log;
using peershare::common::LogLevel;
using peershare::common::Loop;
using peershare::peerd::Fetch;
using peershare::peerd::FetchProgress;
using peershare::peerd::FetchRequest;
using peershare::peerd::FetchResult;
using peershare::peerd::partial_path_for;
using peershare::peerd::Source;
using peershare::proto::Bitfield;
using peershare::proto::ErrorCode;
using peershare::proto::json;
using peershare::proto::PieceList;
using peershare::proto::Result;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(30);

// curl_global_init is the program's job (main); here the test binary's.
struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};
const CurlGlobal curl_global;

std::string nginx_binary() {
    for (const char* p : {"/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"}) {
        if (::access(p, X_OK) == 0) return p;
    }
    return {};
}

// Fails the calling test case when nginx is not installed (never passes
// by returning early).
#define REQUIRE_NGINX()                                                                      \
    REQUIRE_MESSAGE(!nginx_binary().empty(),                                                 \
                    "nginx is not installed: run scripts/test, which installs it (scripts/lib.sh " \
                    "DEPS: nginx-light)")

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "peershare-fetch-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& p, std::string_view bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Names in `dir` that look like our partial files.
std::vector<std::string> temp_files_in(const fs::path& dir) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.find(".peershare-part") != std::string::npos) found.push_back(name);
    }
    return found;
}

fs::path partial_of(const fs::path& destination) { return partial_path_for(destination.string()); }

// A file to serve: its bytes, piece list and content id.
struct Content {
    std::string bytes;
    PieceList list;
    std::string id;
};

Content make_content(std::uint64_t size, std::uint64_t seed = 1, std::uint64_t piece_size = 0) {
    Content c;
    std::mt19937_64 rng(seed);
    c.bytes.resize(size);
    for (auto& ch : c.bytes) ch = static_cast<char>(rng());
    c.list.size = size;
    c.list.piece_size = piece_size ? piece_size : peershare::proto::choose_piece_size(size);
    const auto count = peershare::proto::piece_count(size, c.list.piece_size);
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto len = peershare::proto::piece_length(size, c.list.piece_size, i);
        c.list.pieces.push_back(peershare::proto::sha256(
            {reinterpret_cast<const std::uint8_t*>(c.bytes.data()) + i * c.list.piece_size, len}));
    }
    c.id = peershare::proto::to_hex(c.list.content_id());
    return c;
}

// The same content with byte 7 of every `every`-th piece flipped.
std::string corrupted(const Content& c, std::uint64_t every) {
    std::string bad = c.bytes;
    for (std::uint64_t i = 0; i < c.list.pieces.size(); i += every) {
        const auto at = i * c.list.piece_size +
                        std::min<std::uint64_t>(7, c.bytes.size() - 1 - i * c.list.piece_size);
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    }
    return bad;
}

// A port nobody listens on right now.
std::uint16_t free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

bool accepts_connections(std::uint16_t port) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

struct NginxOptions {
    std::string limit_rate;  // e.g. "16k": each response at most that many bytes/s after the first
                             // second's worth
    bool busy = false;       // every request gets 503 with Retry-After: 1
    // A partial holder (docs/protocol.md §11.8) whose /have lists every piece
    // but that answers every range with 503 "not here yet".
    bool not_here = false;
};

// Every request nginx answered, as "URI STATUS" lines.
constexpr std::string_view kLogFormat = "log_format uris '$uri $status';\n";

// nginx lets a response's first second of data through at once, so a slow
// source is one with pieces twice the rate: each piece takes about a second.
constexpr std::uint64_t kSlowPiece = 32 * 1024;
const NginxOptions kSlow{.limit_rate = "16k", .busy = false};

// One nginx process in its own temp dir, serving files added with serve().
// Killed (and waited for) in the destructor.
class Nginx {
public:
    explicit Nginx(NginxOptions options = {}) : options_(std::move(options)) {
        fs::create_directories(dir_.path / "files");
        fs::create_directories(dir_.path / "lists");
        fs::create_directories(dir_.path / "haves");
        fs::create_directories(dir_.path / "tmp");
        for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) try_start(free_port());
        REQUIRE_MESSAGE(pid_ > 0, "nginx did not start: " << read_file(dir_.path / "error.log"));
    }
    ~Nginx() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    std::uint16_t port() const { return port_; }
    // SIGSTOP: connections are still accepted (by the kernel), never answered.
    void freeze() { ::kill(pid_, SIGSTOP); }
    Source source(std::string peer) const { return {std::move(peer), "127.0.0.1", port_}; }

    // Serves `bytes` under c.id and the piece list (c's, or `list` if given).
    void serve(const Content& c, std::string_view bytes, std::optional<json> list = std::nullopt) {
        write_file(dir_.path / "files" / c.id, bytes);
        write_file(dir_.path / "lists" / (c.id + ".json"),
                   (list ? *list : c.list.to_json()).dump());
        Bitfield all(c.list.pieces.size());   // the /have of a not_here server
        for (std::uint64_t i = 0; i < all.size(); ++i) all.set(i);
        write_file(dir_.path / "haves" / c.id,
                   {reinterpret_cast<const char*>(all.bytes().data()), all.bytes().size()});
    }
    void serve(const Content& c) { serve(c, c.bytes); }
    // Serves the file but no piece list (its URL answers 404).
    void serve_without_list(const Content& c) { write_file(dir_.path / "files" / c.id, c.bytes); }

    // How many requests for the file's bytes (not its piece list) were answered.
    std::size_t piece_requests(const Content& c) const { return count_lines("/v1/files/" + c.id + " "); }
    // How many requests for the file's bytes were answered 503.
    std::size_t refused_piece_requests(const Content& c) const {
        return count_lines("/v1/files/" + c.id + " 503");
    }
    std::size_t list_requests(const Content& c) const {
        return count_lines("/v1/files/" + c.id + "/pieces ");
    }

private:
    void try_start(std::uint16_t port) {
        const auto d = dir_.path.string();
        const std::string pieces = "location ~ \"^/v1/files/([0-9a-f]{64})/pieces$\" { default_type "
                                   "application/json; alias " + d + "/lists/$1.json; }\n";
        std::string location;
        if (options_.busy) {
            location = "location /v1/ { add_header Retry-After 1 always; return 503; }\n";
        } else if (options_.not_here) {
            location = pieces + "location ~ \"^/v1/files/([0-9a-f]{64})/have$\" { alias " + d +
                       "/haves/$1; }\n"
                       "location /v1/ { add_header Retry-After 1 always; "
                       "add_header Peershare-Missing-Piece 0 always; return 503; }\n";
        } else {
            location = pieces + "location ~ \"^/v1/files/([0-9a-f]{64})$\" { alias " + d + "/files/$1; }\n";
        }
        const std::string conf =
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid " +
            d + "/nginx.pid;\nerror_log " + d +
            "/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n " + std::string(kLogFormat) + " access_log " + d +
            "/access.log uris;\n sendfile on;\n keepalive_requests 100000;\n"
            " default_type application/octet-stream;\n" +
            (options_.limit_rate.empty() ? "" : " limit_rate " + options_.limit_rate + ";\n") +
            " client_body_temp_path " + d + "/tmp/body;\n proxy_temp_path " + d +
            "/tmp/proxy;\n"
            " fastcgi_temp_path " +
            d + "/tmp/fastcgi;\n uwsgi_temp_path " + d +
            "/tmp/uwsgi;\n"
            " scgi_temp_path " +
            d +
            "/tmp/scgi;\n"
            " server {\n  listen 127.0.0.1:" +
            std::to_string(port) + ";\n  " + location + " }\n}\n";
        write_file(dir_.path / "nginx.conf", conf);

        const std::string binary = nginx_binary();
        const std::string prefix = d + "/", conf_path = d + "/nginx.conf",
                          log_path = d + "/error.log";
        std::vector<char*> argv = {const_cast<char*>(binary.c_str()),    const_cast<char*>("-p"),
                                   const_cast<char*>(prefix.c_str()),    const_cast<char*>("-c"),
                                   const_cast<char*>(conf_path.c_str()), const_cast<char*>("-e"),
                                   const_cast<char*>(log_path.c_str()),  nullptr};
        // fork + exec rather than posix_spawn, to ask for SIGKILL when this
        // process dies: even a crashed test leaves no nginx behind.
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) return;
        if (pid == 0) {  // only async-signal-safe calls from here
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            const int null_fd = ::open("/dev/null", O_WRONLY);
            const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (null_fd < 0 || log_fd < 0) ::_exit(127);
            ::dup2(null_fd, 1);
            ::dup2(log_fd, 2);
            ::execv(binary.c_str(), argv.data());
            ::_exit(127);
        }

        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (Clock::now() < deadline) {
            if (::waitpid(pid, nullptr, WNOHANG) == pid)
                return;  // exited: port taken, or bad config
            if (accepts_connections(port)) {
                pid_ = pid;
                port_ = port;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }

    // nginx writes a log line when it has answered: the counts are final
    // once the fetch has its answer.
    std::size_t count_lines(const std::string& prefix) const {
        std::ifstream in(dir_.path / "access.log");
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);) n += line.starts_with(prefix) ? 1 : 0;
        return n;
    }

    NginxOptions options_;
    TempDir dir_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
};

FetchRequest request_for(const Content& c, const fs::path& destination,
                         std::vector<Source> sources) {
    FetchRequest r;
    r.name = destination.filename().string();
    r.id = c.id;
    r.size = c.list.size;
    r.piece_size = c.list.piece_size;
    r.sources = std::move(sources);
    r.destination = destination.string();
    r.partial_path = partial_path_for(r.destination);
    return r;
}

// Runs one fetch on a loop in this thread until DoneFn, with a deadline.
// `on_progress` may cancel the fetch or ask (by returning true) that the
// Fetch object be destroyed right after the callback returns.
struct Run {
    std::optional<Result<FetchResult>> result;
    std::vector<FetchProgress> progress;
    std::vector<Bitfield> durable;   // every DurableFn report, in order
    std::vector<PieceList> lists;    // every PieceListFn call
    bool destroyed = false;
    int done_calls = 0;
    int durable_after_done = 0;
};

Run run_fetch(FetchRequest request,
              std::function<bool(Fetch&, const FetchProgress&)> on_progress = {},
              std::function<bool(Fetch&, const Run&)> on_durable = {}) {
    Run run;
    static const Log log("test_fetch", LogLevel::warning);
    Loop loop;
    std::unique_ptr<Fetch> fetch;
    Fetch::Callbacks callbacks;
    callbacks.progress = [&](const FetchProgress& p) {
        run.progress.push_back(p);
        if (on_progress && on_progress(*fetch, p)) run.destroyed = true;
    };
    callbacks.piece_list = [&](const PieceList& l) { run.lists.push_back(l); };
    callbacks.durable = [&](const Bitfield& have) {
        if (run.done_calls > 0) ++run.durable_after_done;
        run.durable.push_back(have);
        if (on_durable && on_durable(*fetch, run)) run.destroyed = true;
    };
    callbacks.done = [&](Result<FetchResult> r) {
        ++run.done_calls;
        run.result.emplace(std::move(r));
        fetch.reset();  // the owner may destroy the Fetch inside DoneFn
    };
    fetch = std::make_unique<Fetch>(loop.get(), log, std::move(request), std::move(callbacks));
    fetch->start();
    const auto deadline = Clock::now() + kDeadline;
    while (!run.result && !run.destroyed && Clock::now() < deadline) loop.run(UV_RUN_ONCE);
    if (run.destroyed) fetch.reset();
    REQUIRE_MESSAGE((run.result || run.destroyed), "the fetch did not finish in time");
    return run;  // ~Loop runs the loop until every handle and work item is done
}

Fetch::Callbacks only_done(Fetch::DoneFn done) {
    Fetch::Callbacks c;
    c.done = std::move(done);
    return c;
}

// The error message of a failed result, for REQUIRE_MESSAGE (evaluated even on success).
std::string failure_of(const Result<FetchResult>& r) { return r.ok() ? "" : r.error().message; }

const peershare::peerd::SourceProgress* source_named(const FetchProgress& p,
                                                     std::string_view peer) {
    for (const auto& s : p.sources) {
        if (s.peer == peer) return &s;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("fetch: a file comes out byte for byte, whatever its size") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    for (const std::uint64_t size :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{256 * 1024},
          std::uint64_t{256 * 1024 + 1}, std::uint64_t{5 * 1024 * 1024 + 123}}) {
        CAPTURE(size);
        const auto c = make_content(size, size + 7);
        server.serve(c);
        const auto dest = out.path / ("file-" + std::to_string(size));
        auto run = run_fetch(request_for(c, dest, {server.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(run.done_calls == 1);
        const auto& r = run.result->value();
        CHECK(r.path == dest.string());
        CHECK(r.bytes == size);
        CHECK(r.sources_used == std::vector<std::string>{"alice"});
        CHECK(read_file(dest) == c.bytes);
        struct stat st {};
        REQUIRE(::stat(dest.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0644);
        CHECK(temp_files_in(out.path).empty());
        if (!run.progress.empty()) {
            CHECK(run.progress.back().done == size);
            CHECK(run.progress.back().total == size);
        }
    }
}

TEST_CASE("fetch: progress counts up to the total and names every source") {
    REQUIRE_NGINX();
    Nginx server(kSlow);
    TempDir out;
    const auto c = make_content(4 * kSlowPiece, 3, kSlowPiece);  // one round of 4 requests: ~1 s
    server.serve(c);
    auto run = run_fetch(request_for(c, out.path / "f", {server.source("alice")}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    REQUIRE(run.progress.size() >= 2);  // several ticks, then the final one
    std::uint64_t last = 0;
    for (const auto& p : run.progress) {
        CHECK(p.total == c.bytes.size());
        CHECK(p.done >= last);
        last = p.done;
        REQUIRE(p.sources.size() == 1);
        CHECK(p.sources[0].peer == "alice");
        CHECK_FALSE(p.sources[0].dropped);
    }
    CHECK(run.progress.back().done == c.bytes.size());
    CHECK(run.progress.back().sources[0].bytes == c.bytes.size());
    CHECK(run.progress.back().stalled_ms == 0);
    bool saw_rate = false;
    for (const auto& p : run.progress) saw_rate = saw_rate || p.rate > 0;
    CHECK(saw_rate);
}

TEST_CASE("fetch: an existing destination is refused without force and replaced with it") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(300 * 1024, 11);
    server.serve(c);
    const auto dest = out.path / "taken";
    write_file(dest, "precious");

    SUBCASE("without force: refused before any transfer, file untouched") {
        auto run = run_fetch(request_for(c, dest, {server.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().code == ErrorCode::bad_request);
        CHECK(run.result->error().message == dest.string() + " exists; use --force to overwrite");
        CHECK(read_file(dest) == "precious");
        CHECK(temp_files_in(out.path).empty());
    }
    SUBCASE("with force: overwritten") {
        auto req = request_for(c, dest, {server.source("alice")});
        req.force = true;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        CHECK(temp_files_in(out.path).empty());
    }
}

TEST_CASE("fetch: a destination that appears during the fetch is never clobbered") {
    REQUIRE_NGINX();
    Nginx slow(kSlow);
    TempDir out;
    const auto c = make_content(4 * kSlowPiece, 12, kSlowPiece);
    slow.serve(c);
    const auto dest = out.path / "raced";
    bool created = false;
    auto run =
        run_fetch(request_for(c, dest, {slow.source("alice")}), [&](Fetch&, const FetchProgress&) {
            if (!created) {
                write_file(dest, "someone else's");
                created = true;
            }
            return false;
        });
    REQUIRE(created);
    REQUIRE(run.result);
    REQUIRE_FALSE(run.result->ok());
    CHECK(run.result->error().message.find("exists; use --force") != std::string::npos);
    CHECK(read_file(dest) == "someone else's");
    // Every verified byte stays in the partial file, reported durable.
    CHECK(read_file(partial_of(dest)) == c.bytes);
    REQUIRE_FALSE(run.durable.empty());
    CHECK(run.durable.back().all());
}

TEST_CASE("fetch: a corrupt source is caught at the piece and the file completes from a good one") {
    REQUIRE_NGINX();
    Nginx bad, good;
    TempDir out;
    // 129 small pieces: the bad source surely gets several before the good one is done.
    const auto c = make_content(2 * 1024 * 1024 + 5, 21, 16 * 1024);
    good.serve(c);
    const auto dest = out.path / "f";

    SUBCASE("a flipped byte in some pieces") {
        bad.serve(c, corrupted(c, 8));
        auto run = run_fetch(request_for(c, dest, {bad.source("mallory"), good.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
    }
    SUBCASE("every piece corrupt: the source is dropped after three") {
        bad.serve(c, corrupted(c, 1));
        auto run = run_fetch(request_for(c, dest, {bad.source("mallory"), good.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        CHECK(run.result->value().sources_used == std::vector<std::string>{"alice"});
        REQUIRE_FALSE(run.progress.empty());  // the final progress is always reported
        const auto* m = source_named(run.progress.back(), "mallory");
        REQUIRE(m);
        CHECK(m->dropped);
        CHECK(m->bytes == 0);
        CHECK(m->why.find("does not match its hash") != std::string::npos);
    }
    SUBCASE("a lying piece list") {
        auto list = c.list.to_json();
        list["pieces"][3] = std::string(64, 'a');
        bad.serve(c, c.bytes, list);
        auto run = run_fetch(request_for(c, dest, {bad.source("mallory"), good.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        const auto* m = source_named(run.progress.back(), "mallory");
        REQUIRE(m);
        CHECK(m->dropped);
        CHECK(m->why.find("piece list") != std::string::npos);
    }
    SUBCASE("a source nobody listens on") {
        auto run = run_fetch(
            request_for(c, dest, {{"ghost", "127.0.0.1", free_port()}, good.source("alice")}));
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        const auto* g = source_named(run.progress.back(), "ghost");
        REQUIRE(g);
        CHECK(g->dropped);
        CHECK(g->why.find("cannot connect") != std::string::npos);
    }
    CHECK(temp_files_in(out.path).empty());
}

TEST_CASE("fetch: pieces come from every source at once") {
    REQUIRE_NGINX();
    Nginx a(kSlow), b(kSlow);  // slow, so neither can do it all alone before the other starts
    TempDir out;
    const auto c = make_content(8 * kSlowPiece, 31, kSlowPiece);
    a.serve(c);
    b.serve(c);
    auto run = run_fetch(request_for(c, out.path / "f", {a.source("alice"), b.source("bob")}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    auto used = run.result->value().sources_used;
    CHECK(used == std::vector<std::string>{"alice", "bob"});
    const auto& last = run.progress.back();
    CHECK(source_named(last, "alice")->bytes + source_named(last, "bob")->bytes == c.bytes.size());
}

TEST_CASE("fetch: at the end, a fast source takes over the pieces a slow one still holds") {
    REQUIRE_NGINX();
    // 32 KiB pieces at 8 KB/s after the first 8 KiB: 3 s each from the slow source.
    Nginx slow({.limit_rate = "8k", .busy = false}), fast;
    TempDir out;
    const auto c = make_content(8 * kSlowPiece, 35, kSlowPiece);
    slow.serve(c);
    fast.serve(c);
    auto run =
        run_fetch(request_for(c, out.path / "f", {slow.source("slow"), fast.source("fast")}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    const auto& last = run.progress.back();
    CHECK(source_named(last, "fast")->bytes == c.bytes.size());
    CHECK(source_named(last, "slow")->bytes == 0);
    CHECK_FALSE(source_named(last, "slow")->dropped);
}

TEST_CASE("fetch: a busy source is waited for while another one serves") {
    REQUIRE_NGINX();
    Nginx busy({.limit_rate = "", .busy = true}), good;
    TempDir out;
    const auto c = make_content(1024 * 1024, 41);
    good.serve(c);
    auto run =
        run_fetch(request_for(c, out.path / "f", {busy.source("busy"), good.source("alice")}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    CHECK(run.result->value().sources_used == std::vector<std::string>{"alice"});
}

TEST_CASE("fetch: 'not here yet' from a partial holder is no strike: asked for more than 3 pieces, it is never dropped") {
    REQUIRE_NGINX();
    // The complete holder is slow, so the partial one is asked for pieces
    // while the fetch runs (docs/protocol.md §11.7, step 0).
    Nginx good(kSlow), partial({.limit_rate = "", .busy = false, .not_here = true});
    TempDir out;
    const auto c = make_content(8 * kSlowPiece, 43, kSlowPiece);
    good.serve(c);
    partial.serve(c);
    auto sources = std::vector<Source>{good.source("alice"), partial.source("carol")};
    sources[1].partial = true;
    auto run = run_fetch(request_for(c, out.path / "f", sources));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    CHECK(run.result->value().sources_used == std::vector<std::string>{"alice"});
    // More "not here yet" answers than the strikes that drop a source.
    CHECK(partial.refused_piece_requests(c) > 3);
    const auto* carol = source_named(run.progress.back(), "carol");
    REQUIRE(carol);
    CHECK_MESSAGE(!carol->dropped, carol->why);
}

TEST_CASE("fetch: when every source is bad the fetch fails as 'no source left' and keeps the partial file") {
    REQUIRE_NGINX();
    Nginx corrupt, liar;
    TempDir out;
    const auto c = make_content(1024 * 1024 + 17, 51);
    corrupt.serve(c, corrupted(c, 1));
    auto list = c.list.to_json();
    list["size"] = c.list.size + 1;
    liar.serve(c, c.bytes, list);
    const auto dest = out.path / "f";
    auto run = run_fetch(request_for(
        c, dest,
        {corrupt.source("mallory"), liar.source("trudy"), {"ghost", "127.0.0.1", free_port()}}));
    REQUIRE(run.result);
    REQUIRE_FALSE(run.result->ok());
    const auto& message = run.result->error().message;
    CHECK(run.result->error().code == ErrorCode::unavailable);
    CHECK(message.find("mallory: ") != std::string::npos);
    CHECK(message.find("trudy: ") != std::string::npos);
    CHECK(message.find("ghost: cannot connect") != std::string::npos);
    CHECK(peershare::peerd::no_source_left(run.result->error()));
    CHECK_FALSE(peershare::peerd::cancelled(run.result->error()));
    CHECK_FALSE(fs::exists(dest));
    CHECK(fs::file_size(partial_of(dest)) == c.bytes.size());
    REQUIRE(peershare::peerd::remove_partial(partial_of(dest)).ok());
    CHECK(temp_files_in(out.path).empty());
    CHECK(peershare::peerd::remove_partial(partial_of(dest)).ok());  // absent is fine
}

TEST_CASE("fetch: bad requests fail cleanly") {
    TempDir out;
    const auto c = make_content(1000, 61);
    SUBCASE("no source") {
        auto run = run_fetch(request_for(c, out.path / "f", {}));
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().code == ErrorCode::not_found);
    }
    SUBCASE("a source address that is neither a name nor an IP literal") {
        auto run = run_fetch(request_for(c, out.path / "f", {{"evil", "example.com/x?", 80}}));
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().message.find("evil: not a host name or IP address") != std::string::npos);
        CHECK(peershare::peerd::no_source_left(run.result->error()));
    }
    SUBCASE("a directory that does not exist") {
        auto run =
            run_fetch(request_for(c, out.path / "no" / "such" / "f", {{"a", "127.0.0.1", 1}}));
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().message.find("cannot create the partial file") !=
              std::string::npos);
    }
    SUBCASE("a bitfield of the wrong size") {
        auto req = request_for(c, out.path / "f", {{"a", "127.0.0.1", 1}});
        req.have = Bitfield(2);
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().code == ErrorCode::bad_request);
    }
    SUBCASE("a piece list that is not the content's") {
        auto req = request_for(c, out.path / "f", {{"a", "127.0.0.1", 1}});
        req.pieces = c.list.pieces;
        req.pieces[0][0] ^= 1;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().message.find("does not match its content id") !=
              std::string::npos);
    }
    SUBCASE("a partial file path that is not absolute") {
        auto req = request_for(c, out.path / "f", {{"a", "127.0.0.1", 1}});
        req.partial_path = "f.part";
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().code == ErrorCode::bad_request);
    }
    CHECK(temp_files_in(out.path).empty());
}

TEST_CASE("fetch: cancel and destruction keep the partial file; remove_partial removes it") {
    REQUIRE_NGINX();
    Nginx slow(kSlow);
    TempDir out;
    const auto c =
        make_content(8 * kSlowPiece, 71, kSlowPiece);  // two rounds: cancelled in the second
    slow.serve(c);
    const auto dest = out.path / "f";
    bool saw_temp = false;

    SUBCASE("cancel") {
        auto run = run_fetch(request_for(c, dest, {slow.source("alice")}),
                             [&](Fetch& f, const FetchProgress& p) {
                                 if (p.done == 0) return false;
                                 saw_temp = !temp_files_in(out.path).empty();
                                 f.cancel();
                                 return false;
                             });
        REQUIRE(run.result);
        REQUIRE_FALSE(run.result->ok());
        CHECK(run.result->error().message == "cancelled");
        CHECK(peershare::peerd::cancelled(run.result->error()));
        CHECK_FALSE(peershare::peerd::no_source_left(run.result->error()));
        CHECK(run.done_calls == 1);
        // What was verified before the cancel is reported durable before DoneFn.
        REQUIRE_FALSE(run.durable.empty());
        CHECK(run.durable.back().count() * kSlowPiece >= run.progress.back().done);
        CHECK(run.durable_after_done == 0);
    }
    SUBCASE("destroying the Fetch") {
        auto run = run_fetch(request_for(c, dest, {slow.source("alice")}),
                             [&](Fetch&, const FetchProgress& p) {
                                 if (p.done == 0) return false;
                                 saw_temp = !temp_files_in(out.path).empty();
                                 return true;
                             });
        CHECK(run.destroyed);
        CHECK_FALSE(run.result);  // DoneFn is not called by the destructor
    }
    CHECK(saw_temp);
    CHECK_FALSE(fs::exists(dest));
    CHECK(fs::file_size(partial_of(dest)) == c.bytes.size());
    REQUIRE(peershare::peerd::remove_partial(partial_of(dest)).ok());
    CHECK(temp_files_in(out.path).empty());
}

TEST_CASE("fetch: cancel before start still answers once") {
    static const Log log("test_fetch", LogLevel::warning);
    Loop loop;
    TempDir out;
    const auto c = make_content(10, 81);
    int calls = 0;
    std::optional<Result<FetchResult>> result;
    Fetch fetch(loop.get(), log, request_for(c, out.path / "f", {{"a", "127.0.0.1", 1}}),
                only_done([&](Result<FetchResult> r) {
                    ++calls;
                    result.emplace(std::move(r));
                }));
    fetch.cancel();
    fetch.start();
    fetch.cancel();
    const auto deadline = Clock::now() + kDeadline;
    while (!result && Clock::now() < deadline) loop.run(UV_RUN_ONCE);
    REQUIRE(result);
    REQUIRE_FALSE(result->ok());
    CHECK(result->error().message == "cancelled");
    loop.run(UV_RUN_NOWAIT);
    CHECK(calls == 1);
}

TEST_CASE("fetch: destroying or cancelling at any point leaves a whole file or a partial one") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(6 * 1024 * 1024 + 99, 91);
    server.serve(c);
    static const Log log("test_fetch", LogLevel::warning);
    // Either the file is in place, or its partial file (of the full size) is
    // there: never both.
    const auto whole_or_partial = [&](const fs::path& dest) {
        const auto partial = partial_of(dest);
        if (fs::exists(dest)) {
            CHECK(read_file(dest) == c.bytes);
            CHECK_FALSE(fs::exists(partial));
        } else if (fs::exists(partial)) {
            CHECK(fs::file_size(partial) == c.bytes.size());
        }
        REQUIRE(peershare::peerd::remove_partial(partial).ok());
        CHECK(temp_files_in(out.path).empty());
    };
    // Loop turns before the interruption: every one from "not even prepared"
    // to "done" (such a fetch takes some 10 to 30 turns on loopback).
    std::vector<int> all_turns;
    for (int t = 0; t <= 40; ++t) all_turns.push_back(t);
    SUBCASE("destroy") {
        for (const int turns : all_turns) {
            CAPTURE(turns);
            const auto dest = out.path / ("d" + std::to_string(turns));
            {
                Loop loop;
                std::optional<Result<FetchResult>> result;
                auto fetch = std::make_unique<Fetch>(
                    loop.get(), log, request_for(c, dest, {server.source("alice")}),
                    only_done([&](Result<FetchResult> r) { result.emplace(std::move(r)); }));
                fetch->start();
                for (int i = 0; i < turns && !result; ++i) loop.run(UV_RUN_ONCE);
                fetch.reset();
            }  // ~Loop: work items still in the pool come back and are freed
            whole_or_partial(dest);
        }
    }
    SUBCASE("cancel") {
        for (const int turns : all_turns) {
            CAPTURE(turns);
            const auto dest = out.path / ("c" + std::to_string(turns));
            Loop loop;
            int calls = 0;
            std::optional<Result<FetchResult>> result;
            Fetch fetch(loop.get(), log, request_for(c, dest, {server.source("alice")}),
                        only_done([&](Result<FetchResult> r) {
                            ++calls;
                            result.emplace(std::move(r));
                        }));
            fetch.start();
            for (int i = 0; i < turns && !result; ++i) loop.run(UV_RUN_ONCE);
            fetch.cancel();
            const auto deadline = Clock::now() + kDeadline;
            while (!result && Clock::now() < deadline) loop.run(UV_RUN_ONCE);
            REQUIRE(result);
            fetch.cancel();  // after the end: nothing happens
            loop.run(UV_RUN_NOWAIT);
            CHECK(calls == 1);
            if (!result->ok()) {
                CHECK(result->error().message == "cancelled");
                CHECK_FALSE(fs::exists(dest));
            }
            whole_or_partial(dest);
        }
    }
}

TEST_CASE("fetch: a directory in the way is refused even with force") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(1000, 92);
    server.serve(c);
    fs::create_directory(out.path / "dir");
    auto req = request_for(c, out.path / "dir", {server.source("alice")});
    req.force = true;
    auto run = run_fetch(req);
    REQUIRE(run.result);
    REQUIRE_FALSE(run.result->ok());
    CHECK(run.result->error().message.find("is a directory") != std::string::npos);
    CHECK(fs::is_directory(out.path / "dir"));
    CHECK(temp_files_in(out.path).empty());
}

// ---- pause, resume, adopt ----

namespace {

// Writes `bytes` as a partial file for c at `path`, with the pieces in
// `garbage` overwritten by other bytes.
void write_partial(const fs::path& path, const Content& c, const std::vector<std::uint64_t>& garbage) {
    std::string bytes = c.bytes;
    for (const auto i : garbage) {
        const auto at = i * c.list.piece_size;
        const auto len = peershare::proto::piece_length(c.list.size, c.list.piece_size, i);
        for (std::uint64_t k = 0; k < len; ++k) bytes[at + k] = static_cast<char>(bytes[at + k] ^ 0xa5);
    }
    write_file(path, bytes);
}

// A fetch that continues one before it: the piece list and the pieces it reported.
FetchRequest resumed(const Content& c, const fs::path& destination, Source source, Bitfield have) {
    auto r = request_for(c, destination, {std::move(source)});
    r.pieces = c.list.pieces;
    r.have = std::move(have);
    return r;
}

// Each report holds every piece of the one before.
bool only_grows(const std::vector<Bitfield>& reports) {
    for (std::size_t k = 1; k < reports.size(); ++k) {
        for (std::uint64_t i = 0; i < reports[k].size(); ++i) {
            if (reports[k - 1].test(i) && !reports[k].test(i)) return false;
        }
    }
    return true;
}

Bitfield all_pieces(const Content& c) {
    Bitfield b(c.list.pieces.size());
    for (std::uint64_t i = 0; i < b.size(); ++i) b.set(i);
    return b;
}

}  // namespace

TEST_CASE("partial_path_for: a hidden, stable name beside the destination") {
    CHECK(partial_path_for("/data/film.mkv") == "/data/.film.mkv.peershare-part");
    CHECK(partial_path_for("/film.mkv") == "/.film.mkv.peershare-part");
    CHECK(partial_path_for("/data/film.mkv") == partial_path_for("/data/film.mkv"));
    const auto long_name = partial_path_for("/d/" + std::string(300, 'x'));
    CHECK(long_name.size() - 3 <= NAME_MAX);
    CHECK(long_name.ends_with(".peershare-part"));
}

TEST_CASE("fetch: a paused fetch resumes from the pieces it reported durable") {
    REQUIRE_NGINX();
    Nginx slow(kSlow), fast;
    TempDir out;
    const auto c = make_content(16 * kSlowPiece, 101, kSlowPiece);
    slow.serve(c);
    fast.serve_without_list(c);  // the second fetch carries the piece list
    const auto dest = out.path / "f";

    // Paused (the Fetch destroyed) once some pieces are durable.
    auto first = run_fetch(request_for(c, dest, {slow.source("slow")}), {},
                           [](Fetch&, const Run& r) { return r.durable.back().count() > 0; });
    REQUIRE(first.destroyed);
    REQUIRE(first.lists.size() == 1);
    CHECK(first.lists[0].pieces == c.list.pieces);
    const Bitfield have = first.durable.back();
    REQUIRE(have.count() > 0);
    REQUIRE_FALSE(have.all());
    CHECK(only_grows(first.durable));
    CHECK_FALSE(fs::exists(dest));
    REQUIRE(fs::exists(partial_of(dest)));

    auto second = run_fetch(resumed(c, dest, fast.source("fast"), have));
    REQUIRE(second.result);
    REQUIRE_MESSAGE(second.result->ok(), failure_of(*second.result));
    CHECK(read_file(dest) == c.bytes);
    CHECK(temp_files_in(out.path).empty());
    CHECK(second.lists.empty());  // the request carried the list
    CHECK(fast.list_requests(c) == 0);
    CHECK(fast.piece_requests(c) == c.list.pieces.size() - have.count());
    REQUIRE_FALSE(second.durable.empty());
    CHECK(only_grows(second.durable));
    CHECK(second.durable.back().all());
    CHECK(second.durable_after_done == 0);
    CHECK(second.progress.back().sources[0].bytes ==
          c.bytes.size() - have.count() * kSlowPiece);
}

TEST_CASE("fetch: a claimed piece that is wrong on disk is found and fetched again") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(40 * 16 * 1024 + 5, 111, 16 * 1024);  // 41 pieces
    server.serve_without_list(c);
    const auto dest = out.path / "f";
    write_partial(partial_of(dest), c, {2, 40});

    auto req = request_for(c, dest, {server.source("alice")});
    req.pieces = c.list.pieces;
    req.have = all_pieces(c);
    auto run = run_fetch(req);
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(dest) == c.bytes);
    CHECK(server.piece_requests(c) == 2);
    REQUIRE(run.durable.size() >= 2);
    auto expected = all_pieces(c);
    expected.reset(2);
    expected.reset(40);
    CHECK(run.durable.front() == expected);  // the two bad claims are withdrawn
    CHECK(run.durable.back().all());
}

TEST_CASE("fetch: a partial file with no record is adopted: its good pieces are kept") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(30 * 16 * 1024, 121, 16 * 1024);
    server.serve(c);
    const auto dest = out.path / "f";
    write_partial(partial_of(dest), c, {0, 7, 8, 29});

    SUBCASE("the piece list from the source") {
        auto req = request_for(c, dest, {server.source("alice")});
        req.adopt = true;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        CHECK(run.lists.size() == 1);
        CHECK(server.piece_requests(c) == 4);
    }
    SUBCASE("a file of another size is made the right size, and checked") {
        std::filesystem::resize_file(partial_of(dest), c.bytes.size() / 2);
        auto req = request_for(c, dest, {server.source("alice")});
        req.adopt = true;
        req.pieces = c.list.pieces;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(read_file(dest) == c.bytes);
        CHECK(server.piece_requests(c) == 3 + 15);  // 0, 7 and 8 bad; 15 to 29 cut off
    }
}

TEST_CASE("fetch: after 'no source left', a new fetch with a fresh source continues") {
    REQUIRE_NGINX();
    Nginx bad, good;
    TempDir out;
    const auto c = make_content(64 * 16 * 1024, 131, 16 * 1024);
    bad.serve(c, corrupted(c, 4));  // every fourth piece wrong: dropped after three of them
    good.serve(c);
    const auto dest = out.path / "f";

    auto first = run_fetch(request_for(c, dest, {bad.source("mallory")}));
    REQUIRE(first.result);
    REQUIRE_FALSE(first.result->ok());
    CHECK(peershare::peerd::no_source_left(first.result->error()));
    REQUIRE(fs::exists(partial_of(dest)));
    const Bitfield have = first.durable.empty() ? Bitfield(c.list.pieces.size()) : first.durable.back();
    for (std::uint64_t i = 0; i < have.size(); i += 4) CHECK_FALSE(have.test(i));  // never a bad one

    auto second = run_fetch(resumed(c, dest, good.source("alice"), have));
    REQUIRE(second.result);
    REQUIRE_MESSAGE(second.result->ok(), failure_of(*second.result));
    CHECK(read_file(dest) == c.bytes);
    CHECK(good.piece_requests(c) == c.list.pieces.size() - have.count());
}

TEST_CASE("fetch: a source that sends nothing is marked stalled and its pieces go to another") {
    REQUIRE_NGINX();
    Nginx frozen, slow(kSlow);
    TempDir out;
    // From the slow source alone: 6 rounds of about a second, longer than the stall delay.
    const auto c = make_content(24 * kSlowPiece, 141, kSlowPiece);
    frozen.serve(c);
    slow.serve(c);
    frozen.freeze();
    auto req = request_for(c, out.path / "f", {frozen.source("frozen"), slow.source("slow")});
    req.pieces = c.list.pieces;  // no piece list to wait for: both are asked for pieces at once
    auto run = run_fetch(req);
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    bool seen_stalled = false;
    for (const auto& p : run.progress) {
        const auto* f = source_named(p, "frozen");
        REQUIRE(f);
        CHECK_FALSE(f->dropped);
        seen_stalled = seen_stalled || f->stalled;
        CHECK_FALSE(source_named(p, "slow")->stalled);
    }
    CHECK(seen_stalled);
    CHECK(source_named(run.progress.back(), "slow")->bytes == c.bytes.size());
}

TEST_CASE("piece deadlines: a floor plus the piece at the minimum rate") {
    const peershare::peerd::RequestDeadlines d;   // the defaults, documented in engine.hpp
    CHECK(d.list_ms == 30'000);
    CHECK(peershare::peerd::piece_deadline_ms(256 * 1024, d) == 62'000);
    CHECK(peershare::peerd::piece_deadline_ms(0, {1'000, 500, 1024}) == 500);
    CHECK(peershare::peerd::piece_deadline_ms(4096, {1'000, 500, 1024}) == 4'500);
}

TEST_CASE("fetch: a source that trickles bytes misses its piece deadline and is dropped, not waited for") {
    REQUIRE_NGINX();
    // 2 KiB/s per connection: each 32 KiB piece takes about 15 s, though
    // bytes keep coming (no stall). Each piece is due within 1 s.
    Nginx trickle({.limit_rate = "2k", .busy = false});
    TempDir out;
    const auto c = make_content(4 * kSlowPiece, 77, kSlowPiece);
    trickle.serve(c);
    auto req = request_for(c, out.path / "f", {trickle.source("trickle")});
    req.pieces = c.list.pieces;
    req.deadlines = {1'000, 500, 64 * 1024};
    auto run = run_fetch(req);
    REQUIRE(run.result);
    REQUIRE_FALSE(run.result->ok());
    CHECK(peershare::peerd::no_source_left(run.result->error()));
    const auto& message = run.result->error().message;
    CHECK_MESSAGE(message.find("trickle: ") != std::string::npos, message);
    CHECK_MESSAGE(message.find("deadline of 1 s") != std::string::npos, message);
}

TEST_CASE("fetch: with a trickling source and a good one, the file completes and the trickler is dropped") {
    REQUIRE_NGINX();
    Nginx trickle({.limit_rate = "2k", .busy = false}), good;
    TempDir out;
    const auto c = make_content(16 * kSlowPiece, 78, kSlowPiece);
    trickle.serve(c);
    good.serve(c);
    auto req = request_for(c, out.path / "f", {trickle.source("trickle"), good.source("good")});
    req.pieces = c.list.pieces;
    req.deadlines = {1'000, 500, 64 * 1024};
    auto run = run_fetch(req);
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
}

TEST_CASE("fetch: max_sources asks only that many sources; the next replaces a dropped one") {
    REQUIRE_NGINX();
    Nginx a, b, c3;
    TempDir out;
    const auto c = make_content(32 * 16 * 1024, 151, 16 * 1024);
    for (auto* n : {&a, &b, &c3}) n->serve(c);
    SUBCASE("the first one only") {
        auto req = request_for(c, out.path / "f", {a.source("a"), b.source("b"), c3.source("c")});
        req.max_sources = 1;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(run.result->value().sources_used == std::vector<std::string>{"a"});
        CHECK(b.piece_requests(c) + b.list_requests(c) + c3.piece_requests(c) + c3.list_requests(c) == 0);
    }
    SUBCASE("a dead first source gives way to the next") {
        auto req = request_for(c, out.path / "f",
                               {{"ghost", "127.0.0.1", free_port()}, b.source("b"), c3.source("c")});
        req.max_sources = 1;
        auto run = run_fetch(req);
        REQUIRE(run.result);
        REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
        CHECK(run.result->value().sources_used == std::vector<std::string>{"b"});
        CHECK(c3.piece_requests(c) == 0);
    }
}

TEST_CASE("fetch: a source given by host name is contacted; an unspecified address never is") {
    REQUIRE_NGINX();
    Nginx server, other;
    TempDir out;
    const auto c = make_content(20 * 16 * 1024, 161, 16 * 1024);
    server.serve(c);
    other.serve(c);
    // 0.0.0.0 would reach this machine's own listeners: refused before connecting.
    auto run = run_fetch(request_for(
        c, out.path / "f", {{"zero", "0.0.0.0", other.port()}, {"named", "localhost", server.port()}}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    CHECK(run.result->value().sources_used == std::vector<std::string>{"named"});
    const auto* zero = source_named(run.progress.back(), "zero");
    REQUIRE(zero);
    CHECK(zero->dropped);
    CHECK(zero->why.find("0.0.0.0 is an unspecified address") != std::string::npos);
    CHECK(other.piece_requests(c) + other.list_requests(c) == 0);
}

TEST_CASE("fetch: received bytes are taken from the download limit's bucket") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(4u << 20, 171, 256 * 1024);
    server.serve(c);
    // The bucket's clock is ours: it moves half a second per progress tick, so
    // what may have arrived at each tick is known exactly.
    constexpr std::uint64_t kRate = 1u << 20;
    constexpr std::uint64_t kCredit = 64 * 1024;  // one write on credit (curl's buffer)
    std::uint64_t now_ns = 0;
    peershare::common::TokenBucket bucket(kRate, [&] { return now_ns; });
    static const Log log("test_fetch", LogLevel::warning);
    Loop loop;
    std::optional<Result<FetchResult>> result;
    std::uint64_t over = 0;  // bytes verified beyond what the bucket allowed
    Fetch::Callbacks callbacks;
    callbacks.progress = [&](const FetchProgress& p) {
        const std::uint64_t allowed = kRate * now_ns / 1'000'000'000 + bucket.burst() + kCredit;
        if (p.done > allowed) over = std::max(over, p.done - allowed);
        now_ns += 500'000'000;
    };
    callbacks.done = [&](Result<FetchResult> r) { result.emplace(std::move(r)); };
    Fetch fetch(loop.get(), log, request_for(c, out.path / "f", {server.source("alice")}),
                std::move(callbacks), nullptr, &bucket);
    fetch.start();
    const auto deadline = Clock::now() + kDeadline;
    while (!result && Clock::now() < deadline) loop.run(UV_RUN_ONCE);
    REQUIRE(result);
    REQUIRE_MESSAGE(result->ok(), failure_of(*result));
    CHECK(read_file(out.path / "f") == c.bytes);
    CHECK(over == 0);
    // It could not have finished before the bucket had paid for nearly all of it.
    CHECK(kRate * now_ns / 1'000'000'000 + bucket.burst() + kCredit >= c.bytes.size());
}

TEST_CASE("fetch: a source dropped for a 404 is taken back when listed again, and then used") {
    REQUIRE_NGINX();
    // alice is slow; carol does not have the file yet (404: dropped), then
    // publishes it and a lookup lists her again (Fetch::add_sources).
    Nginx good(kSlow), late({.limit_rate = "", .busy = false});
    TempDir out;
    const auto c = make_content(8 * kSlowPiece, 47, kSlowPiece);
    good.serve(c);
    bool listed_again = false;
    auto run = run_fetch(request_for(c, out.path / "f", {good.source("alice"), late.source("carol")}),
                         [&](Fetch& fetch, const FetchProgress& p) {
                             const auto* carol = source_named(p, "carol");
                             if (!listed_again && carol && carol->dropped) {
                                 CHECK(carol->why.find("404") != std::string::npos);
                                 late.serve(c);
                                 fetch.add_sources({late.source("carol")});
                                 listed_again = true;
                             }
                             return false;
                         });
    REQUIRE(listed_again);
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(out.path / "f") == c.bytes);
    const auto& used = run.result->value().sources_used;
    CHECK(std::find(used.begin(), used.end(), "carol") != used.end());
}

namespace {

// A connected, non-blocking socket to 127.0.0.1:port, as the upload server
// hands over a connect-back.
peershare::common::UniqueFd connect_to(std::uint16_t port) {
    peershare::common::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::fcntl(s.get(), F_SETFL, ::fcntl(s.get(), F_GETFL) | O_NONBLOCK) == 0);
    return s;
}

}  // namespace

TEST_CASE("fetch: a reverse source speaks HTTP over handed-over sockets, one kept alive for every piece") {
    REQUIRE_NGINX();
    Nginx server;
    TempDir out;
    const auto c = make_content(3 * 256 * 1024 + 99, 42, 256 * 1024);
    server.serve(c);
    std::shared_ptr<peershare::peerd::HandedSockets> handed;
    // The "connect-back": here the test dials the holder itself and hands the socket over.
    handed = std::make_shared<peershare::peerd::HandedSockets>([&] { CHECK(handed->give(connect_to(server.port()))); });
    // The URL's address is never dialled: nothing listens there.
    Source reverse{"alice", "127.0.0.1", free_port(), false, handed, peershare::peerd::Via::reverse};
    const auto dest = out.path / "reversed.bin";
    auto run = run_fetch(request_for(c, dest, {reverse}));
    REQUIRE(run.result);
    REQUIRE_MESSAGE(run.result->ok(), failure_of(*run.result));
    CHECK(read_file(dest) == c.bytes);
    CHECK(run.result->value().sources_used == std::vector<std::string>{"alice"});
    CHECK(handed->asks() == 1);   // the list and four pieces over one kept-alive connection
    CHECK(handed->received() == 1);
    REQUIRE_FALSE(run.progress.empty());
    const auto* s = source_named(run.progress.back(), "alice");
    REQUIRE(s);
    CHECK(s->via == peershare::peerd::Via::reverse);
}

TEST_CASE("fetch: a reverse source whose connect-back is refused is dropped with the reason") {
    TempDir out;
    const auto c = make_content(1000, 43);
    std::shared_ptr<peershare::peerd::HandedSockets> handed;
    handed = std::make_shared<peershare::peerd::HandedSockets>([&] { handed->fail("the tracker said no"); });
    Source reverse{"alice", "127.0.0.1", free_port(), false, handed, peershare::peerd::Via::reverse};
    auto run = run_fetch(request_for(c, out.path / "never.bin", {reverse}));
    REQUIRE(run.result);
    REQUIRE_FALSE(run.result->ok());
    CHECK(run.result->error().message.find("the tracker said no") != std::string::npos);
}
