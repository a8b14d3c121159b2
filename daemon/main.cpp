// daemon/main.cpp — peerd: parses the command line (and config file), starts
// the peer engine and the control socket on one libuv loop, tells systemd when
// it is ready, and stops cleanly on SIGTERM/SIGINT (state flushed).
#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "common/log.hpp"
#include "common/paths.hpp"
#include "common/uv.hpp"
#include "daemon/control_server.hpp"
#include "daemon/peer.hpp"
#include "proto/names.hpp"

namespace {

using namespace peershare;

struct Options {
    std::string tracker = "127.0.0.1:9999";
    std::string name = common::host_name();
    std::string listen = "0.0.0.0:7070";
    std::string advertise;
    std::string socket = common::default_peerd_socket();
    std::string state_dir = common::default_state_dir();
    unsigned workers = 4;
    std::size_t max_uploads = 64;
    std::string max_upload_rate = "0";
    std::string log_level = "info";
};

void add_options(CLI::App& app, Options& o) {
    app.add_option("--tracker", o.tracker, "the tracker's HOST:PORT")->capture_default_str();
    app.add_option("--name", o.name, "this peer's name at the tracker (default: the host name)")
        ->capture_default_str();
    app.add_option("--listen", o.listen, "ADDRESS:PORT of the upload server (HTTP); port 0 picks one")
        ->capture_default_str();
    app.add_option("--advertise", o.advertise, "address other peers should use instead of the one the tracker sees");
    app.add_option("--socket", o.socket, "control socket for peerctl (env PEERD_SOCKET)")->capture_default_str();
    app.add_option("--state-dir", o.state_dir, "where publications and the peer key are kept")
        ->capture_default_str();
    app.add_option("--workers", o.workers, "worker threads for hashing and file I/O")
        ->capture_default_str()
        ->check(CLI::Range(1u, 128u));
    app.add_option("--max-uploads", o.max_uploads, "uploads at once; more get 503 Busy")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
    app.add_option("--max-upload-rate", o.max_upload_rate, "bytes/s for all uploads, e.g. 10M; 0 = unlimited")
        ->capture_default_str();
    app.add_option("--log-level", o.log_level, "error, warning, info or debug")
        ->capture_default_str()
        ->check(CLI::IsMember({"error", "warning", "info", "debug"}));
    // A missing default file is fine; a missing file named on the command line is an error.
    app.set_config("--config", common::default_peerd_config(), "TOML file of these options");
}

common::LogLevel parse_level(const std::string& level) {
    if (level == "error") return common::LogLevel::error;
    if (level == "warning") return common::LogLevel::warning;
    if (level == "debug") return common::LogLevel::debug;
    return common::LogLevel::info;
}

// Turns options into a PeerConfig, or says which option is wrong.
proto::Result<peerd::PeerConfig> make_config(const Options& o) {
    using proto::Error;
    using proto::ErrorCode;
    peerd::PeerConfig c;
    if (auto why = proto::check_name(o.name)) return Error{ErrorCode::bad_request, "--name: " + *why};
    c.name = o.name;
    auto tracker = common::parse_endpoint(o.tracker, /*allow_names=*/true);
    if (!tracker) return Error{ErrorCode::bad_request, "--tracker " + tracker.error().message};
    c.tracker = *tracker;
    auto listen = common::parse_endpoint(o.listen);
    if (!listen) return Error{ErrorCode::bad_request, "--listen " + listen.error().message};
    c.listen = *listen;
    if (!o.advertise.empty()) {
        if (auto why = proto::check_host(o.advertise)) return Error{ErrorCode::bad_request, "--advertise: " + *why};
    }
    c.advertise = o.advertise;
    c.state_dir = o.state_dir;
    c.workers = o.workers;
    auto rate = common::parse_rate(o.max_upload_rate);
    if (!rate) return Error{ErrorCode::bad_request, "--max-upload-rate: expected a number like 500K, 10M or 0"};
    c.uploads = {o.max_uploads, *rate};
    return c;
}

struct Running {
    peerd::ControlServer& control;
    peerd::Peer& peer;
    common::Loop& loop;
    const common::Log& log;
};

void on_stop_signal(uv_signal_t* handle, int signum) {
    auto* r = static_cast<Running*>(handle->data);
    r->log.info(std::string("stopping on ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    sd_notify(0, "STOPPING=1");
    r->control.stop();
    r->peer.stop();
    r->loop.stop();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"peerd — the peershare peer daemon: publishes your files and fetches others'"};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    Options options;
    add_options(app, options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    auto config = make_config(options);
    if (!config) {
        std::cerr << "peerd: " << config.error().message << "\n";
        return 2;
    }
    // The pool is sized once, before the loop first uses it.
    setenv("UV_THREADPOOL_SIZE", std::to_string(options.workers).c_str(), 1);
    std::signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    common::Log log("peerd", parse_level(options.log_level));
    int rc = 0;
    {
        common::Loop loop;
        peerd::Peer peer(loop.get(), log, *config);
        peerd::ControlServer control(loop.get(), log, peer);
        if (auto ok = peer.start(); !ok) {
            log.error(ok.error().message);
            return 1;
        }
        if (auto ok = control.start(options.socket); !ok) {
            log.error(ok.error().message);
            return 1;
        }
        log.info("peer " + config->name + ": uploads on " +
                 common::to_string({config->listen.host, peer.upload_port()}) + ", control socket " +
                 options.socket + ", tracker " + common::to_string(config->tracker));
        sd_notify(0, "READY=1");

        Running running{control, peer, loop, log};
        common::Signal sigterm(loop.get());
        common::Signal sigint(loop.get());
        sigterm.get()->data = &running;
        sigint.get()->data = &running;
        uv_signal_start(sigterm.get(), on_stop_signal, SIGTERM);
        uv_signal_start(sigint.get(), on_stop_signal, SIGINT);
        rc = loop.run() == 0 ? 0 : 0;
    }
    curl_global_cleanup();
    return rc;
}
