// tracker/main.cpp — trackerd: parses the command line and config file,
// starts the peer and admin servers on one libuv loop, tells systemd once it
// listens, re-reads the config file on SIGHUP (limits, timeouts, log level)
// and stops cleanly on SIGTERM/SIGINT.
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <iostream>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/uv.hpp"
#include "tracker/admin_server.hpp"
#include "tracker/peer_server.hpp"
#include "tracker/state.hpp"

namespace {

using namespace peershare;

constexpr const char* kAbout =
    "trackerd — the peershare tracker: knows which peers are online and what they offer";
constexpr const char* kDefaultConfig = "/etc/peershare/tracker.conf";

struct Options {
    tracker::Config config;   // its listen is parsed from `listen` by read_options()
    std::string listen = "0.0.0.0:9999";
    std::string log_level = "info";
};

std::string endpoint_problem(const std::string& text) {
    auto endpoint = common::parse_endpoint(text);
    return endpoint ? std::string() : endpoint.error().message;
}

void add_options(CLI::App& app, Options& o) {
    const char* env_socket = std::getenv("TRACKER_SOCKET");
    if (env_socket && *env_socket) o.config.admin_socket = env_socket;
    app.add_option("--listen", o.listen, "address:port peers connect to ([::]:9999 for IPv6)")
        ->capture_default_str()
        ->check(endpoint_problem);
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
    app.set_config("--config", kDefaultConfig,
                   "TOML file of these options (key = value); SIGHUP re-reads it");
}

common::LogLevel parse_level(const std::string& level) {
    if (level == "error") return common::LogLevel::error;
    if (level == "warning") return common::LogLevel::warning;
    if (level == "debug") return common::LogLevel::debug;
    return common::LogLevel::info;
}

// Reads the command line and the config file into o. Null when o is ready;
// else the exit code, with `error` saying what is wrong (empty after --help).
std::optional<int> read_options(int argc, char** argv, Options& o, std::string& error) {
    CLI::App app{kAbout};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    add_options(app, o);
    Options scratch;
    auto declare_scratch = [&scratch](CLI::App& a) { add_options(a, scratch); };
    if (auto code = common::parse_command_line(app, argc, argv, declare_scratch, error)) {
        return code;
    }
    o.config.listen = *common::parse_endpoint(o.listen);   // checked by its validator
    if (o.config.peer_timeout_s <= o.config.heartbeat_s) {
        error = "--peer-timeout (" + std::to_string(o.config.peer_timeout_s) +
                ") must be longer than --heartbeat (" + std::to_string(o.config.heartbeat_s) + ")";
        return 2;
    }
    return std::nullopt;
}

// What the signal handlers reach. options.config is the Config that State reads.
struct Service {
    int argc;
    char** argv;
    Options& options;
    common::Log& log;
    tracker::State& state;
    tracker::PeerServer& peers;
    tracker::AdminServer& admin;
    common::Loop& loop;
};

// Applies what can change without a restart; one log line for what changed,
// one for what needs a restart.
void apply(Service& s, const Options& fresh) {
    auto& now = s.options.config;
    const auto& next = fresh.config;
    common::Changes changed;
    const bool level_changed = changed.note("log-level", s.options.log_level, fresh.log_level);
    if (changed.note("max-peers", now.max_peers, next.max_peers)) now.max_peers = next.max_peers;
    if (changed.note("max-files-per-peer", now.max_files_per_peer, next.max_files_per_peer)) {
        now.max_files_per_peer = next.max_files_per_peer;
        s.state.index.set_max_files_per_peer(next.max_files_per_peer);
    }
    if (changed.note("peer-timeout", now.peer_timeout_s, next.peer_timeout_s)) {
        now.peer_timeout_s = next.peer_timeout_s;
    }
    if (changed.note("heartbeat", now.heartbeat_s, next.heartbeat_s)) {
        now.heartbeat_s = next.heartbeat_s;   // told to peers as they connect
    }
    common::Changes restart;
    restart.note("listen", s.options.listen, fresh.listen);
    restart.note("admin-socket", now.admin_socket, next.admin_socket);

    const auto file = common::config_file_of(s.argc, s.argv, kDefaultConfig).path;
    // The reload line shows under the old level or the new one, whichever says more.
    const auto level = parse_level(fresh.log_level);
    if (level_changed) s.log.set_level(std::max(level, parse_level(s.options.log_level)));
    s.log.info("reloaded " + file + ": " + changed.summary());
    if (!restart.empty()) s.log.warning("restart trackerd to apply: " + restart.summary());
    if (level_changed) {
        s.options.log_level = fresh.log_level;
        s.log.set_level(level);
    }
}

void on_reload_signal(uv_signal_t* handle, int) {
    auto& s = *static_cast<Service*>(handle->data);
    sd_notify(0, "RELOADING=1");
    Options fresh;
    std::string error;
    if (read_options(s.argc, s.argv, fresh, error)) {
        s.log.error("reload failed, keeping the running settings: " + error);
    } else {
        apply(s, fresh);
    }
    sd_notify(0, "READY=1");
}

void on_stop_signal(uv_signal_t* handle, int signum) {
    auto& s = *static_cast<Service*>(handle->data);
    s.log.info(std::string("stopping on ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    sd_notify(0, "STOPPING=1");
    s.peers.stop();
    s.admin.stop();
    s.loop.stop();
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    std::string error;
    if (auto code = read_options(argc, argv, options, error)) {
        if (!error.empty()) std::cerr << "trackerd: " << error << "\n";
        return *code;
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

    Service service{argc, argv, options, log, state, peers, admin, loop};
    common::Signal sigterm(loop.get());
    common::Signal sigint(loop.get());
    common::Signal sighup(loop.get());
    for (auto* sig : {&sigterm, &sigint, &sighup}) sig->get()->data = &service;
    uv_signal_start(sigterm.get(), on_stop_signal, SIGTERM);
    uv_signal_start(sigint.get(), on_stop_signal, SIGINT);
    uv_signal_start(sighup.get(), on_reload_signal, SIGHUP);
    sd_notify(0, "READY=1");   // after the handlers: systemd may signal as soon as it reads this
    loop.run();
    return 0;
}
