// tests/fuzz/config.cpp — a daemon's config file (common/config.hpp) as
// bytes: check_config_text over a set of options of every kind the daemons
// declare (peerd's: endpoints, names, bounded numbers, rates, a choice). Invariant: the
// check promises that CLI11 reads a file it passed without skipping or
// mangling anything, so when it passes, CLI11's own TOML reader
// (App::parse_from_stream) accepts the same text and sets every key the file
// names. Seeds: tests/fuzz/corpus/config/, the config files of the suite and
// the package.
#include <CLI/CLI.hpp>
#include <set>
#include <sstream>
#include <string>

#include "common/config.hpp"
#include "common/net.hpp"
#include "common/rate.hpp"
#include "proto/names.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare;
using peershare::fuzz::as_text;

namespace {

// peerd's options (daemon/main.cpp) with checks of the same kinds, so the
// seeds (its shipped config file) reach the value checks.
struct Options {
    std::string tracker, name, listen, advertise, socket, state_dir, fetch_memory, log_level = "info";
    std::string max_upload_rate = "0", max_download_rate = "0";
    unsigned workers = 4, max_active_fetches = 4, max_sources = 0;
    std::size_t max_uploads = 64;
};

std::string endpoint_problem(const std::string& v, bool allow_names) {
    auto e = common::parse_endpoint(v, allow_names);
    return e ? std::string() : e.error().message;
}

void declare(CLI::App& app, Options& o) {
    app.add_option("--tracker", o.tracker)->check([](const std::string& v) { return endpoint_problem(v, true); });
    app.add_option("--name", o.name)->check([](const std::string& v) { return proto::check_name(v).value_or(""); });
    app.add_option("--listen", o.listen)->check([](const std::string& v) { return endpoint_problem(v, false); });
    app.add_option("--advertise", o.advertise)->check([](const std::string& v) {
        return proto::check_host(v).value_or("");
    });
    app.add_option("--socket", o.socket);
    app.add_option("--state-dir", o.state_dir);
    app.add_option("--workers", o.workers)->check(CLI::Range(1u, 128u));
    app.add_option("--max-active-fetches", o.max_active_fetches)->check(CLI::Range(1u, 1000u));
    app.add_option("--max-sources", o.max_sources)->check(CLI::Range(0u, 1024u));
    app.add_option("--max-uploads", o.max_uploads)->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
    for (auto [key, rate] : {std::pair{"--max-upload-rate", &o.max_upload_rate},
                             {"--max-download-rate", &o.max_download_rate}}) {
        app.add_option(key, *rate)->check([](const std::string& v) {
            auto r = common::parse_rate(v);
            return r ? std::string() : r.error().message;
        });
    }
    app.add_option("--fetch-memory", o.fetch_memory);
    app.add_option("--log-level", o.log_level)->check(CLI::IsMember({"error", "warning", "info", "debug"}));
    app.set_config("--config");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(as_text(data, size));
    std::istringstream in(text);
    Options scratch;
    const auto problem =
        common::check_config_text(in, "fuzz.conf", [&](CLI::App& app) { declare(app, scratch); });
    if (problem) {
        FUZZ_CHECK(problem->starts_with("fuzz.conf:"));
        return 0;
    }
    // Passed: CLI11 must take the same text without a complaint.
    CLI::App app;
    Options options;
    declare(app, options);
    app.allow_config_extras(CLI::config_extras_mode::error);
    std::istringstream again(text);
    try {
        app.parse_from_stream(again);
    } catch (const CLI::Error& e) {
        std::fprintf(stderr, "check_config_text passed a file CLI11 refuses: %s\n", e.what());
        FUZZ_CHECK(false);
    }
    // Every key a line sets was read, none skipped.
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#' || line[first] == ';') continue;
        std::string key = line.substr(first, line.find('=') - first);
        key.erase(key.find_last_not_of(" \t\r") + 1);
        if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'')) key = key.substr(1, key.size() - 2);
        const CLI::Option* opt = app.get_option_no_throw("--" + key);
        FUZZ_CHECK(opt != nullptr);
        if (opt->count() == 0) {
            std::fprintf(stderr, "CLI11 skipped '%s'\n", key.c_str());
            FUZZ_CHECK(false);
        }
    }
    return 0;
}
