// tests/integration/test_fs_faults.cpp — file-system faults under peerd
// (issue 9, "Fault injection"; docs/robustness.md): its state directory on a
// read-only file system at start, its state disk full while it runs, a fetch
// to a read-only file system, and a destination directory removed mid-fetch.
// Root does not obey permissions, so every fault is a real file system: a
// small tmpfs the test mounts (and remounts read-only) inside the mount
// namespace of its own that mount_namespace_main.cpp made (skipped, exit 77,
// where it cannot). Each fault must give peerctl one clear line, leave
// nothing half-written under a final name, leave peerd serving others, and
// let the user retry once the fault is gone.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/integration/peer_helpers.hpp"

namespace peershare::test {
namespace {

// A tmpfs of `size_kb` mounted at `path` (created) for the life of the object.
class Tmpfs {
public:
    Tmpfs(fs::path path, std::size_t size_kb) : path_(std::move(path)), options_("size=" + std::to_string(size_kb) + "k") {
        fs::create_directories(path_);
        REQUIRE_MESSAGE(::mount("tmpfs", path_.c_str(), "tmpfs", 0, options_.c_str()) == 0,
                        "mount tmpfs on " << path_ << ": " << std::strerror(errno));
    }
    ~Tmpfs() { ::umount2(path_.c_str(), MNT_DETACH); }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;

    // Remounts it read-only or read-write (fails, EBUSY, while a file on it is open for writing).
    void read_only(bool on) {
        const unsigned long flags = MS_REMOUNT | (on ? MS_RDONLY : 0);
        REQUIRE_MESSAGE(::mount(nullptr, path_.c_str(), nullptr, flags, options_.c_str()) == 0,
                        "remount " << path_ << (on ? " ro: " : " rw: ") << std::strerror(errno));
    }
    // Fills every free block with a file `filler`: the next write that needs a block gets ENOSPC.
    void fill() {
        const auto filler = path_ / "filler";
        const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        const std::string block(4096, '\0');
        int err = 0;
        for (int i = 0; i < 1'000'000 && err == 0; ++i) {   // bounded: far more than any size used here
            if (::write(fd, block.data(), block.size()) < 0) err = errno;
        }
        ::close(fd);
        REQUIRE_MESSAGE(err == ENOSPC, "filling " << path_ << ": " << std::strerror(err));
    }
    void unfill() { fs::remove(path_ / "filler"); }

private:
    fs::path path_;
    std::string options_;
};

// peerctl's error: exactly one line, containing every part.
void check_one_line(const RunResult& r, std::initializer_list<std::string_view> parts) {
    INFO(r.describe());
    CHECK(r.exit_code != 0);
    CHECK(lines_in(r.err) == 1);
    for (const auto part : parts) CHECK_MESSAGE(contains(r.err, part), "missing: " << part);
}

// A holder `p1` rate-limited (so a fetch lasts a few seconds) with an 8 MB
// file `a.bin`, and a fetcher `p2` whose state directory is a tmpfs of 2 MB.
struct Scene {
    TempDir dir;
    TrackerFixture tracker;
    std::unique_ptr<PeerFixture> p1;
    std::unique_ptr<Tmpfs> p2_state;
    std::unique_ptr<PeerFixture> p2;
    fs::path original;
    std::string id;

    Scene() {
        p1 = start_peer("p1", tracker.endpoint(), dir.path(), {{"--max-upload-rate", "3M"}});
        p2_state = std::make_unique<Tmpfs>(dir / "p2" / "state", 2048);
        p2 = start_peer("p2", tracker.endpoint(), dir.path());
        Swarm::wait_connected(*p1);
        Swarm::wait_connected(*p2);
        original = p1->dir() / "a.bin";
        write_random(original, 8'000'000, 9);
        id = publish(*p1, original, "a")["id"].get<std::string>();
        wait_holders(*p2, "a", id, {"p1"});
    }

    // p2 fetches `a` to `dest` with the right bytes.
    void fetch_works(const fs::path& dest) {
        fetch_ok(*p2, "a", dest);
        CHECK_SAME_FILE(original, dest);
    }
};

std::vector<std::string> peerd_args(const fs::path& dir, const fs::path& state_dir) {
    return {"--tracker", "127.0.0.1:1", "--name", "ro", "--listen", "127.0.0.1:0",
            "--socket", (dir / "ro.sock").string(), "--state-dir", state_dir.string(),
            "--config", "/dev/null", "--workers", "2"};
}

}  // namespace

TEST_CASE("fs fault: a state directory on a read-only file system stops peerd at start with one line naming it") {
    TempDir dir;
    Tmpfs ro(dir / "ro", 1024);
    {   // a state directory that exists, with a database in it: as after a reboot into a read-only disk
        auto peer = start_peer("p", "127.0.0.1:1", dir / "ro");
        peer->stop();
    }
    ro.read_only(true);
    for (const auto& state : {dir / "ro" / "p" / "state", dir / "ro" / "new" / "state"}) {
        Process peerd(peerd_binary(), peerd_args(dir.path(), state), dir.path());
        const auto code = peerd.wait(kDeadline);
        INFO(peerd.describe());
        REQUIRE(code.has_value());
        CHECK(*code == 1);
        CHECK(lines_in(peerd.errors()) == 1);
        CHECK(contains(peerd.errors(), state.string()));
        CHECK(contains(peerd.errors(), "Read-only file system"));   // before the fix: "unable to open database file"
    }
    // Once the disk is writable again, peerd starts on the same state.
    ro.read_only(false);
    auto peer = start_peer("p", "127.0.0.1:1", dir / "ro");
    CHECK(peer->peerctl("status").exit_code == 0);
}

TEST_CASE("fs fault: a full state disk mid-run fails a publish with one line and keeps nothing; peerd serves on; it works once there is room") {
    Scene s;
    const auto mine = s.p2->dir() / "mine.txt";
    write_text(mine, "published before the disk filled\n");
    const auto mine_id = publish(*s.p2, mine, "mine")["id"].get<std::string>();
    s.p2_state->fill();

    const auto late = s.p2->dir() / "late.txt";
    write_text(late, "published while the disk is full\n");
    const auto r = s.p2->peerctl("publish", late.string(), "late");   // before the fix: no answer, ever
    check_one_line(r, {"'late' not published", s.p2->state_dir().string(), "disk is full"});
    CHECK(!contains(ok_json(*s.p2, "list").dump(), "late.txt"));   // undone, not half-kept
    CHECK(holders(*s.p1, "late", hex64("none")).empty());

    // peerd serves on: p1 fetches p2's file, p2 fetches p1's (its transfer rows wait for room).
    wait_holders(*s.p1, "mine", mine_id, {"p2"});
    fetch_ok(*s.p1, "mine", s.p1->dir() / "mine.txt");
    CHECK_SAME_FILE(mine, s.p1->dir() / "mine.txt");
    s.fetch_works(s.p2->dir() / "a-while-full.bin");

    // Room again: the same publish works (it waits for the writer's next retry).
    s.p2_state->unfill();
    const auto again = s.p2->peerctl({"--json", "publish", late.string(), "late"}, kReconnect);
    INFO(again.describe());
    CHECK(again.exit_code == 0);
    CHECK(s.p2->running());
}

TEST_CASE("fs fault: a fetch to a read-only file system fails at once with one line; the same fetch works once it is writable") {
    Scene s;
    Tmpfs ro(s.p2->dir() / "ro", 16 * 1024);
    ro.read_only(true);
    const auto dest = s.p2->dir() / "ro" / "a.bin";
    const auto r = fetch(*s.p2, {"a", "-o", dest.string()});
    check_one_line(r, {dest.parent_path().string(), "Read-only file system"});
    CHECK(entries(dest.parent_path()).empty());   // nothing, not even a partial file
    // Nor a cleanup of the partial file it never made (unlink says EROFS there
    // before it looks the name up: review R9b saw "cannot remove …" logged).
    CHECK_MESSAGE(!contains(s.p2->process().errors(), "cannot remove"), s.p2->describe());
    s.fetch_works(s.p2->dir() / "elsewhere.bin");   // peerd serves on
    ro.read_only(false);
    s.fetch_works(dest);
}

TEST_CASE("fs fault: the destination directory removed mid-fetch fails the transfer with one line; it resumes once the directory is back") {
    Scene s;
    const auto sub = s.p2->dir() / "sub";
    fs::create_directories(sub);
    const auto dest = sub / "a.bin";
    auto fetcher = s.p2->start_peerctl({"fetch", "a", "-o", dest.string()});
    REQUIRE_MESSAGE(wait_until([&] { return downloading(*s.p2); }, kDeadline), s.p2->describe());
    fs::remove_all(sub);   // with the partial file in it
    const auto code = fetcher->wait(kBigTransfer);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    INFO(fetcher->describe());
    CHECK(lines_in(fetcher->errors()) == 1);
    CHECK(contains(fetcher->errors(), dest.string()));
    CHECK(contains(fetcher->errors(), "No such file or directory"));
    CHECK(contains(fetcher->errors(), "peerctl resume"));
    CHECK(!fs::exists(dest));
    s.fetch_works(s.p2->dir() / "other.bin");   // peerd serves on
    fs::create_directories(sub);
    s.fetch_works(dest);   // the same fetch takes the failed transfer up again
    CHECK(entries(sub) == std::set<std::string>{"a.bin"});
}

}  // namespace peershare::test
