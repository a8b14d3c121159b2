// tests/unit/test_upload_server.cpp — the peer's HTTP upload server
// (daemon/upload_server.hpp) on 127.0.0.1, driven by curl and by raw sockets.
// The loop runs on the test thread; each client (a curl process or a raw
// socket) runs on a helper thread while the loop serves it, so nothing here
// shares state across threads but the client's result.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/uv.hpp"
#include "daemon/catalog.hpp"
#include "daemon/reverse/connect_back.hpp"
#include "daemon/upload_server.hpp"
#include "proto/content.hpp"
#include "proto/hex.hpp"
#include "proto/reverse.hpp"

using namespace std::chrono_literals;
using peershare::common::Log;
using peershare::common::LogLevel;
using peershare::common::Loop;
using peershare::common::Timer;
using peershare::peerd::connection_cap;
using peershare::peerd::kDescriptorsPerConnection;
using peershare::peerd::Catalog;
using peershare::peerd::Publication;
using peershare::peerd::UploadLimits;
using peershare::peerd::UploadServer;
namespace proto = peershare::proto;
namespace fs = std::filesystem;

namespace {

const std::string kUnknownId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct TempDir {
    fs::path path;
    TempDir() {
        char pattern[] = "/tmp/peershare-upload-XXXXXX";
        path = mkdtemp(pattern);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

// Bytes that differ at every offset, so a misplaced range shows.
std::string pattern_bytes(std::size_t size, std::uint32_t seed) {
    std::string bytes(size, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : bytes) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return bytes;
}

void write_file(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Hashes a file the way the daemon does and puts it in the catalog.
Publication publish(Catalog& catalog, const fs::path& path, const std::string& name) {
    const std::string bytes = read_file(path);
    proto::PieceList list;
    list.size = bytes.size();
    list.piece_size = proto::choose_piece_size(list.size);
    for (std::uint64_t i = 0; i < proto::piece_count(list.size, list.piece_size); ++i) {
        const auto length = proto::piece_length(list.size, list.piece_size, i);
        list.pieces.push_back(proto::sha256(
            {reinterpret_cast<const std::uint8_t*>(bytes.data()) + i * list.piece_size, length}));
    }
    struct stat st{};
    REQUIRE(stat(path.c_str(), &st) == 0);
    Publication p;
    p.name = name;
    p.path = fs::absolute(path);
    p.size = list.size;
    p.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    p.id = proto::to_hex(list.content_id());
    p.piece_size = list.piece_size;
    p.pieces = list.pieces;
    p.published_at = std::time(nullptr);
    catalog.put(p);
    return p;
}

// Runs the loop until `done` holds (checked every millisecond) or `limit` passes.
bool run_until(Loop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit = 30s) {
    struct State {
        const std::function<bool()>* done;
        std::chrono::steady_clock::time_point deadline;
        bool met = false;
    } state{&done, std::chrono::steady_clock::now() + limit};
    Timer tick(loop.get());
    tick.get()->data = &state;
    uv_timer_start(
        tick.get(),
        [](uv_timer_t* t) {
            auto* s = static_cast<State*>(t->data);
            if (!s) return;
            s->met = (*s->done)();
            if (s->met || std::chrono::steady_clock::now() > s->deadline) uv_stop(t->loop);
        },
        1, 1);
    loop.run();
    return state.met;
}

// Runs a client on a helper thread while the loop serves it.
template <class F>
auto serve_while(Loop& loop, F client) {
    auto result = std::async(std::launch::async, std::move(client));
    REQUIRE(run_until(loop, [&] { return result.wait_for(0s) == std::future_status::ready; }));
    return result.get();
}

std::string run_command(const std::string& command) {
    std::string out;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    pclose(pipe);
    return out;
}

// The value of a response header, or "" (the last one of that name).
std::string header(std::string_view head, std::string_view name) {
    std::string found;
    std::size_t at = 0;
    while (at < head.size()) {
        auto end = head.find("\r\n", at);
        if (end == std::string_view::npos) end = head.size();
        const auto line = head.substr(at, end - at);
        const auto colon = line.find(':');
        if (colon == name.size() &&
            std::equal(name.begin(), name.end(), line.begin(),
                       [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            found = std::string(value);
        }
        at = end + 2;
    }
    return found;
}

int open_fd_count() {
    int n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// A connected, blocking socket to the server with a receive timeout.
int connect_to(std::uint16_t port, int receive_buffer = 0) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

struct RawReply {
    std::string bytes;
    bool closed = false;   // the server closed the connection (not a timeout)
};

// Sends `request` on a fresh connection (then half-closes, if asked) and
// reads until the server closes.
RawReply raw_exchange(std::uint16_t port, std::string request, bool half_close) {
    RawReply reply;
    const int fd = connect_to(port);
    if (fd < 0) return reply;
    send_all(fd, request);
    if (half_close) ::shutdown(fd, SHUT_WR);
    char buf[65536];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) reply.closed = true;
        if (n <= 0) break;
        reply.bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

struct Response {
    std::string head;
    std::string body;
};

// Splits back-to-back responses by their Content-Length; the one at
// `head_index` answers a HEAD, so no body follows it.
std::vector<Response> split_responses(std::string_view bytes, std::size_t head_index = SIZE_MAX) {
    std::vector<Response> out;
    while (!bytes.empty()) {
        const auto end = bytes.find("\r\n\r\n");
        if (end == std::string_view::npos) break;
        Response r;
        r.head = std::string(bytes.substr(0, end + 2));
        const auto length =
            out.size() == head_index ? 0 : std::stoull("0" + header(r.head, "content-length"));
        r.body = std::string(bytes.substr(end + 4, length));
        bytes.remove_prefix(std::min<std::size_t>(bytes.size(), end + 4 + length));
        out.push_back(std::move(r));
    }
    return out;
}

struct CurlResult {
    int code = 0;
    std::string head;
    std::string body;
    std::string output;   // what curl printed (-w, errors)
};

struct Fixture {
    explicit Fixture(UploadLimits limits = {}) : server(loop.get(), catalog, log, limits) {
        REQUIRE(server.start({"127.0.0.1", 0}).ok());
    }

    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(path);
    }
    std::string file_url(const Publication& p) const { return url("/v1/files/" + p.id); }

    // A file of `size` pattern bytes, published under `name`.
    Publication add_file(const std::string& name, std::size_t size, std::uint32_t seed = 1) {
        write_file(dir.path / name, pattern_bytes(size, seed));
        return publish(catalog, dir.path / name, name);
    }

    // One curl transfer; `options` go before the URL.
    CurlResult curl(const std::string& options, const std::string& target) {
        const auto n = std::to_string(++transfers);
        const auto head_path = dir.path / ("head" + n);
        const auto body_path = dir.path / ("body" + n);
        const std::string command = "curl -sS --noproxy '*' --max-time 20 -D " + head_path.string() + " -o " +
                                    body_path.string() + " -w '%{http_code}' " + options + " '" + target + "'";
        CurlResult r;
        r.output = serve_while(loop, [command] { return run_command(command); });
        r.head = read_file(head_path);
        r.body = read_file(body_path);
        r.code = std::atoi(r.output.c_str());
        return r;
    }

    // Two transfers in one curl run: "<code> <new connections>" per line.
    std::string curl_twice(const std::string& first, const std::string& second) {
        const std::string command = "curl -sS --noproxy '*' --max-time 20 -o /dev/null -o /dev/null "
                                    "-w '%{http_code} %{num_connects}\\n' '" + first + "' '" + second + "'";
        return serve_while(loop, [command] { return run_command(command); });
    }

    RawReply raw(std::string request, bool half_close = false) {
        const auto port = server.port();
        return serve_while(loop, [port, request, half_close] { return raw_exchange(port, request, half_close); });
    }

    Loop loop;
    Log log{"test", LogLevel::warning};
    Catalog catalog;
    TempDir dir;
    UploadServer server;
    int transfers = 0;
};

}  // namespace

TEST_CASE("upload: a whole GET returns the file's bytes with the usual headers") {
    Fixture f;
    const auto p = f.add_file("whole.bin", 3 * 1024 * 1024 + 17);
    const auto r = f.curl("", f.file_url(p));
    CHECK(r.code == 200);
    CHECK(r.body == read_file(f.dir.path / "whole.bin"));
    CHECK(header(r.head, "content-length") == std::to_string(p.size));
    CHECK(header(r.head, "content-type") == "application/octet-stream");
    CHECK(header(r.head, "accept-ranges") == "bytes");
    CHECK(header(r.head, "etag") == "\"" + p.id + "\"");
    CHECK(f.server.active_uploads() == 0);
}

TEST_CASE("upload: byte ranges give 206 with the right bytes, 416 past the end") {
    Fixture f;
    const auto p = f.add_file("ranges.bin", 1'000'000);
    const std::string bytes = read_file(f.dir.path / "ranges.bin");

    SUBCASE("a first-last range") {
        const auto r = f.curl("-r 100-199", f.file_url(p));
        CHECK(r.code == 206);
        CHECK(r.body == bytes.substr(100, 100));
        CHECK(header(r.head, "content-range") == "bytes 100-199/1000000");
        CHECK(header(r.head, "content-length") == "100");
    }
    SUBCASE("an open range runs to the end") {
        const auto r = f.curl("-H 'Range: bytes=999000-'", f.file_url(p));
        CHECK(r.code == 206);
        CHECK(r.body == bytes.substr(999000));
    }
    SUBCASE("a suffix range gives the last bytes") {
        const auto r = f.curl("-H 'Range: bytes=-100'", f.file_url(p));
        CHECK(r.code == 206);
        CHECK(r.body == bytes.substr(bytes.size() - 100));
        CHECK(header(r.head, "content-range") == "bytes 999900-999999/1000000");
    }
    SUBCASE("a range past the end is 416") {
        const auto r = f.curl("-H 'Range: bytes=2000000-2000010'", f.file_url(p));
        CHECK(r.code == 416);
        CHECK(header(r.head, "content-range") == "bytes */1000000");
    }
    SUBCASE("an If-Range naming another entity gets the whole file") {
        const auto r = f.curl("-r 0-9 -H 'If-Range: \"other\"'", f.file_url(p));
        CHECK(r.code == 200);
        CHECK(r.body.size() == bytes.size());
    }
}

TEST_CASE("upload: HEAD answers the headers of a GET without a body") {
    Fixture f;
    const auto p = f.add_file("head.bin", 123'456);
    const auto r = f.curl("-I", f.file_url(p));
    CHECK(r.code == 200);
    CHECK(header(r.head, "content-length") == "123456");
    CHECK(header(r.head, "content-type") == "application/octet-stream");
    CHECK(header(r.head, "accept-ranges") == "bytes");
    CHECK(header(r.head, "etag") == "\"" + p.id + "\"");
    CHECK(f.server.active_uploads() == 0);

    // Nothing follows the head on the wire.
    const auto raw = f.raw("HEAD /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(raw.closed);
    CHECK(raw.bytes.ends_with("\r\n\r\n"));
    CHECK(header(raw.bytes, "content-length") == "123456");
}

TEST_CASE("upload: /pieces serves a piece list that hashes to the content id") {
    Fixture f;
    const auto p = f.add_file("pieces.bin", 1024 * 1024 + 123);
    const auto r = f.curl("", f.url("/v1/files/" + p.id + "/pieces"));
    CHECK(r.code == 200);
    CHECK(header(r.head, "content-type") == "application/json");
    const auto list = proto::PieceList::from_json(proto::json::parse(r.body), p.id);
    REQUIRE(list.ok());
    CHECK(list->size == p.size);
    CHECK(list->pieces.size() == 5);
}

TEST_CASE("upload: /have of a publication is every bit set, with an ETag that If-None-Match turns into 304") {
    Fixture f;
    const auto p = f.add_file("have.bin", 2 * 256 * 1024 * 4 + 5);   // 9 pieces of 256 KiB
    REQUIRE(p.pieces.size() == 9);
    const auto r = f.curl("", f.url("/v1/files/" + p.id + "/have"));
    CHECK(r.code == 200);
    CHECK(header(r.head, "content-type") == "application/octet-stream");
    CHECK(r.body == std::string("\xff\x80", 2));   // 9 bits, piece 0 in the MSB of byte 0
    const auto etag = header(r.head, "etag");
    CHECK(etag.starts_with("\"have-"));
    const auto again = f.curl("-H 'If-None-Match: " + etag + "'", f.url("/v1/files/" + p.id + "/have"));
    CHECK(again.code == 304);
    CHECK(again.body.empty());
    CHECK(header(again.head, "etag") == etag);
    CHECK(f.curl("-H 'If-None-Match: \"have-0\"'", f.url("/v1/files/" + p.id + "/have")).code == 200);
    CHECK(f.curl("", f.url("/v1/files/" + kUnknownId + "/have")).code == 404);
}

TEST_CASE("upload: a partial holding serves its verified pieces only; a missing one is 503 'not here yet'") {
    Fixture f;
    auto p = f.add_file("part.bin", 4 * 256 * 1024);   // pieces 0-3
    const std::string bytes = read_file(f.dir.path / "part.bin");
    f.catalog.remove("part.bin");
    p.have = proto::Bitfield(4);
    p.have.set(0);
    p.have.set(2);
    p.mtime_ns = 1;   // a partial file is written as pieces arrive: its mtime is not checked
    f.catalog.put_partial(p);

    const auto have = f.curl("", f.url("/v1/files/" + p.id + "/have"));
    CHECK(have.code == 200);
    CHECK(have.body == std::string("\xa0", 1));
    const auto first = header(have.head, "etag");

    const auto piece2 = f.curl("-r 524288-786431", f.file_url(p));
    CHECK(piece2.code == 206);
    CHECK(piece2.body == bytes.substr(524288, 262144));
    CHECK(f.curl("", f.url("/v1/files/" + p.id + "/pieces")).code == 200);

    const auto spanning = f.curl("-r 200000-300000", f.file_url(p));   // pieces 0 and 1
    CHECK(spanning.code == 503);
    CHECK(header(spanning.head, "peershare-missing-piece") == "1");
    CHECK(header(spanning.head, "retry-after") == "1");
    CHECK(spanning.body == "piece 1 is not here yet\n");
    CHECK(f.curl("", f.file_url(p)).code == 503);   // the whole file: not here yet
    CHECK(f.server.active_uploads() == 0);

    p.have.set(1);
    f.catalog.put_partial(p);
    const auto later = f.curl("-H 'If-None-Match: " + first + "'", f.url("/v1/files/" + p.id + "/have"));
    CHECK(later.code == 200);
    CHECK(later.body == std::string("\xe0", 1));
    CHECK(f.curl("-r 200000-300000", f.file_url(p)).body == bytes.substr(200000, 100001));

    SUBCASE("its partial file gone (renamed into place at done) is 503 with Retry-After, not a 404 (a drop)") {
        auto renamed = p;
        renamed.path = (f.dir.path / "renamed-away.part").string();
        f.catalog.put_partial(renamed);
        const auto gone = f.curl("-r 0-1", f.file_url(p));
        CHECK(gone.code == 503);
        CHECK(header(gone.head, "retry-after") == "1");
        CHECK(header(gone.head, "peershare-missing-piece").empty());
        CHECK(f.server.active_uploads() == 0);
    }

    f.catalog.remove_partial(p.id);
    CHECK(f.curl("", f.url("/v1/files/" + p.id + "/have")).code == 404);
}

TEST_CASE("upload: only published ids and our two endpoints are served") {
    Fixture f;
    const auto p = f.add_file("known.bin", 1000);
    CHECK(f.curl("", f.url("/v1/files/" + kUnknownId)).code == 404);
    CHECK(f.curl("", f.url("/v1/files/" + kUnknownId + "/pieces")).code == 404);
    CHECK(f.curl("", f.url("/v1/files/not-an-id")).code == 404);
    CHECK(f.curl("", f.url("/v1/files/" + p.id + "/other")).code == 404);
    CHECK(f.curl("--path-as-is", f.url("/v1/files/../" + p.id)).code == 404);
    CHECK(f.curl("", f.url("/")).code == 404);
    CHECK(f.curl("", f.url("/v1/files/" + p.id + "?x=1")).code == 200);

    const auto post = f.curl("-X POST -d x", f.file_url(p));
    CHECK(post.code == 405);
    CHECK(header(post.head, "allow") == "GET, HEAD");
}

TEST_CASE("upload: garbage gets 400, oversized headers 431, other HTTP versions 505, then the connection closes") {
    Fixture f;
    const auto p = f.add_file("g.bin", 1000);
    SUBCASE("garbage") {
        const auto reply = f.raw("THIS IS NOT HTTP\r\n\r\n");
        CHECK(reply.bytes.starts_with("HTTP/1.1 400 "));
        CHECK(header(reply.bytes.substr(0, reply.bytes.find("\r\n\r\n")), "connection") == "close");
        CHECK(reply.closed);
    }
    SUBCASE("headers over 8 KiB") {
        const auto reply = f.raw("GET /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                 std::string(16 * 1024, 'a') + "\r\n\r\n");
        CHECK(reply.bytes.starts_with("HTTP/1.1 431 "));
        CHECK(header(reply.bytes.substr(0, reply.bytes.find("\r\n\r\n")), "connection") == "close");
        CHECK(reply.closed);
    }
    SUBCASE("many small headers add up too") {
        std::string request = "GET /v1/files/" + p.id + " HTTP/1.1\r\n";
        for (int i = 0; i < 3000; ++i) request += "a:\r\n";
        const auto reply = f.raw(request + "\r\n");
        CHECK(reply.bytes.starts_with("HTTP/1.1 431 "));
    }
    SUBCASE("an HTTP version other than 1.0 and 1.1 is 505, said in words") {
        const auto reply = f.raw("GET /v1/files/" + p.id + " HTTP/2.0\r\nHost: x\r\n\r\n");
        CHECK(reply.bytes.starts_with("HTTP/1.1 505 "));
        CHECK(reply.bytes.find("only HTTP/1.0 and HTTP/1.1") != std::string::npos);
        CHECK(reply.closed);
    }
}

TEST_CASE("upload: keep-alive reuses one connection; pipelined requests come back in order") {
    Fixture f;
    const auto p = f.add_file("ka.bin", 200'000);
    const std::string bytes = read_file(f.dir.path / "ka.bin");

    SUBCASE("curl with two URLs connects once") {
        CHECK(f.curl_twice(f.file_url(p), f.file_url(p)) == "200 1\n200 0\n");
    }
    SUBCASE("pipelined, with Connection: close on the last") {
        const std::string get = "GET /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\n";
        std::string requests;
        for (int i = 0; i < 20; ++i) {   // more than the server parses ahead
            requests += get + "Range: bytes=" + std::to_string(i * 10) + "-" + std::to_string(i * 10 + 9) + "\r\n\r\n";
        }
        requests += "HEAD /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\n\r\n";
        requests += get + "Connection: close\r\n\r\n";
        const auto reply = f.raw(requests);
        CHECK(reply.closed);
        const auto responses = split_responses(reply.bytes, 20);
        REQUIRE(responses.size() == 22);
        for (int i = 0; i < 20; ++i) {
            CHECK(responses[i].head.starts_with("HTTP/1.1 206 "));
            CHECK(responses[i].body == bytes.substr(i * 10, 10));
        }
        CHECK(responses[20].head.starts_with("HTTP/1.1 200 "));   // HEAD: no body follows
        CHECK(responses[21].body.size() == bytes.size());
    }
    SUBCASE("a client that half-closes after its requests still gets every answer") {
        const std::string get = "GET /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n";
        const auto reply = f.raw(get + get, true);
        CHECK(reply.closed);
        const auto responses = split_responses(reply.bytes);
        REQUIRE(responses.size() == 2);
        CHECK(responses[1].body == bytes.substr(0, 5));
    }
    SUBCASE("HTTP/1.0 closes after the response") {
        const auto reply = f.raw("GET /v1/files/" + p.id + " HTTP/1.0\r\nRange: bytes=0-4\r\n\r\n");
        CHECK(reply.closed);
        const auto responses = split_responses(reply.bytes);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].body == bytes.substr(0, 5));
    }
}

TEST_CASE("upload: past max_uploads the answer is 503; a vanished reader frees its slot and fd") {
    Fixture f(UploadLimits{1, 0});
    const auto big = f.add_file("big.bin", 64 * 1024 * 1024);
    const auto small = f.add_file("small.bin", 1000);
    const int fds_before = open_fd_count();

    // A reader that asks for 64 MiB and never reads holds the only slot.
    const auto port = f.server.port();
    const int slow = serve_while(f.loop, [port, &big] {
        const int fd = connect_to(port, 4096);
        send_all(fd, "GET /v1/files/" + big.id + " HTTP/1.1\r\nHost: x\r\n\r\n");
        return fd;
    });
    REQUIRE(slow >= 0);
    REQUIRE(run_until(f.loop, [&] { return f.server.active_uploads() == 1; }));

    const auto busy = f.curl("", f.file_url(small));
    CHECK(busy.code == 503);
    CHECK(header(busy.head, "retry-after") == "1");

    // The connection stays usable after a 503; HEAD and /pieces need no slot.
    const auto two = f.curl_twice(f.file_url(small), f.url("/v1/files/" + small.id + "/pieces"));
    CHECK(two == "503 1\n200 0\n");
    CHECK(f.curl("-I", f.file_url(big)).code == 200);

    ::close(slow);   // goes away mid-body
    CHECK(run_until(f.loop, [&] {
        return f.server.active_uploads() == 0 && f.server.connection_count() == 0 && open_fd_count() == fds_before;
    }));
    CHECK(f.curl("", f.file_url(small)).code == 200);
}

TEST_CASE("upload: a file changed after publishing is never served") {
    Fixture f;
    const auto p = f.add_file("changing.bin", 5000);
    const auto path = f.dir.path / "changing.bin";

    SUBCASE("same size, new mtime") {
        write_file(path, pattern_bytes(5000, 2));
        const timespec times[2] = {{0, UTIME_OMIT}, {std::time(nullptr) + 10, 0}};
        REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
    }
    SUBCASE("another size") { write_file(path, pattern_bytes(6000, 1)); }
    SUBCASE("deleted") { fs::remove(path); }

    CHECK(f.curl("", f.file_url(p)).code == 404);
    CHECK(f.catalog.by_id(p.id) == nullptr);   // marked changed
    CHECK(f.catalog.by_name("changing.bin")->changed);
    CHECK(f.curl("-I", f.file_url(p)).code == 404);
    CHECK(f.server.active_uploads() == 0);
}

// Reads one response (head and Content-Length body) from a blocking socket.
Response read_response(int fd) {
    std::string bytes;
    char buf[65536];
    for (;;) {
        const auto split = split_responses(bytes);
        if (!split.empty()) {
            const auto length = std::stoull("0" + header(split[0].head, "content-length"));
            if (split[0].body.size() == length) return split[0];
        }
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return {};
        bytes.append(buf, static_cast<std::size_t>(n));
    }
}

TEST_CASE("upload: on a keep-alive connection, each request checks the file again") {
    Fixture f;
    const auto p = f.add_file("kept.bin", 5000);
    const auto path = f.dir.path / "kept.bin";
    const std::string original = read_file(path);
    const std::string get = "GET /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto port = f.server.port();
    const int fd = serve_while(f.loop, [port, &get, &original] {
        const int fd = connect_to(port);
        send_all(fd, get);
        CHECK(read_response(fd).body == original);
        return fd;
    });
    REQUIRE(fd >= 0);
    const int fds_between = open_fd_count();

    int expected = 200;
    SUBCASE("unchanged: served again from the file already open") {}
    SUBCASE("modified in place, same size") {
        write_file(path, pattern_bytes(5000, 2));
        const timespec times[2] = {{0, UTIME_OMIT}, {std::time(nullptr) + 10, 0}};
        REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
        expected = 404;
    }
    SUBCASE("replaced by an identical copy (cp -p, then mv): still served") {
        const auto copy = f.dir.path / "copy.bin";
        write_file(copy, original);
        struct stat st{};
        REQUIRE(stat(path.c_str(), &st) == 0);
        const timespec times[2] = {st.st_atim, st.st_mtim};
        REQUIRE(utimensat(AT_FDCWD, copy.c_str(), times, 0) == 0);
        fs::rename(copy, path);
    }
    SUBCASE("replaced by a file of another size") {
        const auto fresh = f.dir.path / "fresh.bin";
        write_file(fresh, pattern_bytes(6000, 3));
        fs::rename(fresh, path);
        expected = 404;
    }
    SUBCASE("deleted") {
        fs::remove(path);
        expected = 404;
    }

    const auto second = serve_while(f.loop, [fd, &get] {
        send_all(fd, get);
        return read_response(fd);
    });
    CHECK(second.head.starts_with("HTTP/1.1 " + std::to_string(expected) + " "));
    if (expected == 200) {
        CHECK(second.body == original);
        CHECK(open_fd_count() == fds_between);   // no second descriptor for the same file
        CHECK(f.catalog.by_id(p.id) != nullptr);
    } else {
        CHECK(f.catalog.by_id(p.id) == nullptr);   // marked changed
    }
    ::close(fd);
    CHECK(run_until(f.loop, [&] { return f.server.connection_count() == 0; }));
}

TEST_CASE("upload: the rate limit caps the bytes per second of all uploads") {
    Fixture f(UploadLimits{64, 2 * 1024 * 1024});
    const auto p = f.add_file("rate.bin", 3 * 1024 * 1024);
    const auto start = std::chrono::steady_clock::now();
    const auto r = f.curl("", f.file_url(p));
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(r.code == 200);
    CHECK(r.body.size() == p.size);
    // A burst of ~0.1 s worth, then 2 MiB/s: at least ~1.3 s for 3 MiB.
    CHECK(seconds > 1.2);

    // Lifting the limit: first down to 1 KiB/s, at which 3 MiB would take
    // 50 minutes, then off. The whole file within curl's 20 s deadline says the
    // limit is gone, with no bound on how fast a loaded machine must be (a
    // "< 1 s" bound here failed at 1.31 s at load average 40).
    f.server.set_limits({64, 1024});
    f.server.set_limits({64, 0});
    const auto fast = f.curl("", f.file_url(p));
    CHECK(fast.code == 200);
    CHECK(fast.body.size() == p.size);
}

TEST_CASE("upload: stop closes every connection, mid-body ones included") {
    Fixture f(UploadLimits{4, 0});
    const auto big = f.add_file("big.bin", 32 * 1024 * 1024);
    const auto port = f.server.port();
    const int slow = serve_while(f.loop, [port, &big] {
        const int fd = connect_to(port, 4096);
        send_all(fd, "GET /v1/files/" + big.id + " HTTP/1.1\r\nHost: x\r\n\r\n");
        return fd;
    });
    REQUIRE(run_until(f.loop, [&] { return f.server.active_uploads() == 1; }));
    f.server.stop();
    CHECK(f.server.active_uploads() == 0);
    CHECK(f.server.connection_count() == 0);
    // The client sees the connection end (after whatever was already sent).
    const bool ended = serve_while(f.loop, [slow] {
        char buf[65536];
        for (;;) {
            const auto n = ::recv(slow, buf, sizeof buf, 0);
            if (n <= 0) return n == 0 || errno == ECONNRESET;
        }
    });
    CHECK(ended);
    ::close(slow);
}

TEST_CASE("upload: connection_cap keeps descriptors for the rest of peerd") {
    CHECK(connection_cap(64) == 10);        // (64 - 32) / 3: half kept below 512
    CHECK(connection_cap(1024) == 256);     // (1024 - 256) / 3
    CHECK(connection_cap(20'000) == 6'581);
    CHECK(connection_cap(3) == 1);          // never 0
    for (std::uint64_t limit : {16u, 64u, 300u, 1024u, 65'536u}) {
        CHECK(connection_cap(limit) * kDescriptorsPerConnection + peershare::peerd::reserved_descriptors(limit) <= limit);
    }
}

TEST_CASE("upload: past max_connections a new connection is closed at once; the open ones are served") {
    constexpr std::size_t kCap = 3;
    UploadLimits limits;
    limits.max_connections = kCap;
    Fixture f(limits);
    const auto p = f.add_file("capped.bin", 5000);
    const std::string get = "GET /v1/files/" + p.id + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n";
    const auto port = f.server.port();
    // One GET on a fresh keep-alive connection; the socket and the status line.
    const auto served_once = [&] {
        return serve_while(f.loop, [port, &get] {
            const int fd = connect_to(port);
            send_all(fd, get);
            return std::pair{fd, read_response(fd).head.substr(0, 12)};
        });
    };

    // kCap served keep-alives, left idle: each holds a file open.
    std::vector<int> kept;
    for (std::size_t i = 0; i < kCap; ++i) {
        const auto [fd, status] = served_once();
        REQUIRE(fd >= 0);
        CHECK(status == "HTTP/1.1 206");
        kept.push_back(fd);
    }
    REQUIRE(run_until(f.loop, [&] { return f.server.connection_count() == kCap; }));

    // The next one is accepted and closed without an answer (EOF or a reset,
    // not the 10 s receive timeout), and counted.
    const auto refused = serve_while(f.loop, [port, &get] {
        const int fd = connect_to(port);
        send_all(fd, get);
        char buf[256];
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        const bool closed = n == 0 || (n < 0 && errno == ECONNRESET);
        ::close(fd);
        return closed;
    });
    CHECK(refused);
    CHECK(f.server.connections_refused() == 1);
    CHECK(f.server.connection_count() == kCap);

    // The open ones are still served.
    const int first = kept.front();
    const auto again = serve_while(f.loop, [first, &get] {
        send_all(first, get);
        return read_response(first).body;
    });
    CHECK(again == read_file(f.dir.path / "capped.bin").substr(0, 10));

    // Once one closes, a new connection is served.
    ::close(kept.front());
    kept.erase(kept.begin());
    REQUIRE(run_until(f.loop, [&] { return f.server.connection_count() == kCap - 1; }));
    const auto [fd, status] = served_once();
    CHECK(status == "HTTP/1.1 206");
    kept.push_back(fd);
    CHECK(f.server.connections_refused() == 1);
    for (const int k : kept) ::close(k);
    CHECK(run_until(f.loop, [&] { return f.server.connection_count() == 0; }));
}

TEST_CASE("upload: a connect-back preface hands the socket over; forged, replayed and malformed ones are refused") {
    Fixture f;
    const auto p = f.add_file("served.bin", 5000);
    const std::string good = "00112233445566778899aabbccddeeff";
    std::set<std::string> expected{good};
    std::vector<std::string> handed;
    f.server.on_connect_back([&](const std::string& token, peershare::common::UniqueFd socket,
                                 const std::string&, std::string& why) {
        if (!expected.erase(token)) {   // single use: a replay finds nothing
            why = "no fetch expects it";
            return false;
        }
        handed.push_back(token);
        send_all(socket.get(), "taken\n");   // then closed: the client reads it and EOF
        return true;
    });
    const auto forged = f.raw(proto::reverse_preface("ffffffffffffffffffffffffffffffff"));
    CHECK(forged.closed);
    CHECK(forged.bytes.empty());
    CHECK(f.server.connect_backs_refused() == 1);

    const auto taken = f.raw(proto::reverse_preface(good));
    CHECK(taken.bytes == "taken\n");
    CHECK(handed == std::vector<std::string>{good});
    CHECK(f.server.connect_backs_taken() == 1);

    const auto replayed = f.raw(proto::reverse_preface(good));
    CHECK(replayed.bytes.empty());
    CHECK(f.server.connect_backs_refused() == 2);
    CHECK(f.raw("PEERSHARE-REVERSE abc\r\n").bytes.empty());
    expected.insert(good);
    CHECK(f.raw(proto::reverse_preface(good) + "GET / HTTP/1.1\r\n\r\n").bytes.empty());   // bytes after it
    CHECK(f.server.connect_backs_refused() == 4);
    CHECK(handed.size() == 1);

    // Everyone else is served as before.
    const auto r = f.curl("", f.file_url(p));
    CHECK(r.code == 200);
    CHECK(r.body == pattern_bytes(5000, 1));
}

TEST_CASE("upload: a holder's connect-back dial serves HTTP on the socket it dialled") {
    Fixture holder;
    const auto p = holder.add_file("reversed.bin", 70'000, 3);
    // The fetcher: any upload server, whose handler keeps the socket.
    Catalog fetcher_catalog;
    UploadServer fetcher(holder.loop.get(), fetcher_catalog, holder.log, {});
    REQUIRE(fetcher.start({"127.0.0.1", 0}).ok());
    const std::string token = "0123456789abcdef0123456789abcdef";
    peershare::common::UniqueFd socket;
    fetcher.on_connect_back([&](const std::string& t, peershare::common::UniqueFd s, const std::string&, std::string&) {
        if (t != token) return false;
        socket = std::move(s);
        return true;
    });
    peershare::peerd::ConnectBackDialer dialer(holder.loop.get(), holder.log, holder.server);
    std::optional<bool> dialled;
    REQUIRE(dialer.dial({"127.0.0.1", fetcher.port()}, token, [&](bool ok, const std::string&) { dialled = ok; }).ok());
    REQUIRE(run_until(holder.loop, [&] { return dialled.has_value() && socket; }));
    CHECK(*dialled);
    // The fetcher is the HTTP client now (blocking, on a helper thread, while the loop serves).
    const int fd = socket.get();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const std::string reply = serve_while(holder.loop, [fd, id = p.id] {
        send_all(fd, "GET /v1/files/" + id + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        std::string bytes;
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) bytes.append(buf, static_cast<std::size_t>(n));
        return bytes;
    });
    const auto responses = split_responses(reply);
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].head.starts_with("HTTP/1.1 200"));
    CHECK(responses[0].body == pattern_bytes(70'000, 3));
    CHECK(fetcher.connect_backs_taken() == 1);

    // A dial to a port where nothing listens fails, once, in words.
    std::optional<std::string> failure;
    REQUIRE(dialer.dial({"127.0.0.1", 1}, token, [&](bool ok, const std::string& why) {
        if (!ok) failure = why;
    }).ok());
    REQUIRE(run_until(holder.loop, [&] { return failure.has_value(); }));
    CHECK(failure->find("refused") != std::string::npos);
    CHECK_FALSE(dialer.dial({"not-an-ip", 80}, token, nullptr).ok());
}
