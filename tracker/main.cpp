// tracker/main.cpp — trackerd: parses the command line and config file,
// starts the peer and admin servers and the HTTP listener on one libuv loop, tells systemd once it
// listens, re-reads the config file on SIGHUP (limits, timeouts, log level)
// and stops cleanly on SIGTERM/SIGINT.
#include <CLI/CLI.hpp>
#include <csignal>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/service.hpp"
#include "common/uv.hpp"
#include "proto/http_request.hpp"
#include "tracker/admin_server.hpp"
#include "tracker/http_api.hpp"
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
    std::string http_listen = "127.0.0.1:9998";   // empty: off
    bool http_listen_given = false;               // on the command line or in the file
    std::string log_level = "info";
};

std::string endpoint_problem(const std::string& text) {
    auto endpoint = common::parse_endpoint(text);
    return endpoint ? std::string() : endpoint.error().message;
}

// "off" (or "" on the command line: CLI11 reads `key = ""` in a file as no value) turns a listener off.
bool is_off(const std::string& text) { return text.empty() || text == "off"; }

std::string optional_endpoint_problem(const std::string& text) {
    return is_off(text) ? std::string() : endpoint_problem(text);
}

void add_options(CLI::App& app, Options& o) {
    const char* env_socket = std::getenv("TRACKER_SOCKET");
    if (env_socket && *env_socket) o.config.admin_socket = env_socket;
    app.add_option("--listen", o.listen, "address:port peers connect to ([::]:9999 for IPv6)")
        ->capture_default_str()
        ->check(endpoint_problem);
    app.add_option("--http-listen", o.http_listen,
                   "address:port of the dashboard, /metrics and the JSON API; \"off\" turns it off "
                   "(no login: keep it on loopback or behind a proxy)")
        ->capture_default_str()
        ->check(optional_endpoint_problem)
        ->each([&o](const std::string&) { o.http_listen_given = true; });
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
    app.add_option("--request-timeout", o.config.request_timeout_s,
                   "seconds a peer or trackerctl has to send a whole frame, from its first byte")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    app.add_flag("--trust-advertise", o.config.trust_advertise,
                 "give out the address a peer advertises (peerd --advertise) instead of the one "
                 "it connects from; only where every peer is trusted");
    app.add_flag("--reach-check,!--no-reach-check", o.config.reach_check,
                 "dial each peer's upload address back on hello to learn whether fetchers can reach it "
                 "(trackerctl peers: REACH); --no-reach-check never dials peers")
        ->capture_default_str();
    app.add_option("--max-peers", o.config.max_peers, "live peers at most")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, proto::kDefaultMaxPeers * 50));
    app.add_option("--max-files-per-peer", o.config.max_files_per_peer, "files one peer may publish")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, proto::kMaxFilesPerPeer));
    app.add_option("--max-holders", o.config.max_holders,
                   "holders one lookup answers; past it, a random mix of complete and partial ones")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, proto::kMaxLookupHolders));
    common::add_log_level_option(app, o.log_level);
    // A missing default file is fine; a missing file named on the command line is an error.
    app.set_config("--config", kDefaultConfig,
                   "TOML file of these options (key = value); SIGHUP re-reads it");
}

// Reads the command line and the config file into o. Null when o is ready;
// else the exit code, with `error` saying what is wrong (empty after --help).
std::optional<int> read_options(int argc, char** argv, Options& o, std::string& error) {
    if (auto code = common::read_service_options(argc, argv, kAbout, add_options, o, error)) return code;
    o.config.listen = *common::parse_endpoint(o.listen);   // checked by its validator
    o.config.http_listen.reset();
    if (!is_off(o.http_listen)) o.config.http_listen = *common::parse_endpoint(o.http_listen);
    if (o.config.peer_timeout_s <= o.config.heartbeat_s) {
        error = "--peer-timeout (" + std::to_string(o.config.peer_timeout_s) +
                ") must be longer than --heartbeat (" + std::to_string(o.config.heartbeat_s) + ")";
        return 2;
    }
    return std::nullopt;
}

// Applies what can change without a restart, noting it on `reload` with what
// needs a restart. options.config is the Config that State reads.
void apply(common::Reload& reload, Options& options, const Options& fresh, tracker::State& state) {
    reload.log_level(options.log_level, fresh.log_level);
    auto& now = options.config;
    const auto& next = fresh.config;
    auto& changed = reload.changed;
    if (changed.note("max-peers", now.max_peers, next.max_peers)) now.max_peers = next.max_peers;
    if (changed.note("max-files-per-peer", now.max_files_per_peer, next.max_files_per_peer)) {
        now.max_files_per_peer = next.max_files_per_peer;
        state.index.set_max_files_per_peer(next.max_files_per_peer);
    }
    if (changed.note("max-holders", now.max_holders, next.max_holders)) {
        now.max_holders = next.max_holders;
        state.index.set_max_holders(next.max_holders);
    }
    if (changed.note("peer-timeout", now.peer_timeout_s, next.peer_timeout_s)) {
        now.peer_timeout_s = next.peer_timeout_s;
    }
    if (changed.note("heartbeat", now.heartbeat_s, next.heartbeat_s)) {
        now.heartbeat_s = next.heartbeat_s;   // told to peers as they connect
    }
    reload.restart.note("listen", options.listen, fresh.listen);
    reload.restart.note("http-listen", options.http_listen, fresh.http_listen);
    reload.restart.note("admin-socket", now.admin_socket, next.admin_socket);
    if (changed.note("trust-advertise", now.trust_advertise, next.trust_advertise)) {
        now.trust_advertise = next.trust_advertise;   // for peers that say hello from now on
    }
    if (changed.note("reach-check", now.reach_check, next.reach_check)) {
        now.reach_check = next.reach_check;   // for peers that say hello from now on
    }
    reload.restart.note("request-timeout", now.request_timeout_s, next.request_timeout_s);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    std::string error;
    if (auto code = read_options(argc, argv, options, error)) {
        // Through the log: at err and without the program's name in the
        // journal (the identifier says it), as a failed reload is.
        if (!error.empty()) common::Log("trackerd").error(error);
        return *code;
    }

    std::signal(SIGPIPE, SIG_IGN);
    common::Log log("trackerd", common::parse_log_level(options.log_level));
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
    tracker::HttpApi http(loop.get(), state, peers);
    if (const auto& at = options.config.http_listen) {
        if (auto ok = http.start(*at); !ok && options.http_listen_given) {
            log.error("--http-listen: " + ok.error().message);
            return 1;
        } else if (!ok) {
            // The default address taken (a second trackerd on this host): serve peers all the same.
            log.warning("no dashboard: the default --http-listen " + options.http_listen + " failed (" +
                        ok.error().message + "); set --http-listen to another address, or to off");
        } else {
            log.info("dashboard, /metrics and API on http://" + common::to_string({at->host, http.port()}) + "/");
            if (!proto::loopback_host(at->host)) {
                log.warning("--http-listen " + options.http_listen +
                            " is not a loopback address: anyone who reaches it sees the dashboard, which has no login");
            }
        }
    }

    log.info("listening for peers on " + common::to_string({options.config.listen.host, peers.port()}) +
             ", admin socket " + options.config.admin_socket);

    common::ServiceSignals::Handlers handlers;
    handlers.reload = [&](common::Reload& reload) -> std::optional<std::string> {
        Options fresh;
        std::string problem;
        if (read_options(argc, argv, fresh, problem)) return problem;
        apply(reload, options, fresh, state);
        return std::nullopt;
    };
    handlers.stop = [&] {
        peers.stop();
        admin.stop();
        http.stop();
        loop.stop();
    };
    common::ServiceSignals signals(loop.get(), log, common::config_file_of(argc, argv, kDefaultConfig).path,
                                   std::move(handlers));
    signals.start();
    loop.run();
    return 0;
}
