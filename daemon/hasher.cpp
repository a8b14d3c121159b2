// daemon/hasher.cpp — parallel piece hashing in libuv's worker pool.
#include "daemon/hasher.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "proto/content.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

proto::Result<FileStamp> stamp_file(const std::string& path) {
    struct stat st{};
    if (stat(path.c_str(), &st) != 0) {
        return Error{ErrorCode::not_found, path + ": " + std::strerror(errno)};
    }
    if (!S_ISREG(st.st_mode)) return Error{ErrorCode::bad_request, path + " is not a regular file"};
    return FileStamp{static_cast<std::uint64_t>(st.st_size),
                     static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

proto::Result<std::string> canonical_path(const std::string& path) {
    const std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr), &std::free);
    if (!resolved) return Error{ErrorCode::not_found, path + ": " + std::strerror(errno)};
    std::string canonical(resolved.get());
    if (!proto::is_valid_utf8(canonical)) {
        return Error{ErrorCode::bad_request, path + " resolves to a path that is not valid UTF-8; peerd takes UTF-8 paths only"};
    }
    return canonical;
}

namespace {

constexpr std::size_t kReadBlock = 1 << 20;

// One run of consecutive pieces, hashed by one work item.
struct Run {
    uv_work_t work{};
    HashJob* job = nullptr;
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::string error;   // set by the worker
};

}  // namespace

class HashJob : public std::enable_shared_from_this<HashJob> {
public:
    HashJob(std::string path, HashDone done) : path_(std::move(path)), done_(std::move(done)) {}
    ~HashJob() {
        if (fd_ >= 0) ::close(fd_);
    }

    void start(uv_loop_t* loop, unsigned parallelism);
    void cancel() { done_ = nullptr; }

private:
    static void hash_run(uv_work_t* work);
    static void run_finished(uv_work_t* work, int status);
    void finish();

    std::string path_;
    HashDone done_;
    int fd_ = -1;
    FileStamp stamp_;
    std::uint64_t piece_size_ = 0;
    std::vector<proto::Digest> pieces_;   // each run writes its own slice
    std::vector<Run> runs_;
    std::size_t pending_ = 0;
    std::shared_ptr<HashJob> self_;       // alive until every run is back
    std::string error_;
};

void HashJob::start(uv_loop_t* loop, unsigned parallelism) {
    auto stamp = stamp_file(path_);
    if (stamp) fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (!stamp || fd_ < 0) {
        // Deliver on the next loop turn like every other result.
        error_ = stamp ? path_ + ": " + std::strerror(errno) : stamp.error().message;
        runs_.resize(1);
        runs_[0].job = this;
        runs_[0].count = 0;
    } else {
        stamp_ = *stamp;
        piece_size_ = proto::choose_piece_size(stamp_.size);
        const auto count = proto::piece_count(stamp_.size, piece_size_);
        pieces_.resize(count);
        const std::uint64_t parts = std::max<std::uint64_t>(1, std::min<std::uint64_t>(parallelism, count));
        runs_.resize(parts);
        for (std::uint64_t i = 0; i < parts; ++i) {
            runs_[i].job = this;
            runs_[i].first = count * i / parts;
            runs_[i].count = count * (i + 1) / parts - runs_[i].first;
        }
    }
    self_ = shared_from_this();
    pending_ = runs_.size();
    for (auto& run : runs_) {
        run.work.data = &run;
        uv_queue_work(loop, &run.work, hash_run, run_finished);
    }
}

void HashJob::hash_run(uv_work_t* work) {
    auto* run = static_cast<Run*>(work->data);
    HashJob& job = *run->job;
    if (job.fd_ < 0) return;
    std::vector<std::uint8_t> block(kReadBlock);
    for (std::uint64_t p = run->first; p < run->first + run->count; ++p) {
        proto::Sha256 h;
        std::uint64_t offset = p * job.piece_size_;
        std::uint64_t left = proto::piece_length(job.stamp_.size, job.piece_size_, p);
        while (left > 0) {
            const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, block.size()));
            const ssize_t got = ::pread(job.fd_, block.data(), want, static_cast<off_t>(offset));
            if (got <= 0) {
                run->error = got == 0 ? "the file shrank while being hashed" : std::strerror(errno);
                return;
            }
            h.update(block.data(), static_cast<std::size_t>(got));
            offset += static_cast<std::uint64_t>(got);
            left -= static_cast<std::uint64_t>(got);
        }
        job.pieces_[p] = h.finish();
    }
}

void HashJob::run_finished(uv_work_t* work, int) {
    auto* run = static_cast<Run*>(work->data);
    HashJob& job = *run->job;
    if (!run->error.empty() && job.error_.empty()) job.error_ = job.path_ + ": " + run->error;
    if (--job.pending_ == 0) job.finish();
}

void HashJob::finish() {
    auto keep = std::move(self_);   // released at the end of this call
    if (!done_) return;
    auto done = std::move(done_);
    if (!error_.empty()) return done(Error{ErrorCode::not_found, error_});
    if (!unchanged_since(path_, stamp_)) {
        return done(Error{ErrorCode::busy, path_ + " changed while being hashed; publish it again"});
    }
    Publication p;
    p.path = path_;
    p.size = stamp_.size;
    p.mtime_ns = stamp_.mtime_ns;
    p.piece_size = piece_size_;
    p.pieces = std::move(pieces_);
    p.id = proto::to_hex(p.piece_list().content_id());
    done(std::move(p));
}

std::shared_ptr<HashJob> hash_file(uv_loop_t* loop, std::string path, unsigned parallelism, HashDone done) {
    auto job = std::make_shared<HashJob>(std::move(path), std::move(done));
    job->start(loop, parallelism);
    return job;
}

void cancel_hash(HashJob& job) { job.cancel(); }

}  // namespace peershare::peerd
