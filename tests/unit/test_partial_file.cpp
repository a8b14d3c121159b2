// tests/unit/test_partial_file.cpp — the partial file a download is written
// into (daemon/fetch/partial_file.hpp), in a temp dir: prepare, write,
// verify, sync, finalize, remove.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "daemon/fetch/buffer_pool.hpp"
#include "daemon/fetch/partial_file.hpp"
#include "proto/content.hpp"

namespace fs = std::filesystem;
using namespace peershare::peerd;
using peershare::proto::ErrorCode;

namespace {

struct Dir {
    fs::path path;
    Dir() {
        std::string t = (fs::temp_directory_path() / "peershare-partial-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~Dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
}

std::unique_ptr<PartialFile> prepared(const fs::path& dest, std::uint64_t size, bool force = false) {
    auto f = PartialFile::prepare(dest.string(), force, partial_path_for(dest.string()), size);
    REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
    return std::move(*f);
}

}  // namespace

TEST_CASE("partial file: created sparse at its size, written, verified, renamed into place") {
    Dir d;
    const auto dest = d.path / "out.bin";
    const std::uint64_t size = 3 * 4096 + 10;
    auto f = prepared(dest, size);
    CHECK(fs::file_size(f->path()) == size);
    struct stat st {};
    REQUIRE(::stat(f->path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);

    // An aligned whole-block write (O_DIRECT where allowed) and the tail.
    BufferPool pool(1 << 20);
    auto block = pool.take(4096, 0);
    for (int i = 0; i < 4096; ++i) block.get()[i] = static_cast<std::uint8_t>(i);
    CHECK(f->write(block.get(), 4096, 4096) == 0);
    const std::string tail(10, 'z');
    CHECK(f->write(reinterpret_cast<const std::uint8_t*>(tail.data()), 10, 3 * 4096) == 0);
    CHECK(f->sync() == 0);

    bool good = false;
    CHECK(f->verify(4096, 4096, peershare::proto::sha256({block.get(), 4096}), good) == 0);
    CHECK(good);
    CHECK(f->verify(0, 4096, peershare::proto::sha256({block.get(), 4096}), good) == 0);
    CHECK_FALSE(good);  // zeros there
    CHECK(f->verify(size - 5, 10, {}, good) == 0);
    CHECK_FALSE(good);  // past the end: short

    bool synced = false;
    CHECK_FALSE(f->finalize(dest.string(), false, synced));
    CHECK(synced);
    CHECK(fs::file_size(dest) == size);
    CHECK(read_all(dest).substr(3 * 4096) == tail);
    CHECK_FALSE(fs::exists(partial_path_for(dest.string())));
    pool.give_back(std::move(block));
}

TEST_CASE("partial file: an existing one is kept and resized, not truncated") {
    Dir d;
    const auto dest = d.path / "f";
    write_all(partial_path_for(dest.string()), "abcdefgh");
    auto f = prepared(dest, 4);
    CHECK(read_all(f->path()) == "abcd");
    f.reset();
    CHECK(fs::exists(partial_path_for(dest.string())));  // closing keeps it
    CHECK(remove_partial(partial_path_for(dest.string())).ok());
    CHECK_FALSE(fs::exists(partial_path_for(dest.string())));
    CHECK(remove_partial(partial_path_for(dest.string())).ok());
}

TEST_CASE("partial file: one writer at a time; the next is refused until the first closes") {
    Dir d;
    const auto dest = d.path / "shared.bin";
    auto first = prepared(dest, 4096);
    CHECK(first->write(reinterpret_cast<const std::uint8_t*>("abcd"), 4, 0) == 0);
    auto second = PartialFile::prepare(dest.string(), false, partial_path_for(dest.string()), 100);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == ErrorCode::busy);
    CHECK_MESSAGE(second.error().message.find("is being written by another program") != std::string::npos,
                  second.error().message);
    CHECK(fs::file_size(first->path()) == 4096);   // not resized by the refused one
    CHECK(read_all(first->path()).substr(0, 4) == "abcd");
    first.reset();
    CHECK(prepared(dest, 4096)->path() == partial_path_for(dest.string()));

    // The other writer's file is left alone: not removed, not resized.
    const auto theirs = partial_path_for((d.path / "theirs.bin").string());
    write_all(theirs, "their bytes");
    const int held = ::open(theirs.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(held >= 0);
    REQUIRE(lock_writer(held));
    auto refused = PartialFile::prepare((d.path / "theirs.bin").string(), false, theirs, 100);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::busy);
    CHECK(read_all(theirs) == "their bytes");
    ::close(held);
}

TEST_CASE("partial file: what is in the way is refused") {
    Dir d;
    const auto dest = d.path / "f";
    SUBCASE("an existing destination without force") {
        write_all(dest, "mine");
        auto f = PartialFile::prepare(dest.string(), false, partial_path_for(dest.string()), 4);
        REQUIRE_FALSE(f.ok());
        CHECK(f.error().message == dest.string() + " exists; use --force to overwrite");
        CHECK_FALSE(fs::exists(partial_path_for(dest.string())));
    }
    SUBCASE("a directory as destination, even with force") {
        fs::create_directory(dest);
        auto f = PartialFile::prepare(dest.string(), true, partial_path_for(dest.string()), 4);
        REQUIRE_FALSE(f.ok());
        CHECK(f.error().message.find("is a directory") != std::string::npos);
    }
    SUBCASE("a symbolic link as the partial file") {
        write_all(d.path / "victim", "precious");
        fs::create_symlink(d.path / "victim", partial_path_for(dest.string()));
        auto f = PartialFile::prepare(dest.string(), false, partial_path_for(dest.string()), 4);
        REQUIRE_FALSE(f.ok());
        CHECK(read_all(d.path / "victim") == "precious");
    }
    SUBCASE("a directory as the partial file") {
        fs::create_directory(partial_path_for(dest.string()));
        auto f = PartialFile::prepare(dest.string(), false, partial_path_for(dest.string()), 4);
        REQUIRE_FALSE(f.ok());
        CHECK(f.error().message.find(partial_path_for(dest.string())) != std::string::npos);
        CHECK(fs::is_directory(partial_path_for(dest.string())));
    }
}

TEST_CASE("partial file: finalize never replaces a destination that appeared, unless forced") {
    Dir d;
    const auto dest = d.path / "f";
    auto f = prepared(dest, 4);
    write_all(dest, "late");
    bool synced = false;
    auto error = f->finalize(dest.string(), false, synced);
    REQUIRE(error);
    CHECK(error->code == ErrorCode::bad_request);
    CHECK(read_all(dest) == "late");
    CHECK(fs::exists(partial_path_for(dest.string())));  // kept

    auto again = prepared(dest, 4, true);
    CHECK_FALSE(again->finalize(dest.string(), true, synced));
    CHECK(fs::file_size(dest) == 4);
    CHECK(read_all(dest) != "late");
}
