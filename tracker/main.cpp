// tracker/main.cpp — trackerd: parses the command line (and config file),
// starts the peer and admin servers on one libuv loop, stops cleanly on
// SIGTERM/SIGINT.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "common/log.hpp"
#include "common/uv.hpp"
#include "tracker/admin_server.hpp"
#include "tracker/peer_server.hpp"
#include "tracker/state.hpp"

namespace {

using namespace peershare;

struct Options {
    tracker::Config config;
    std::string listen = "0.0.0.0:9999";
    std::string log_level = "info";
};

void add_options(CLI::App& app, Options& o) {
    const char* env_socket = std::getenv("TRACKER_SOCKET");
    if (env_socket && *env_socket) o.config.admin_socket = env_socket;
    app.add_option("--listen", o.listen, "address:port peers connect to ([::]:9999 for IPv6)")
        ->capture_default_str();
    app.add_option("--admin-socket", o.config.admin_socket,
                   "Unix socket for trackerctl (env TRACKER_SOCKET)")
        ->capture_default_str();
    app.add_option("--heartbeat", o.config.heartbeat_s, "seconds between peer heartbeats")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    app.add_option("--peer-timeout", o.config.peer_timeout_s,
                   "seconds of silence after which a peer is dropped")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400));
    app.add_option("--max-peers", o.config.max_peers, "live peers at most")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, proto::kDefaultMaxPeers * 50));
    app.add_option("--max-files-per-peer", o.config.max_files_per_peer, "files one peer may publish")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, proto::kMaxFilesPerPeer));
    app.add_option("--log-level", o.log_level, "error, warning, info or debug")
        ->capture_default_str()
        ->check(CLI::IsMember({"error", "warning", "info", "debug"}));
    // A missing default file is fine; a missing file named on the command line is an error.
    app.set_config("--config", "/etc/peershare/tracker.conf", "TOML file of these options");
}

common::LogLevel parse_level(const std::string& level) {
    if (level == "error") return common::LogLevel::error;
    if (level == "warning") return common::LogLevel::warning;
    if (level == "debug") return common::LogLevel::debug;
    return common::LogLevel::info;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"trackerd — the peershare tracker: knows which peers are online and what they offer"};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    Options options;
    add_options(app, options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    auto listen = common::parse_endpoint(options.listen);
    if (!listen) {
        std::cerr << "trackerd: --listen " << listen.error().message << "\n";
        return 2;
    }
    options.config.listen = *listen;
    if (options.config.peer_timeout_s <= options.config.heartbeat_s) {
        std::cerr << "trackerd: --peer-timeout must be longer than --heartbeat\n";
        return 2;
    }

    std::signal(SIGPIPE, SIG_IGN);
    common::Log log("trackerd", parse_level(options.log_level));
    common::Loop loop;
    tracker::State state(options.config, log);
    tracker::PeerServer peers(loop.get(), state);
    tracker::AdminServer admin(loop.get(), state, peers);
    if (auto ok = peers.start(); !ok) {
        log.error(ok.error().message);
        return 1;
    }
    if (auto ok = admin.start(); !ok) {
        log.error(ok.error().message);
        return 1;
    }
    log.info("listening for peers on " + common::to_string({options.config.listen.host, peers.port()}) +
             ", admin socket " + options.config.admin_socket);

    struct Stopper {
        tracker::PeerServer& peers;
        tracker::AdminServer& admin;
        common::Loop& loop;
        const common::Log& log;
    } stopper{peers, admin, loop, log};
    common::Signal sigterm(loop.get());
    common::Signal sigint(loop.get());
    for (auto* sig : {&sigterm, &sigint}) {
        sig->get()->data = &stopper;
        uv_signal_start(
            sig->get(),
            [](uv_signal_t* h, int signum) {
                auto* s = static_cast<Stopper*>(h->data);
                s->log.info(std::string("stopping on ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT"));
                s->peers.stop();
                s->admin.stop();
                uv_signal_stop(h);
                s->loop.stop();
            },
            sig == &sigterm ? SIGTERM : SIGINT);
    }
    loop.run();
    return 0;
}
