// tracker/main.cpp — trackerd: parses the command line and config file,
// starts the peer and admin servers and the HTTP listener on one libuv loop (and
// the relay, when asked for, on a thread and loop of its own), tells systemd once it
// listens, re-reads the config file on SIGHUP (limits, timeouts, log level)
// and stops cleanly on SIGTERM/SIGINT.
#include <CLI/CLI.hpp>
#include <csignal>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/rate.hpp"
#include "common/service.hpp"
#include "common/uv.hpp"
#include "proto/http_request.hpp"
#include "tracker/admin_server.hpp"
#include "tracker/http_api.hpp"
#include "tracker/peer_server.hpp"
#include "tracker/relay/relay_server.hpp"
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
    std::string relay_listen = "off";
    std::string relay_rate = "20M";
    std::string relay_circuit_rate = "5M";
    std::string relay_circuit_bytes = "1Gi";
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

std::string rate_problem(const std::string& text) {
    auto rate = common::parse_rate(text);
    return rate ? std::string() : rate.error().message;
}

std::string size_problem(const std::string& text) {
    auto size = common::parse_size(text);
    if (!size) return size.error().message;
    return *size == 0 ? "must be more than 0 bytes" : std::string();
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
                 "on by default: dial each peer's upload address back on hello to learn whether fetchers "
                 "can reach it (trackerctl peers: REACH); --no-reach-check never dials peers")
        ->capture_default_str();
    app.add_option("--relay-listen", o.relay_listen,
                   "address:port of the relay that joins two peers neither of which can reach the other "
                   "(README \"Behind NAT\"); \"off\" runs none")
        ->capture_default_str()
        ->check(optional_endpoint_problem);
    auto& limits = o.config.relay_limits;
    app.add_option("--relay-max-circuits", limits.max_circuits,
                   "relay circuits open at once (a side waiting for the other counts)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}));
    app.add_option("--relay-rate", o.relay_rate, "bytes per second over all relay circuits (500k, 20M, 0 = unlimited)")
        ->capture_default_str()
        ->check(rate_problem);
    app.add_option("--relay-circuit-rate", o.relay_circuit_rate,
                   "bytes per second through one relay circuit, both ways together (0 = unlimited)")
        ->capture_default_str()
        ->check(rate_problem);
    app.add_option("--relay-circuit-bytes", o.relay_circuit_bytes,
                   "bytes one relay circuit carries, both ways, before it is closed (1Gi)")
        ->capture_default_str()
        ->check(size_problem);
    app.add_option("--relay-circuit-seconds", limits.circuit_seconds, "seconds one relay circuit stays open at most")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{86'400}));
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
    o.config.relay_listen.reset();
    if (!is_off(o.relay_listen)) o.config.relay_listen = *common::parse_endpoint(o.relay_listen);
    o.config.relay_limits.total_rate = *common::parse_rate(o.relay_rate);   // checked by their validators
    o.config.relay_limits.circuit_rate = *common::parse_rate(o.relay_circuit_rate);
    o.config.relay_limits.circuit_bytes = *common::parse_size(o.relay_circuit_bytes);
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
    reload.restart.note("relay-listen", options.relay_listen, fresh.relay_listen);
    reload.restart.note("relay-max-circuits", now.relay_limits.max_circuits, next.relay_limits.max_circuits);
    reload.restart.note("relay-rate", options.relay_rate, fresh.relay_rate);
    reload.restart.note("relay-circuit-rate", options.relay_circuit_rate, fresh.relay_circuit_rate);
    reload.restart.note("relay-circuit-bytes", options.relay_circuit_bytes, fresh.relay_circuit_bytes);
    reload.restart.note("relay-circuit-seconds", now.relay_limits.circuit_seconds, next.relay_limits.circuit_seconds);
}

// What the relay's thread reported: circuits joined become `relayed` events
// (docs/protocol.md §9), the rest goes to the log.
void record_relay_notices(tracker::State& state) {
    for (const auto& n : state.relay->take_notices()) {
        const std::string who = n.fetcher.empty() ? std::string("a peer") : n.fetcher + " from " + n.holder;
        switch (n.kind) {
        case tracker::RelayNotice::Kind::opened:
            state.events.record("relayed", n.fetcher, {}, "from " + n.holder + " through the relay, " + n.detail);
            break;
        case tracker::RelayNotice::Kind::closed: state.log.info("relay: " + who + ": " + n.detail); break;
        case tracker::RelayNotice::Kind::refused: state.log.info("relay refused " + who + ": " + n.detail); break;
        }
    }
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

    // The relay: its own thread and loop. Its notices are logged (and its
    // circuits recorded as events) here, on the tracker's loop.
    std::optional<tracker::RelayServer> relay;
    common::Timer relay_notices(loop.get());
    if (const auto& at = options.config.relay_listen) {
        relay.emplace(options.config.relay_limits);
        if (auto ok = relay->start(*at); !ok) {
            log.error("--relay-listen: " + ok.error().message);
            return 1;
        }
        state.relay = &*relay;
        log.info("relay on " + common::to_string({at->host, relay->port()}) + " (at most " +
                 std::to_string(options.config.relay_limits.max_circuits) + " circuits, " +
                 common::format_rate(options.config.relay_limits.circuit_rate) + " each, " +
                 common::format_rate(options.config.relay_limits.total_rate) + " in all)");
        relay_notices.get()->data = &state;
        uv_timer_start(
            relay_notices.get(),
            [](uv_timer_t* t) { record_relay_notices(*static_cast<tracker::State*>(t->data)); },
            tracker::kRelayNoticeMs, tracker::kRelayNoticeMs);
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
        if (relay) relay->stop();
        relay_notices.close();
        loop.stop();
    };
    common::ServiceSignals signals(loop.get(), log, common::config_file_of(argc, argv, kDefaultConfig).path,
                                   std::move(handlers));
    signals.start();
    loop.run();
    return 0;
}
