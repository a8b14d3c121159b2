// tests/bench/reverify.cpp — how long the fetch engine takes to re-verify a
// partial file whose record claims every piece (what peerd does for each
// unfinished transfer when it starts): writes a random file of --size bytes
// as the partial file in --dir, evicts it from the page cache (fsync, then
// POSIX_FADV_DONTNEED) unless --warm, and times a Fetch with every piece
// claimed and no source from start() to the DurableFn that reports every
// piece (each read back and hashed in the worker pool, then an fdatasync). Prints key=value
// lines for scripts/bench. Not a test: no assertion on time.
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "common/uv.hpp"
#include "daemon/fetch/engine.hpp"
#include "proto/content.hpp"
#include "proto/hex.hpp"

using namespace peershare;

int main(int argc, char** argv) {
    CLI::App app{"time the re-verification of a partial file"};
    std::uint64_t size = 512ull << 20;
    std::string dir = "/tmp";
    bool warm = false;
    unsigned workers = 4;
    app.add_option("--size", size, "bytes of the file")->capture_default_str();
    app.add_option("--dir", dir, "where the partial file is written")->capture_default_str();
    app.add_option("--workers", workers, "worker threads (UV_THREADPOOL_SIZE)")->capture_default_str();
    app.add_flag("--warm", warm, "leave the file in the page cache");
    CLI11_PARSE(app, argc, argv);
    setenv("UV_THREADPOOL_SIZE", std::to_string(workers).c_str(), 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    const std::uint64_t piece_size = proto::choose_piece_size(size);
    proto::PieceList list{size, piece_size, {}};
    const std::string destination = dir + "/reverify-" + std::to_string(::getpid());
    const std::string partial = peerd::partial_path_for(destination);
    {
        const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return std::perror(partial.c_str()), 1;
        std::mt19937_64 rng(7);
        std::vector<std::uint8_t> piece(piece_size);
        for (std::uint64_t i = 0; i < proto::piece_count(size, piece_size); ++i) {
            const auto len = proto::piece_length(size, piece_size, i);
            for (auto& b : piece) b = static_cast<std::uint8_t>(rng());
            list.pieces.push_back(proto::sha256({piece.data(), len}));
            if (::write(fd, piece.data(), len) != static_cast<ssize_t>(len)) return std::perror("write"), 1;
        }
        ::fsync(fd);
        if (!warm) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }

    const common::Log log("reverify", common::LogLevel::warning);
    common::Loop loop;
    peerd::FetchRequest req;
    req.name = "reverify";
    req.id = proto::to_hex(list.content_id());
    req.size = size;
    req.piece_size = piece_size;
    req.destination = destination;
    req.partial_path = partial;
    req.pieces = list.pieces;
    req.have = proto::Bitfield(list.pieces.size());
    for (std::uint64_t i = 0; i < req.have.size(); ++i) req.have.set(i);

    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    std::optional<double> verified_s, done_s;
    std::uint64_t kept = 0;
    bool ok = false;
    peerd::Fetch::Callbacks callbacks;
    callbacks.durable = [&](const proto::Bitfield& have) {  // also reports on the way
        kept = have.count();
        if (!verified_s && have.all())
            verified_s = std::chrono::duration<double>(Clock::now() - t0).count();
    };
    callbacks.done = [&](proto::Result<peerd::FetchResult> r) {
        done_s = std::chrono::duration<double>(Clock::now() - t0).count();
        ok = r.ok();
        if (!ok) std::fprintf(stderr, "reverify: %s\n", r.error().message.c_str());
    };
    peerd::Fetch fetch(loop.get(), log, req, std::move(callbacks));
    fetch.start();
    while (!done_s) loop.run(UV_RUN_ONCE);
    ::unlink(destination.c_str());
    ::unlink(partial.c_str());
    if (!ok || !verified_s || kept != req.have.size()) {
        std::fprintf(stderr, "reverify: ok %d, reported %d, kept %llu of %llu pieces\n", ok, verified_s.has_value(),
                     static_cast<unsigned long long>(kept), static_cast<unsigned long long>(req.have.size()));
        return 1;
    }
    std::printf("reverify_bytes=%llu\nreverify_pieces=%zu\nreverify_cache=%s\nreverify_workers=%u\n"
                "reverify_s=%.3f\nreverify_mib_per_s=%.0f\nreverify_to_done_s=%.3f\n",
                static_cast<unsigned long long>(size), list.pieces.size(), warm ? "warm" : "cold",
                workers, *verified_s, static_cast<double>(size) / (1 << 20) / *verified_s, *done_s);
    curl_global_cleanup();
    return 0;
}
