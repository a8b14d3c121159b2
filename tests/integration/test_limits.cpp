// tests/integration/test_limits.cpp — rate limits end to end (issue 8): the
// real peerd and peerctl: `peerctl limit` shows and changes both limits, bad
// rates are refused with exit 2 and one line, --json gives the documented
// object, a reload (SIGHUP) sets them from the config file again, and the
// upload limit set at run time really slows an HTTP download (curl). Timing
// bounds are generous (±50 %): this checks the limit applies, it does not
// measure it.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "proto/control.hpp"
#include "proto/frame.hpp"
#include "tests/integration/harness.hpp"

namespace {

using namespace peershare;
using namespace peershare::test;
using nlohmann::json;

std::size_t lines_in(std::string_view text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The limits as `peerctl --json limit ARGS...` prints them; it must succeed.
json limits_json(PeerFixture& peer, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {"--json", "limit"});
    const auto r = peer.peerctl(args);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    return parse_json(r.out);
}

json limits(std::uint64_t up, std::uint64_t down) {
    return {{"upload_rate", up}, {"download_rate", down}};
}

void write_file(const fs::path& path, std::uint64_t size) {
    std::string bytes(size, '\0');
    for (std::uint64_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7919) >> 5);
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
    REQUIRE(fs::file_size(path) == size);
}

}  // namespace

TEST_CASE("peerctl limit shows both rate limits, changes them at run time, refuses bad rates") {
    TempDir dir;
    TrackerFixture tracker;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path(),
                            {{"--max-upload-rate", "20Mbit", "--max-download-rate", "1.5M"}});

    const auto shown = alpha->peerctl("limit");
    INFO(shown.describe());
    CHECK(shown.exit_code == 0);
    CHECK(shown.out == "upload    2.5 MB/s\ndownload  1.5 MB/s\n");
    CHECK(limits_json(*alpha) == limits(2'500'000, 1'500'000));   // exactly these two fields

    CHECK(limits_json(*alpha, {"--up", "5M", "--down", "20Mbit"}) == limits(5'000'000, 2'500'000));
    CHECK(limits_json(*alpha) == limits(5'000'000, 2'500'000));
    CHECK(limits_json(*alpha, {"--down", "0"}) == limits(5'000'000, 0));   // the other one stays
    const auto human = alpha->peerctl("limit", "--up", "4Mi");
    CHECK(human.exit_code == 0);
    CHECK(human.out == "upload    4.19 MB/s\ndownload  unlimited\n");
    const auto logged = "rate limits set by peerctl: upload 2.5 MB/s -> 5 MB/s, download 1.5 MB/s "
                        "-> 2.5 MB/s";
    CHECK(contains(alpha->process().errors(), logged));

    for (const auto& [option, value, why] : {std::tuple{"--up", "fast", "no number"},
                                             std::tuple{"--down", "20Mb", "ambiguous"},
                                             std::tuple{"--down", "-1", "negative"},
                                             std::tuple{"--up", "2000G", "largest"}}) {
        CAPTURE(value);
        for (const bool as_json : {false, true}) {
            std::vector<std::string> args{"limit", option, value};
            if (as_json) args.push_back("--json");
            const auto r = alpha->peerctl(args);
            INFO(r.describe());
            CHECK(r.exit_code == 2);
            CHECK(r.out.empty());
            CHECK(lines_in(r.err) == 1);
            const auto prefix = std::string("peerctl: ") + option + ": bad rate '" + value + "': ";
            CHECK(r.err.starts_with(prefix));
            CHECK(contains(r.err, why));
        }
    }
    CHECK(limits_json(*alpha) == limits(4'194'304, 0));   // nothing changed by the bad ones

    SUBCASE("set_limits is validated where it enters peerd") {
        auto client = common::Client::connect_unix(alpha->socket().string(), kDeadline);
        REQUIRE(client.ok());
        proto::Hello hello;
        hello.role = "admin";
        REQUIRE((*client)->request<proto::Welcome>(hello, kDeadline).ok());
        const auto negative = R"({"type":"set_limits","id":7,"upload_rate":-5})";
        (*client)->send_bytes(proto::encode_frame(negative));
        const auto envelope = (*client)->wait_reply(7, kDeadline);
        REQUIRE(envelope.ok());
        const auto reply = proto::expect<proto::Limits>(*envelope);
        REQUIRE_FALSE(reply.ok());
        CHECK(reply.error().code == proto::ErrorCode::bad_request);
        CHECK(reply.error().message == "field 'upload_rate' must be a non-negative integer");
        CHECK(limits_json(*alpha) == limits(4'194'304, 0));
        CHECK(alpha->running());
    }
}

TEST_CASE("a reload sets the rate limits from the config file again") {
    TempDir dir;
    const auto conf = dir / "peerd.conf";
    std::ofstream(conf) << "max-download-rate = \"20Mbit\"\nmax-upload-rate = \"1M\"\n";
    const auto socket = dir / "peerd.sock";
    const auto tracker = "127.0.0.1:" + std::to_string(free_port());   // nobody there: fine
    Process peerd(peerd_binary(),
                  {"--config", conf.string(), "--tracker", tracker, "--name", "solo", "--listen",
                   "127.0.0.1:0", "--socket", socket.string(), "--state-dir",
                   (dir / "state").string(), "--workers", "1"},
                  dir.path());
    const auto limit = [&](std::vector<std::string> args) {
        args.insert(args.begin(),
                    {peerctl_binary().string(), "--socket", socket.string(), "--json", "limit"});
        return run(args);
    };
    const auto shows = [&](const json& expected) {
        const auto r = limit({});
        return r.exit_code == 0 && json::parse(r.out, nullptr, false) == expected;
    };
    REQUIRE_MESSAGE(wait_until([&] { return shows(limits(1'000'000, 2'500'000)); }, kDeadline),
                    peerd.describe());

    REQUIRE(limit({"--down", "1M"}).exit_code == 0);
    CHECK(shows(limits(1'000'000, 1'000'000)));
    peerd.signal(SIGHUP);
    CHECK_MESSAGE(wait_until([&] { return shows(limits(1'000'000, 2'500'000)); }, kDeadline),
                  peerd.describe());
    const auto reloaded =
        "reloaded " + conf.string() + ": max-download-rate 1 MB/s (set by peerctl) -> 20Mbit";
    CHECK(wait_until([&] { return contains(peerd.errors(), reloaded); }, kDeadline));

    // A new value in the file, and one that is not a rate: the running ones stay.
    std::ofstream(conf) << "max-download-rate = \"0\"\nmax-upload-rate = \"1M\"\n";
    peerd.signal(SIGHUP);
    CHECK(wait_until([&] { return shows(limits(1'000'000, 0)); }, kDeadline));
    std::ofstream(conf) << "max-download-rate = \"lots\"\n";
    peerd.signal(SIGHUP);
    CHECK(wait_until([&] { return contains(peerd.errors(), "bad rate 'lots'"); }, kDeadline));
    CHECK(shows(limits(1'000'000, 0)));
    CHECK(peerd.stop() == 0);
}

TEST_CASE("the upload limit set with peerctl limit slows an HTTP download, and 0 lifts it") {
    TempDir dir;
    TrackerFixture tracker;
    auto alpha = start_peer("alpha", tracker.endpoint(), dir.path());
    const auto src = alpha->dir() / "limited.bin";
    constexpr std::uint64_t kSize = 3'000'000;
    write_file(src, kSize);
    const auto published = alpha->peerctl("--json", "publish", src.string(), "limited.bin");
    INFO(published.describe());
    REQUIRE(published.exit_code == 0);
    const std::string url = "http://127.0.0.1:" + std::to_string(alpha->port()) + "/v1/files/" +
                            parse_json(published.out)["id"].get<std::string>();

    // curl's average speed in bytes/s over the whole body, which must arrive intact.
    const auto download = [&] {
        const auto out = dir / "download.bin";
        const auto r = run({"/usr/bin/curl", "-sS", "--max-time", "60", "-o", out.string(), "-w",
                            "%{speed_download}", url},
                           {}, Millis{70'000});
        INFO(r.describe());
        REQUIRE(r.exit_code == 0);
        CHECK(fs::file_size(out) == kSize);
        return std::stod(r.out);
    };

    constexpr double kLimit = 1'000'000;
    REQUIRE(limits_json(*alpha, {"--up", "1M"}) == limits(1'000'000, 0));
    const double limited = download();
    CHECK(limited >= kLimit * 0.5);
    CHECK(limited <= kLimit * 1.5);

    REQUIRE(limits_json(*alpha, {"--up", "0"}) == limits(0, 0));
    CHECK(download() > kLimit * 1.5);
}
