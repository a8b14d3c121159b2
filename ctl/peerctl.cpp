// ctl/peerctl.cpp — peerctl: a user's remote for their peerd, over its control
// socket. One function per subcommand; main only assembles them.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

#include "common/paths.hpp"
#include "common/rate.hpp"
#include "ctl/output.hpp"
#include "ctl/progress.hpp"
#include "ctl/session.hpp"
#include "ctl/transfers_view.hpp"
#include "proto/control.hpp"
#include "proto/limits.hpp"
#include "proto/names.hpp"
#include "proto/reach.hpp"
#include "proto/transfers.hpp"

namespace {

using namespace peershare;
using ctl::Failure;
using nlohmann::json;
namespace fs = std::filesystem;

struct Globals {
    std::string socket = common::default_peerd_socket();
    bool json = false;
};

ctl::Session connect(const Globals& g) {
    return ctl::Session(g.socket,
                        "peerd is not running (no socket at " + g.socket +
                            "): start it with `systemctl --user start peerd` or `peerd &`");
}

using ctl::print_json;

using ctl::printable;

// Paths cross the control socket as JSON strings, which hold UTF-8 only: a
// path that is not UTF-8 is refused here, before anything is sent, rather
// than arriving changed (docs/protocol.md, "Paths").
std::string checked_path(const std::string& path, std::string_view what) {
    if (!proto::is_valid_utf8(path)) {
        throw Failure{ctl::kUsage, std::string(what) + " '" + printable(path) +
                                       "' is not valid UTF-8; peerd takes UTF-8 paths only (rename it, e.g. with convmv)"};
    }
    return path;
}

std::string checked_name(const std::string& name) {
    if (auto why = proto::check_name(name)) {
        throw Failure{ctl::kUsage, "bad name '" + printable(name) + "': " + *why};
    }
    return name;
}

void add_publish(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("publish", "hash a local file and announce it under NAME");
    auto path = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    cmd->add_option("LOCAL_PATH", *path, "the file to share")->required();
    auto* name_option = cmd->add_option("NAME", *name, "the name others fetch it by (default: the file's base name)");
    cmd->callback([&g, path, name, name_option] {
        std::error_code ec;
        const fs::path local = fs::absolute(*path, ec);
        checked_path(local.string(), "path");   // the working directory's part too
        if (ec || !fs::is_regular_file(local, ec)) {
            throw Failure{ctl::kFailed, *path + " is not a readable regular file"};   // escaped where printed
        }
        // An empty NAME given is a mistake to say, not a request for the default.
        const auto published_name =
            checked_name(name_option->count() == 0 ? local.filename().string() : *name);
        auto s = connect(g);
        auto reply = s.request<proto::Published>(proto::PublishFile{local.string(), published_name},
                                                 common::Millis{3'600'000});
        if (g.json) return print_json({{"name", reply.file.name}, {"size", reply.file.size}, {"id", reply.file.id},
                                       {"path", reply.path}});
        std::cout << "published " << reply.file.name << " (" << ctl::human_size(reply.file.size) << ", id "
                  << ctl::short_id(reply.file.id) << ") from " << printable(reply.path) << "\n";
    });
}

void add_unpublish(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("unpublish", "stop sharing NAME");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "a published name")->required();
    cmd->callback([&g, name] {
        auto s = connect(g);
        s.request<proto::Ok>(proto::UnpublishFile{checked_name(*name)});
        if (g.json) return print_json({{"name", *name}, {"unpublished", true}});
        std::cout << "unpublished " << *name << "\n";
    });
}

void add_list(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("list", "what this peer publishes");
    cmd->footer("ORIGIN says how each publication came to be: published (peerctl publish) or fetched (shared "
                "after a fetch; see `peerctl fetch --no-share`). `peerctl unpublish NAME` stops either.");
    cmd->callback([&g] {
        auto s = connect(g);
        auto reply = s.request<proto::Publications>(proto::ListFiles{});
        if (g.json) {
            return print_json({{"files", proto::list_json(reply.files)}, {"truncated", reply.truncated}});
        }
        ctl::Table t({"NAME", "SIZE", "ID", "ORIGIN", "STATE", "PATH"});
        for (const auto& f : reply.files) {
            t.add({f.name, ctl::human_size(f.size), ctl::short_id(f.id), f.origin,
                   f.state == "ok" ? "shared" : "CHANGED: publish again", f.path});
        }
        std::cout << (t.empty() ? "nothing published: try `peerctl publish FILE`\n" : t.render());
        if (reply.truncated) std::cout << "(more not shown: the list is longer than one reply holds)\n";
    });
}

void add_search(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("search", "names the tracker knows, with sizes and holders");
    auto text = std::make_shared<std::string>();
    cmd->add_option("TEXT", *text, "part of a name (default: everything)");
    cmd->callback([&g, text] {
        if (text->size() > proto::kMaxSearchText) {   // said here, as a bad name is: not peerd's field words
            throw Failure{ctl::kUsage, "search text is at most " + std::to_string(proto::kMaxSearchText) +
                                           " bytes (this one has " + std::to_string(text->size()) + ")"};
        }
        auto s = connect(g);
        ctl::print_index(s.request<proto::IndexReply>(proto::Search{*text}), g.json, "nothing found\n");
    });
}

// "yes (answered at 1.2.3.4:5000)", "no (connection refused at ...)", "unknown (checking)".
std::string reach_words(const std::optional<bool>& reachable, const std::string& reason) {
    const std::string word = reachable ? (*reachable ? "yes" : "no") : "unknown";
    return word + (reason.empty() ? "" : " (" + printable(reason) + ")");
}

// What makes an unreachable peer reachable, in one line.
constexpr std::string_view kReachHint =
    "other peers cannot download from this one: open the upload port to them (firewall, router port "
    "forwarding), or run peerd --advertise with an address that reaches this machine";

void add_reach_check(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("reach-check",
                                   "have the tracker dial our upload port now: exit 0 reachable, 1 not");
    cmd->callback([&g] {
        auto s = connect(g);
        auto r = s.request<proto::Reachability>(proto::ReachCheck{}, common::Millis{proto::kReachDeadlineMs + 10'000});
        if (g.json) {
            print_json(r.to_json());
        } else {
            std::cout << "reachable: " << reach_words(r.reachable, r.reason) << "\n";
            if (!r.reachable) std::cout << kReachHint << "\n";
        }
        if (!r.reachable) throw Failure{ctl::kFailed, ""};
    });
}

void add_status(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("status", "name, tracker link, upload port, reachable (and why), transfers");
    cmd->callback([&g] {
        auto s = connect(g);
        auto st = s.request<proto::Status>(proto::GetStatus{});
        if (g.json) return print_json(st.to_json());
        std::cout << "name       " << st.name << "\n"
                  << "tracker    " << st.tracker << " — "
                  << (st.connected ? "connected" : "NOT connected: " + st.tracker_error) << "\n"
                  << "address    " << (st.address.empty() ? "(unknown until connected)" : st.address) << "\n"
                  << "port       " << st.port << " (HTTP uploads)\n"
                  << "reachable  " << reach_words(st.reachable, st.reach_reason) << "\n"
                  << "published  " << st.published << " files\n"
                  << "uploads    " << st.uploads << " active, " << ctl::human_size(st.uploaded)
                  << " served since start\n"
                  << "memory     " << ctl::human_size(st.fetch_memory_used) << " of "
                  << ctl::human_size(st.fetch_memory_limit) << " for piece buffers (--fetch-memory)\n";
        for (const auto& t : st.transfers) {
            std::cout << "transfer   " << t.name << " " << ctl::human_size(t.done) << " of "
                      << ctl::human_size(t.total) << " (see `peerctl transfers`)\n";
        }
    });
}

// Where a fetch of `name` goes: -o PATH (into it, if a directory), else ./NAME.
std::string destination(const std::string& output, const std::string& name) {
    std::error_code ec;
    fs::path out = output.empty() ? fs::path(name) : fs::path(output);
    if (!output.empty() && fs::is_directory(out, ec)) out /= name;
    return fs::absolute(out, ec).lexically_normal().string();
}

void add_fetch(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("fetch", "download NAME from the peers that have it");
    auto request = std::make_shared<proto::FetchFile>();
    auto output = std::make_shared<std::string>();
    auto quiet = std::make_shared<bool>(false);
    cmd->add_option("NAME", request->name, "the published name")->required();
    cmd->add_option("-o,--output", *output, "file or directory to save to (default: ./NAME)");
    cmd->add_option("--from", request->from, "fetch only from this peer");
    cmd->add_option("--id", request->id_prefix, "pick the content whose id starts with PREFIX");
    cmd->add_flag("--force", request->force, "overwrite an existing file");
    auto no_share = std::make_shared<bool>(false);
    cmd->add_flag("--no-share", *no_share,
                  "do not publish the file once fetched (peerd shares fetched files unless share-fetched = false)");
    cmd->add_flag("-q,--quiet", *quiet, "no progress bar");
    cmd->add_flag("--detach", request->detach,
                  "return once peerd has accepted the transfer (it goes on in peerd; see `peerctl watch`)");
    cmd->footer("The download is a transfer owned by peerd: it survives peerctl, and peerd resumes it after a "
                "restart. Ctrl-C pauses it (resume with `peerctl resume ID` or the same fetch again; discard "
                "with `peerctl cancel ID`). Fetching again to the same destination continues the transfer.");
    cmd->callback([&g, request, output, quiet, no_share] {
        checked_name(request->name);
        if (*no_share) request->share = false;
        request->output = checked_path(destination(*output, request->name), "destination");
        auto s = connect(g);
        ctl::FetchView view(g.json, *quiet);
        view.run(s, *request);
    });
}

// A transfer id from the command line: a positive whole number.
std::uint64_t transfer_id(const std::string& text) {
    std::size_t used = 0;
    std::uint64_t id = 0;
    try {
        id = std::stoull(text, &used);
    } catch (...) {
        used = 0;
    }
    if (used != text.size() || text.empty() || text.front() == '-' || id == 0) {
        throw Failure{ctl::kUsage, "bad transfer id '" + printable(text) + "': want a number from `peerctl transfers`"};
    }
    return id;
}

void add_transfers(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("transfers", "the downloads peerd owns: state, progress, rate, sources (each: direct, reverse or relay), ETA");
    cmd->footer("States: queued (waiting for a slot, --max-active-fetches), running, waiting (no live holder: "
                "peerd asks the tracker again and continues by itself), paused, failed (resume tries again), "
                "done (the record stays until `peerctl cancel ID`, which never removes a fetched file). "
                "Leftover partial files beside known destinations are listed below the table.");
    cmd->callback([&g] {
        auto s = connect(g);
        ctl::print_transfers(s.request<proto::TransferList>(proto::ListTransfers{}), g.json);
    });
}

void add_watch(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("watch", "follow one transfer (or all) with progress bars until it ends");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "a transfer id (default: every unfinished transfer)");
    cmd->callback([&g, id] {
        std::optional<std::uint64_t> which;
        if (!id->empty()) which = transfer_id(*id);
        auto s = connect(g);
        ctl::watch_transfers(s, which, g.json);
    });
}

// pause, resume and cancel: one transfer id each.
template <class Request>
void add_transfer_action(CLI::App& app, Globals& g, const char* verb, const char* help) {
    auto* cmd = app.add_subcommand(verb, help);
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "a transfer id from `peerctl transfers`")->required();
    cmd->callback([&g, id, verb] {
        const auto n = transfer_id(*id);
        auto s = connect(g);
        if constexpr (std::is_same_v<Request, proto::CancelTransfer>) {
            s.request<proto::Ok>(Request{n});
            if (g.json) return print_json({{"transfer", n}, {"cancelled", true}});
            std::cout << "cancelled transfer " << n << "\n";
        } else {
            auto t = s.request<proto::TransferInfo>(Request{n});
            if (g.json) return print_json(t.to_json());
            std::cout << verb << "d transfer " << n << " ("
                      << t.name << "): " << t.state << ", " << ctl::done_text(t.done, t.total) << "\n";
        }
    });
}

// A rate given on the command line, in bytes/s; a bad one ends peerctl with exit 2.
std::uint64_t checked_rate(const std::string& option, const std::string& text) {
    auto rate = common::parse_rate(text);
    if (!rate) throw Failure{ctl::kUsage, option + ": " + rate.error().message};
    return *rate;
}

void add_limit(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand(
        "limit",
        "show the rate limits, or change them until peerd re-reads its config file (SIGHUP, "
        "`systemctl --user reload peerd`), which sets them from the file again");
    auto up = std::make_shared<std::string>();
    auto down = std::make_shared<std::string>();
    const std::string units =
        "bytes/s with k, M, G (x1000) or Ki, Mi, Gi (x1024): 500k, 20M, 1G; or bits/s: 20Mbit; "
        "0 = unlimited";
    cmd->add_option("--up", *up, "all uploads together: " + units)->type_name("RATE");
    cmd->add_option("--down", *down, "all downloads together: " + units)->type_name("RATE");
    cmd->callback([&g, cmd, up, down] {
        proto::SetLimits change;
        if (cmd->count("--up") > 0) change.upload_rate = checked_rate("--up", *up);
        if (cmd->count("--down") > 0) change.download_rate = checked_rate("--down", *down);
        auto s = connect(g);
        const auto limits = change.upload_rate || change.download_rate
                                ? s.request<proto::Limits>(change)
                                : s.request<proto::Limits>(proto::GetLimits{});
        if (g.json) return print_json(limits.to_json());
        std::cout << "upload    " << common::format_rate(limits.upload_rate) << "\n"
                  << "download  " << common::format_rate(limits.download_rate) << "\n";
    });
}

}  // namespace

int main(int argc, char** argv) {
    // A daemon that hangs up while we write gets an error message from the
    // write (EPIPE), not a silent death by signal (exit 141, nothing printed).
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"peerctl — share files with peershare through your peerd"};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    app.require_subcommand(1);
    app.fallthrough();   // global options work after the subcommand too
    Globals g;
    app.add_option("--socket", g.socket, "peerd's control socket (env PEERD_SOCKET)")->capture_default_str();
    app.add_flag("--json", g.json, "print one JSON document on stdout");
    add_publish(app, g);
    add_unpublish(app, g);
    add_fetch(app, g);
    add_list(app, g);
    add_search(app, g);
    add_status(app, g);
    add_reach_check(app, g);
    add_transfers(app, g);
    add_watch(app, g);
    add_transfer_action<proto::PauseTransfer>(app, g, "pause", "pause a transfer, keeping every verified piece");
    add_transfer_action<proto::ResumeTransfer>(app, g, "resume", "continue a paused or failed transfer");
    add_transfer_action<proto::CancelTransfer>(app, g, "cancel",
                                               "stop a transfer and remove its partial file (a done one is only "
                                               "forgotten; its file stays)");
    add_limit(app, g);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ctl::kDone : ctl::kUsage;
    } catch (const Failure& f) {
        if (!f.message.empty()) std::cerr << "peerctl: " << printable(f.message) << "\n";
        return f.code;
    }
    return ctl::kDone;
}
