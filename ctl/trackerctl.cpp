// ctl/trackerctl.cpp — trackerctl: an operator's view of the tracker over its
// admin socket. One function per subcommand; main only assembles them.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ctl/output.hpp"
#include "ctl/session.hpp"
#include "proto/documents.hpp"

namespace {

using namespace peershare;
using ctl::Failure;

struct Globals {
    std::string socket = "/run/tracker/tracker.sock";
    bool json = false;
};

constexpr const char* kHowToStart =
    "is trackerd running? start it with `systemctl start tracker`, or point "
    "--socket / TRACKER_SOCKET at its admin socket";

ctl::Session connect(const Globals& g) { return ctl::Session(g.socket, kHowToStart); }

using ctl::print_json;

void add_discover(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("discover", "list the files a peer has published");
    auto host = std::make_shared<std::string>();
    cmd->add_option("HOST", *host, "peer name")->required();
    cmd->callback([&g, host] {
        auto s = connect(g);
        auto files = s.request<proto::Files>(proto::Discover{*host});
        if (g.json) return print_json(proto::files_document(files));
        if (files.files.empty()) {
            std::cout << *host << " publishes nothing\n";
            return;
        }
        ctl::Table t({"NAME", "SIZE", "ID", "HOLDS", "PUBLISHED"});
        for (const auto& f : files.files) {
            t.add({f.name, ctl::human_size(f.size), ctl::short_id(f.id), ctl::holds(f),
                   ctl::local_time(f.published_at)});
        }
        std::cout << t.render();
        if (files.truncated) std::cout << "(more not shown: the list is longer than one reply holds)\n";
    });
}

void add_ping(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("ping", "round trip through a peer's session: exit 0 live, 1 not");
    auto host = std::make_shared<std::string>();
    auto timeout = std::make_shared<double>(2.0);
    cmd->add_option("HOST", *host, "peer name")->required();
    cmd->add_option("--timeout", *timeout, "seconds to wait for the answer")
        ->capture_default_str()
        ->check(CLI::Range(0.001, proto::kMaxPingTimeoutMs / 1000.0));
    cmd->callback([&g, host, timeout] {
        auto s = connect(g);
        const auto ms = static_cast<std::uint32_t>(*timeout * 1000);
        auto r = s.request<proto::PingResult>(proto::PingPeer{*host, ms}, common::Millis{ms + 5000});
        if (g.json) {
            print_json(proto::ping_document(r));
        } else if (r.live) {
            std::printf("%s is live: round trip %.2f ms\n", r.host.c_str(), r.rtt_ms);
        } else {
            std::cout << r.host << " is offline (" << ctl::printable(r.reason) << ")\n";
        }
        if (!r.live) throw Failure{ctl::kFailed, ""};
    });
}

void add_peers(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("peers", "live peers: name, address, reachability, files, since");
    cmd->callback([&g] {
        auto s = connect(g);
        auto reply = s.request<proto::Peers>(proto::ListPeers{});
        if (g.json) return print_json(proto::peers_document(reply));
        // REACH: whether the tracker could dial the peer's upload port ("?" while it checks, "-" never checked).
        ctl::Table t({"NAME", "ADDRESS", "PORT", "REACH", "FILES", "SINCE"});
        bool unreachable = false;
        for (const auto& p : reply.peers) {
            const std::string reach = p.reachable ? (*p.reachable ? "yes" : "no")
                                                  : (p.reach_reason == "checking" ? "?" : "-");
            unreachable = unreachable || (p.reachable && !*p.reachable);
            t.add({p.name, p.address, std::to_string(p.port), reach, std::to_string(p.files),
                   ctl::local_time(p.since)});
        }
        std::cout << (t.empty() ? "no live peers\n" : t.render());
        if (unreachable) std::cout << "REACH no: the tracker could not dial that peer's upload port (why: --json)\n";
    });
}

void add_files(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("files", "the whole index, or the names containing TEXT");
    auto text = std::make_shared<std::string>();
    cmd->add_option("TEXT", *text, "part of a name");
    cmd->callback([&g, text] {
        auto s = connect(g);
        auto reply = s.request<proto::IndexReply>(proto::Search{*text});
        ctl::print_index(reply, g.json, "no files\n");
    });
}

std::string event_line(const proto::Event& e) {
    std::string line = ctl::local_time(e.time) + "  " + e.kind + "  " + e.peer;
    if (!e.file.empty()) line += "  \"" + e.file + "\"";
    if (!e.detail.empty()) line += "  (" + e.detail + ")";
    return ctl::printable(line);
}

void add_events(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("events", "recent events: joins, publishes, lookups, fetches, reverse and relayed connections, leaves");
    auto follow = std::make_shared<bool>(false);
    cmd->add_flag("-f,--follow", *follow, "keep printing new events (with --json: one object per line)");
    cmd->callback([&g, follow] {
        auto s = connect(g);
        auto history = s.request<proto::Events>(proto::ListEvents{*follow});
        if (g.json && !*follow) return print_json(proto::events_document(history));
        std::reverse(history.events.begin(), history.events.end());   // the tracker sends newest first
        if (!g.json && history.truncated) std::cout << "(older events not shown: the history is longer than one reply holds)\n";
        const auto show = [&](const proto::Event& e) {
            std::cout << (g.json ? e.to_json().dump() : event_line(e)) << std::endl;
        };
        for (const auto& e : history.events) show(e);
        while (*follow) {
            auto env = s.client().next(common::Millis{3'600'000});
            if (!env) {
                if (env.error().code == proto::ErrorCode::timeout) continue;
                throw Failure{ctl::kUnreachable, "the tracker closed the stream: " + env.error().message};
            }
            auto notice = proto::expect<proto::EventNotice>(*env);
            if (!notice) throw ctl::Session::failure(notice.error());
            show(notice->event);
        }
    });
}

void add_stats(CLI::App& app, Globals& g) {
    auto* cmd = app.add_subcommand("stats", "peers, files, requests by type, uptime, reverse connections, the relay's circuits");
    cmd->callback([&g] {
        auto s = connect(g);
        auto st = s.request<proto::Stats>(proto::GetStats{});
        if (g.json) return print_json(proto::stats_document(st));
        std::cout << "peers        " << st.peers << "\n"
                  << "files        " << st.files << " (" << st.names << " distinct names)\n"
                  << "connections  " << st.connections << "\n"
                  << "uptime       " << st.uptime_s << " s\n"
                  << "requests\n";
        for (const auto& [type, count] : st.requests) std::printf("  %-16s %llu\n", type.c_str(), static_cast<unsigned long long>(count));
        if (const auto& r = st.relay) {
            std::cout << "relay\n"
                      << "  circuits     " << r->circuits_open << " open, " << r->circuits_opened << " opened, "
                      << r->circuits_refused << " refused\n"
                      << "  relayed      " << r->bytes_relayed << " bytes\n";
        }
        std::cout << "reverse      " << st.reverse.forwarded << " forwarded, " << st.reverse.refused << " refused\n";
    });
}

}  // namespace

int main(int argc, char** argv) {
    // A daemon that hangs up while we write gets an error message from the
    // write (EPIPE), not a silent death by signal (exit 141, nothing printed).
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"trackerctl — inspect a running peershare tracker"};
    app.set_version_flag("--version", PEERSHARE_VERSION);
    app.require_subcommand(1);
    app.fallthrough();   // global options work after the subcommand too
    Globals g;
    if (const char* env = std::getenv("TRACKER_SOCKET"); env && *env) g.socket = env;
    app.add_option("--socket", g.socket, "the tracker's admin socket (env TRACKER_SOCKET)")->capture_default_str();
    app.add_flag("--json", g.json, "print one JSON document on stdout");
    add_discover(app, g);
    add_ping(app, g);
    add_peers(app, g);
    add_files(app, g);
    add_events(app, g);
    add_stats(app, g);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ctl::kDone : ctl::kUsage;
    } catch (const Failure& f) {
        if (!f.message.empty()) std::cerr << "trackerctl: " << ctl::printable(f.message) << "\n";
        return f.code;
    }
    return ctl::kDone;
}
