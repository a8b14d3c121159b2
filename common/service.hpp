// common/service.hpp — what trackerd and peerd share as services
// (docs/design.md, "Services and packaging"): reading their command line and
// config file, the --log-level option, and their signals. SIGHUP re-reads the
// config file (RELOADING=1 … READY=1 to systemd) and logs one line for what
// changed and one for what needs a restart; SIGTERM and SIGINT stop
// (STOPPING=1). Owned by the loop thread: the handlers run on it, between
// callbacks.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/uv.hpp"

namespace peershare::common {

// Declares --log-level (error, warning, info or debug), bound to `level`.
void add_log_level_option(CLI::App& app, std::string& level);
LogLevel parse_log_level(const std::string& level);   // one add_log_level_option accepts

// A daemon's command line and config file (parse_command_line, with --version
// and the text `about` for --help), read into the options `declare` binds;
// `declare_scratch` binds the same options to throwaway storage.
std::optional<int> parse_service_options(int argc, const char* const* argv, const std::string& about,
                                         const DeclareOptions& declare,
                                         const DeclareOptions& declare_scratch, std::string& error);

// The same for an Options type whose add(app, options) declares them all.
// Null when `options` is ready; else the exit code, with `error` saying what
// is wrong (empty after --help or --version).
template <class Options>
std::optional<int> read_service_options(int argc, const char* const* argv, const std::string& about,
                                        void (*add)(CLI::App&, Options&), Options& options,
                                        std::string& error) {
    Options scratch;
    return parse_service_options(
        argc, argv, about, [&](CLI::App& app) { add(app, options); },
        [&](CLI::App& app) { add(app, scratch); }, error);
}

// What one reload changed: what took effect at once, and what needs a restart.
class Reload {
public:
    explicit Reload(Log& log) : log_(log) {}

    // Notes a log-level change first, so that it leads the line; the new
    // level takes effect in report().
    void log_level(std::string& now, const std::string& fresh);
    Changes changed;   // applied by the caller already
    Changes restart;   // kept as they are until the program restarts

    // "reloaded FILE: …" (shown under the old level or the new one, whichever
    // says more), and "restart PROGRAM to apply: …" if anything needs it.
    void report(const std::string& file);

private:
    Log& log_;
    std::string* level_ = nullptr;   // the running level, when it changes
    std::string fresh_level_;
};

class ServiceSignals {
public:
    struct Handlers {
        // Re-reads the configuration and applies it, noting what changed on
        // the Reload; else the error that kept the running settings.
        std::function<std::optional<std::string>(Reload&)> reload;
        std::function<void()> stop;   // close the servers, stop the loop
    };

    // `config_file` is the file a reload reads, for its log line.
    ServiceSignals(uv_loop_t* loop, Log& log, std::string config_file, Handlers handlers);
    ServiceSignals(const ServiceSignals&) = delete;
    ServiceSignals& operator=(const ServiceSignals&) = delete;

    // Installs the handlers, then tells systemd READY=1: it may signal as
    // soon as it reads that.
    void start();

private:
    static void on_reload(uv_signal_t* handle, int signum);
    static void on_stop(uv_signal_t* handle, int signum);

    Log& log_;
    std::string config_file_;
    Handlers handlers_;
    Signal sigterm_;
    Signal sigint_;
    Signal sighup_;
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit (getrlimit(2),
// setrlimit(2)) and returns the soft limit now in force. A service's soft
// limit is 1024 unless its unit says otherwise, however high the hard limit
// (systemd.exec(5), LimitNOFILE=); each upload connection may cost peerd
// three descriptors (peerd::connection_cap), so the soft limit, not the load,
// would refuse clients first.
std::uint64_t raise_fd_limit();

}  // namespace peershare::common
