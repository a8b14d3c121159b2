// common/service.cpp — log levels, reload reports and the daemons' signals.
#include "common/service.hpp"

#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>

namespace peershare::common {

void add_log_level_option(CLI::App& app, std::string& level) {
    app.add_option("--log-level", level, "error, warning, info or debug")
        ->capture_default_str()
        ->check(CLI::IsMember({"error", "warning", "info", "debug"}));
}

LogLevel parse_log_level(const std::string& level) {
    if (level == "error") return LogLevel::error;
    if (level == "warning") return LogLevel::warning;
    if (level == "debug") return LogLevel::debug;
    return LogLevel::info;
}

std::optional<int> parse_service_options(int argc, const char* const* argv, const std::string& about,
                                         const DeclareOptions& declare,
                                         const DeclareOptions& declare_scratch, std::string& error) {
    CLI::App app{about};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    declare(app);
    return parse_command_line(app, argc, argv, declare_scratch, error);
}

void Reload::log_level(std::string& now, const std::string& fresh) {
    if (!changed.note("log-level", now, fresh)) return;
    level_ = &now;
    fresh_level_ = fresh;
}

void Reload::report(const std::string& file) {
    if (level_) {
        log_.set_level(std::max(parse_log_level(fresh_level_), parse_log_level(*level_)));
    }
    log_.info("reloaded " + file + ": " + changed.summary());
    if (!restart.empty()) {
        log_.warning("restart " + std::string(log_.program()) + " to apply: " + restart.summary());
    }
    if (level_) {
        *level_ = fresh_level_;
        log_.set_level(parse_log_level(fresh_level_));
    }
}

ServiceSignals::ServiceSignals(uv_loop_t* loop, Log& log, std::string config_file, Handlers handlers)
    : log_(log),
      config_file_(std::move(config_file)),
      handlers_(std::move(handlers)),
      sigterm_(loop),
      sigint_(loop),
      sighup_(loop) {
    for (auto* sig : {&sigterm_, &sigint_, &sighup_}) sig->get()->data = this;
}

void ServiceSignals::start() {
    uv_signal_start(sigterm_.get(), on_stop, SIGTERM);
    uv_signal_start(sigint_.get(), on_stop, SIGINT);
    uv_signal_start(sighup_.get(), on_reload, SIGHUP);
    sd_notify(0, "READY=1");
}

void ServiceSignals::on_reload(uv_signal_t* handle, int) {
    auto* self = static_cast<ServiceSignals*>(handle->data);
    if (!self) return;
    sd_notify(0, "RELOADING=1");
    Reload reload(self->log_);
    if (auto error = self->handlers_.reload(reload)) {
        self->log_.error("reload failed, keeping the running settings: " + *error);
    } else {
        reload.report(self->config_file_);
    }
    sd_notify(0, "READY=1");
}

void ServiceSignals::on_stop(uv_signal_t* handle, int signum) {
    auto* self = static_cast<ServiceSignals*>(handle->data);
    if (!self) return;
    self->log_.info(std::string("stopping on ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    sd_notify(0, "STOPPING=1");
    self->handlers_.stop();
}

std::uint64_t raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised{limit.rlim_max, limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    return limit.rlim_cur;
}

}  // namespace peershare::common
