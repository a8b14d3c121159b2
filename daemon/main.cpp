// daemon/main.cpp — peerd: parses the command line and config file, starts
// the peer engine and the control socket on one libuv loop, tells systemd when
// it is ready, re-reads the config file on SIGHUP (upload slots, rate limits,
// log level) and stops cleanly on SIGTERM/SIGINT (every queued state write
// committed).
#include <arpa/inet.h>
#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/paths.hpp"
#include "common/rate.hpp"
#include "common/service.hpp"
#include "common/uv.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/control_server.hpp"
#include "daemon/peer.hpp"
#include "proto/http_request.hpp"
#include "proto/names.hpp"

namespace {

using namespace peershare;

constexpr const char* kAbout =
    "peerd — the peershare peer daemon: publishes your files and fetches others'";

struct Options {
    std::string tracker = "127.0.0.1:9999";
    std::string name = common::host_name();
    std::string listen = "0.0.0.0:7070";
    std::string advertise;
    std::string socket = common::default_peerd_socket();
    std::string state_dir = common::default_state_dir();
    unsigned workers = 4;
    unsigned max_active_fetches = 4;
    unsigned max_sources = 0;
    std::size_t max_uploads = 64;
    std::size_t max_connections = 0;      // 0: peerd::connection_cap of the descriptor limit
    std::size_t connection_cap = 0;       // not an option: that cap, set once at start (resolve_connections)
    std::uint32_t request_timeout = proto::kDefaultRequestTimeoutS;
    std::string max_upload_rate = "0";
    std::string max_download_rate = "0";
    std::string fetch_memory = "256Mi";
    std::string metrics_listen = "off";   // or an ADDRESS:PORT for GET /metrics
    bool share_fetched = true;
    std::uint32_t holder_deadline = 30;   // seconds (RequestDeadlines)
    std::string log_level = "info";
};

// CLI11 validators: an empty string means the value is fine.
std::string name_problem(const std::string& v) { return proto::check_name(v).value_or(""); }
std::string host_problem(const std::string& v) {
    if (auto why = proto::check_host(v)) return *why;
    // "10.0.0.5:7070" is an address and a port, not a host; only an IPv6
    // literal has colons of its own.
    if (in6_addr a{}; v.find(':') != std::string::npos && ::inet_pton(AF_INET6, v.c_str(), &a) != 1) {
        return "'" + v + "' is not an address or host name: give it without a port (peers use the port of --listen)";
    }
    return common::refused_host(v).value_or("");   // nobody could fetch from there
}
std::string tracker_problem(const std::string& v) {
    auto endpoint = common::parse_endpoint(v, /*allow_names=*/true);
    return endpoint ? std::string() : endpoint.error().message;
}
std::string listen_problem(const std::string& v) {
    auto endpoint = common::parse_endpoint(v);
    return endpoint ? std::string() : endpoint.error().message;
}
std::string memory_problem(const std::string& v) {
    const auto bytes = common::parse_size(v);
    if (!bytes) return bytes.error().message;
    if (*bytes < peerd::kMinFetchMemory) return "at least 16Mi (one piece of the largest size)";
    return {};
}
// "off" (or "" on the command line: CLI11 reads `key = ""` in a file as no value) turns it off.
bool is_off(const std::string& v) { return v.empty() || v == "off"; }
std::string optional_listen_problem(const std::string& v) { return is_off(v) ? std::string() : listen_problem(v); }
std::string rate_problem(const std::string& v) {
    auto rate = common::parse_rate(v);
    return rate ? std::string() : rate.error().message;
}

void add_options(CLI::App& app, Options& o) {
    app.add_option("--tracker", o.tracker, "the tracker's HOST:PORT")
        ->capture_default_str()
        ->check(tracker_problem);
    // No captured default: it is this machine's name, which a man page must not freeze.
    app.add_option("--name", o.name, "this peer's name at the tracker (default: the host name)")
        ->check(name_problem);
    app.add_option("--listen", o.listen,
                   "ADDRESS:PORT of the upload server (HTTP); port 0 picks one")
        ->capture_default_str()
        ->check(listen_problem);
    app.add_option("--advertise", o.advertise,
                   "address other peers should use instead of the one the tracker sees; "
                   "only a tracker run with --trust-advertise gives it out")
        ->check(host_problem);
    app.add_option("--socket", o.socket, "control socket for peerctl (env PEERD_SOCKET)")
        ->capture_default_str();
    app.add_option("--state-dir", o.state_dir, "where state.db (peer key, publications, transfers) is kept")
        ->capture_default_str();
    app.add_option("--workers", o.workers, "worker threads for hashing and file I/O")
        ->capture_default_str()
        ->check(CLI::Range(1u, 128u));
    app.add_option("--max-active-fetches", o.max_active_fetches,
                   "transfers downloading at once; more wait in the queue")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1000u));
    app.add_option("--max-sources", o.max_sources, "holders one transfer downloads from at once; 0 = all")
        ->capture_default_str()
        ->check(CLI::Range(0u, 1024u));
    app.add_option("--max-uploads", o.max_uploads, "uploads at once; more get 503 Busy")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
    app.add_option("--max-connections", o.max_connections,
                   "upload connections open at once (idle keep-alives too); one more is closed at once. "
                   "0 = from the descriptor limit at start: (RLIMIT_NOFILE - 256) / 3, which also caps "
                   "a higher value, so the control socket always has descriptors")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{0}, std::size_t{10'000'000}));
    app.add_option("--request-timeout", o.request_timeout,
                   "seconds a client has to send a whole request (HTTP, or peerctl's on the control "
                   "socket) from when it is awaited, and to read each 64 KiB of a file it downloads")
        ->capture_default_str()
        ->check(CLI::Range(1u, 3600u));
    app.add_option("--max-upload-rate", o.max_upload_rate,
                   "for all uploads together: bytes/s with k, M, G (x1000) or Ki, Mi, Gi "
                   "(x1024), e.g. 500k, 20M, 1G, or bits/s: 20Mbit; 0 = unlimited")
        ->type_name("RATE")
        ->capture_default_str()
        ->check(rate_problem);
    app.add_option("--max-download-rate", o.max_download_rate,
                   "for all downloads together, in the same units; `peerctl limit` changes "
                   "both until the next reload")
        ->type_name("RATE")
        ->capture_default_str()
        ->check(rate_problem);
    app.add_option("--fetch-memory", o.fetch_memory,
                   "bytes of piece buffers for all fetches together, e.g. 256Mi or 1Gi (at least 16Mi)")
        ->capture_default_str()
        ->check(memory_problem);
    app.add_option("--metrics-listen", o.metrics_listen,
                   "ADDRESS:PORT for Prometheus' GET /metrics (docs/metrics.md), or off")
        ->capture_default_str()
        ->check(optional_listen_problem);
    app.add_option("--share-fetched", o.share_fetched,
                   "publish each fetched file under its name once it is complete, as its other holders do "
                   "(true or false); `peerctl fetch --no-share` opts one fetch out")
        ->capture_default_str();
    app.add_option("--holder-deadline", o.holder_deadline,
                   "seconds a holder has to send a piece list, and to send a piece on top of 1 s per 8 KiB "
                   "of it (at least 64 kbit/s), however many bytes it trickles; a late piece list drops the "
                   "holder, a late piece goes to other holders and counts a strike (3 drop it)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 3600u));
    common::add_log_level_option(app, o.log_level);
    // A missing default file is fine; a missing file named on the command line is an error.
    app.set_config("--config", common::default_peerd_config(),
                   "TOML file of these options (key = value); SIGHUP re-reads it");
}

// Reads the command line and the config file into o. Null when o is ready;
// else the exit code, with `error` saying what is wrong (empty after --help).
std::optional<int> read_options(int argc, char** argv, Options& o, std::string& error) {
    if (auto code = common::read_service_options(argc, argv, kAbout, add_options, o, error)) return code;
    // The default, made from the host name, has not met the validator.
    if (auto why = proto::check_name(o.name)) {
        error = "--name: " + *why;
        return 2;
    }
    return std::nullopt;
}

// Sets o.connection_cap from --max-connections and the soft descriptor limit
// in force (`fd_limit`): the option, but never more than
// peerd::connection_cap(fd_limit), which also stands in for 0.
void resolve_connections(Options& o, std::uint64_t fd_limit, const common::Log& log) {
    const auto cap = peerd::connection_cap(fd_limit);
    o.connection_cap = o.max_connections == 0 ? cap : std::min(o.max_connections, cap);
    const auto why = "RLIMIT_NOFILE " + std::to_string(fd_limit) + ", " +
                     std::to_string(peerd::reserved_descriptors(fd_limit)) + " kept for the rest of peerd";
    if (o.max_connections > cap) {
        log.warning("--max-connections " + std::to_string(o.max_connections) + " lowered to " +
                    std::to_string(cap) + ": each upload connection may hold " +
                    std::to_string(peerd::kDescriptorsPerConnection) + " descriptors (" + why + ")");
    } else {
        log.debug("upload connections: at most " + std::to_string(o.connection_cap) + " (" + why + ")");
    }
}

// Turns checked options into a PeerConfig (o.connection_cap resolved).
peerd::PeerConfig make_config(const Options& o) {
    peerd::PeerConfig c;
    c.name = o.name;
    c.tracker = *common::parse_endpoint(o.tracker, /*allow_names=*/true);   // validated
    c.listen = *common::parse_endpoint(o.listen);
    c.advertise = o.advertise;
    c.state_dir = o.state_dir;
    c.workers = o.workers;
    c.max_active_fetches = o.max_active_fetches;
    c.max_sources = o.max_sources;
    c.uploads = {o.max_uploads, *common::parse_rate(o.max_upload_rate), std::uint64_t{o.request_timeout} * 1000,
                 o.connection_cap};
    c.download_rate = *common::parse_rate(o.max_download_rate);
    c.fetch_memory = *common::parse_size(o.fetch_memory);   // validated
    c.share_fetched = o.share_fetched;
    c.deadlines.list_ms = c.deadlines.piece_floor_ms = std::uint64_t{o.holder_deadline} * 1000;
    return c;
}

// Notes a rate option that a reload changes: its text in the file changed, or
// `peerctl limit` set another rate since (the file wins again on a reload).
bool note_rate(common::Changes& changed, std::string_view key, const std::string& before,
               std::uint64_t running, const std::string& after) {
    if (before != after) return changed.note(key, before, after);
    if (running == *common::parse_rate(after)) return false;
    return changed.note(key, common::format_rate(running) + " (set by peerctl)", after);
}

// Applies what can change without a restart, noting it on `reload` with what
// needs a restart.
void apply(common::Reload& reload, Options& now, const Options& fresh, peerd::Peer& peer) {
    reload.log_level(now.log_level, fresh.log_level);
    auto& changed = reload.changed;
    const auto running = peer.limits();
    bool uploads_changed = changed.note("max-uploads", now.max_uploads, fresh.max_uploads);
    uploads_changed |= note_rate(changed, "max-upload-rate", now.max_upload_rate,
                                 running.upload_rate, fresh.max_upload_rate);
    const bool download_changed = note_rate(changed, "max-download-rate", now.max_download_rate,
                                            running.download_rate, fresh.max_download_rate);
    now.max_uploads = fresh.max_uploads;
    now.max_upload_rate = fresh.max_upload_rate;
    now.max_download_rate = fresh.max_download_rate;
    const auto config = make_config(now);
    if (uploads_changed) peer.set_upload_limits(config.uploads);
    if (download_changed) peer.set_download_rate(config.download_rate);
    if (changed.note("fetch-memory", now.fetch_memory, fresh.fetch_memory)) {
        now.fetch_memory = fresh.fetch_memory;
        peer.set_fetch_memory(make_config(now).fetch_memory);
    }
    auto& restart = reload.restart;
    restart.note("tracker", now.tracker, fresh.tracker);
    restart.note("name", now.name, fresh.name);
    restart.note("listen", now.listen, fresh.listen);
    restart.note("advertise", now.advertise, fresh.advertise);
    restart.note("socket", now.socket, fresh.socket);
    restart.note("state-dir", now.state_dir, fresh.state_dir);
    restart.note("workers", now.workers, fresh.workers);
    restart.note("max-active-fetches", now.max_active_fetches, fresh.max_active_fetches);
    restart.note("max-sources", now.max_sources, fresh.max_sources);
    restart.note("metrics-listen", now.metrics_listen, fresh.metrics_listen);
    restart.note("max-connections", now.max_connections, fresh.max_connections);
    restart.note("request-timeout", now.request_timeout, fresh.request_timeout);
    restart.note("holder-deadline", now.holder_deadline, fresh.holder_deadline);
    const auto yes_no = [](bool b) { return std::string(b ? "true" : "false"); };
    restart.note("share-fetched", yes_no(now.share_fetched), yes_no(fresh.share_fetched));
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    std::string error;
    if (auto code = read_options(argc, argv, options, error)) {
        // Through the log: at err and without the program's name in the
        // journal (the identifier says it), as a failed reload is.
        if (!error.empty()) common::Log("peerd").error(error);
        return *code;
    }
    // The pool is sized once, before the loop first uses it.
    setenv("UV_THREADPOOL_SIZE", std::to_string(options.workers).c_str(), 1);
    std::signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    common::Log log("peerd", common::parse_log_level(options.log_level));
    const auto fd_limit = common::raise_fd_limit();
    log.debug("open descriptors: up to " + std::to_string(fd_limit) + " (RLIMIT_NOFILE)");
    resolve_connections(options, fd_limit, log);
    const auto config = make_config(options);
    {
        common::Loop loop;
        peerd::Peer peer(loop.get(), log, config);
        peerd::ControlServer control(loop.get(), log, peer);
        if (auto ok = peer.start(); !ok) {
            log.error(ok.error().message);
            return 1;
        }
        if (auto ok = control.start(options.socket, config.uploads.request_timeout_ms); !ok) {
            log.error(ok.error().message);
            return 1;
        }
        peerd::MetricsServer metrics(loop.get(), log,
                                     [&peer] { return peerd::render_peer_metrics(peer.metrics(), peer.gauges()); });
        if (!is_off(options.metrics_listen)) {
            const auto at = *common::parse_endpoint(options.metrics_listen);   // validated
            if (auto ok = metrics.start(at); !ok) {
                log.error("--metrics-listen: " + ok.error().message);
                return 1;
            }
            log.info("metrics on http://" + common::to_string({at.host, metrics.port()}) + "/metrics");
            if (!proto::loopback_host(at.host)) {
                log.warning("--metrics-listen " + options.metrics_listen +
                            " is not a loopback address: anyone who reaches it reads this peer's metrics, "
                            "which have no login");
            }
        }
        log.info("peer " + config.name + ": uploads on " +
                 common::to_string({config.listen.host, peer.upload_port()}) + " (at most " +
                 std::to_string(config.uploads.max_connections) + " connections), control socket " +
                 options.socket + ", tracker " + common::to_string(config.tracker));

        common::ServiceSignals::Handlers handlers;
        handlers.reload = [&](common::Reload& reload) -> std::optional<std::string> {
            Options fresh;
            std::string problem;
            if (read_options(argc, argv, fresh, problem)) return problem;
            apply(reload, options, fresh, peer);
            return std::nullopt;
        };
        // A clean stop keeps every verified piece: running transfers make
        // theirs durable first (at most 10 s; systemd waits 90 s by default).
        bool stopping = false;
        handlers.stop = [&] {
            if (std::exchange(stopping, true)) return;
            peer.drain(10'000, [&] {
                metrics.stop();
                control.stop();
                peer.stop();
                loop.stop();
            });
        };
        common::ServiceSignals signals(
            loop.get(), log, common::config_file_of(argc, argv, common::default_peerd_config()).path,
            std::move(handlers));
        signals.start();
        loop.run();
    }
    curl_global_cleanup();
    return 0;
}
