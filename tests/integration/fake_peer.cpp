// tests/integration/fake_peer.cpp — a scriptable stand-in for peerd in the
// tracker's integration tests: one tracker session on common::Client, no
// upload server. It says hello, publishes the files it is given, prints
// `ready` on stdout, then keeps the session alive (heartbeats, pongs) until
// SIGTERM or the tracker closes. --mute never answers pings (a peer whose
// session is up but that does not respond); --silent sends nothing at all
// and ignores pings (a peer that went quiet: the tracker should time it out).
//
// Exit codes: 0 stopped by SIGTERM/SIGINT; 1 refused (name_taken, ...), could
// not connect, or the tracker closed the session; 2 bad command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <iostream>
#include <random>

#include "common/client.hpp"
#include "common/net.hpp"
#include "proto/hex.hpp"
#include "proto/messages.hpp"
#include "tests/integration/harness.hpp"

namespace {

using namespace peershare;
using Clock = std::chrono::steady_clock;

constexpr common::Millis kConnectTimeout{5'000};
constexpr common::Millis kRequestTimeout{5'000};
constexpr common::Millis kStopCheck{100};         // how often the main loop looks for SIGTERM
constexpr std::uint64_t kPieceSize = 256u << 10;  // a plausible piece size; never used for data

volatile std::sig_atomic_t g_stop = 0;

extern "C" void request_stop(int) { g_stop = 1; }

struct Options {
    std::string tracker;
    std::string name;
    std::string key;
    std::uint16_t port = 7000;
    std::vector<std::string> publish;
    bool silent = false;
    bool mute = false;
};

[[noreturn]] void fail(const std::string& message) {
    std::cerr << "fake_peer: " << message << std::endl;
    std::exit(1);
}

std::string random_key() {
    std::random_device device;
    std::string seed;
    for (int i = 0; i < 8; ++i) seed += std::to_string(device());
    return test::hex64(seed);
}

bool is_hex64(std::string_view text) { return proto::digest_from_hex(text).has_value(); }

// NAME:SIZE[:ID] — a name may itself hold ':', so it is read from the right.
proto::Result<proto::FileInfo> parse_publish(std::string_view spec) {
    const auto bad = [&](const std::string& why) {
        return proto::Error{proto::ErrorCode::bad_request,
                            "--publish '" + std::string(spec) + "': " + why};
    };
    std::string_view rest = spec;
    std::string id;
    if (auto colon = rest.rfind(':');
        colon != std::string_view::npos && is_hex64(rest.substr(colon + 1))) {
        id = std::string(rest.substr(colon + 1));
        rest = rest.substr(0, colon);
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("expected NAME:SIZE[:ID]");
    const std::string_view size_text = rest.substr(colon + 1);
    std::uint64_t size = 0;
    auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
    if (ec != std::errc{} || end != size_text.data() + size_text.size())
        return bad("SIZE must be a number");
    proto::FileInfo file;
    file.name = std::string(rest.substr(0, colon));
    file.size = size;
    file.id = id.empty() ? test::hex64(file.name + ":" + std::string(size_text)) : id;
    file.piece_size = kPieceSize;
    // The tracker validates every field; validating here too gives a clear local error.
    auto checked = proto::FileInfo::from_json(file.to_json());
    if (!checked) return bad(checked.error().message);
    return file;
}

std::unique_ptr<common::Client> open_session(const Options& o, proto::Welcome& welcome) {
    auto at = common::parse_endpoint(o.tracker);
    if (!at) fail("--tracker " + at.error().message);
    auto client = common::Client::connect_tcp(*at, kConnectTimeout);
    if (!client)
        fail("cannot connect to the tracker at " + o.tracker + ": " + client.error().message);
    proto::Hello hello;
    hello.name = o.name;
    hello.port = o.port;
    hello.key = o.key.empty() ? random_key() : o.key;
    auto reply = (*client)->request<proto::Welcome>(hello, kRequestTimeout);
    if (!reply) {
        fail("the tracker refused '" + o.name + "': " +
             std::string(proto::to_string(reply.error().code)) + ": " + reply.error().message);
    }
    welcome = *reply;
    return std::move(*client);
}

void publish_all(common::Client& client, const std::vector<proto::FileInfo>& files) {
    for (const auto& file : files) {
        auto ok = client.request<proto::Ok>(proto::Publish{file}, kRequestTimeout);
        if (!ok) {
            fail("publishing '" + file.name + "' was refused: " +
                 std::string(proto::to_string(ok.error().code)) + ": " + ok.error().message);
        }
    }
}

// Keeps the session up until SIGTERM; returns only on SIGTERM.
void keep_alive(common::Client& client, const Options& o, std::uint32_t heartbeat_s) {
    const auto period = std::chrono::seconds(std::max<std::uint32_t>(heartbeat_s, 1));
    auto next_beat = Clock::now() + period;
    while (!g_stop) {
        auto frame = client.next(kStopCheck);
        if (frame) {
            // Pings are answered inside next() unless muted or silent; drop the rest.
            if (frame->type == proto::ErrorReply::kType)
                std::cerr << "fake_peer: error frame: " << frame->body.dump() << std::endl;
            continue;
        }
        if (frame.error().code != proto::ErrorCode::timeout)
            fail("the session ended: " + frame.error().message);
        if (!o.silent && Clock::now() >= next_beat) {
            client.send(proto::Heartbeat{});
            next_beat += period;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"fake_peer — a test peer: hello, publish, then heartbeats and pongs"};
    Options o;
    app.add_option("--tracker", o.tracker, "the tracker's ADDRESS:PORT")->required();
    app.add_option("--name", o.name, "peer name")->required();
    app.add_option("--key", o.key, "peer key, 64 hex digits (default: random)")
        ->check([](const std::string& k) {
            return is_hex64(k) ? std::string() : "must be 64 lowercase hex digits";
        });
    app.add_option("--port", o.port, "upload port announced in the hello")
        ->check(CLI::Range(1, 65535));
    app.add_option("--publish", o.publish, "NAME:SIZE[:ID] to publish (repeatable)");
    app.add_flag("--silent", o.silent, "send nothing after publishing and ignore pings");
    app.add_flag("--mute", o.mute, "do not answer pings (heartbeats continue)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }

    std::vector<proto::FileInfo> files;
    for (const auto& spec : o.publish) {
        auto file = parse_publish(spec);
        if (!file) {
            std::cerr << "fake_peer: " << file.error().message << std::endl;
            return 2;
        }
        files.push_back(*file);
    }

    struct sigaction sa {};
    sa.sa_handler = request_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    proto::Welcome welcome;
    auto client = open_session(o, welcome);
    client->answer_pings(!o.mute && !o.silent);
    publish_all(*client, files);
    std::cerr << "fake_peer: " << o.name << " joined as " << welcome.address << ", heartbeat every "
              << welcome.heartbeat_s << " s" << std::endl;
    std::cout << "ready" << std::endl;
    keep_alive(*client, o, welcome.heartbeat_s);
    return 0;
}
