// ctl/transfers_view.cpp — see transfers_view.hpp.
#include "ctl/transfers_view.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "ctl/output.hpp"
#include "ctl/progress.hpp"

namespace peershare::ctl {
namespace {

constexpr auto kWatchInterval = std::chrono::milliseconds(250);

bool unfinished(const std::string& state) { return state == "queued" || state == "running" || state == "waiting"; }

std::string eta_text(std::int64_t s) { return s < 0 ? "-" : duration_text(static_cast<std::uint64_t>(s)); }

std::string sources_text(const proto::TransferInfo& t) {
    std::string out;
    for (const auto& s : t.sources) {
        if (s.dropped) continue;
        out += (out.empty() ? "" : ", ") + s.peer + " (" + s.via + (s.stalled ? ", stalled)" : ")");
    }
    return out.empty() ? "-" : out;
}

std::string state_text(const proto::TransferInfo& t) {
    if (t.error.empty() || (t.state != "failed" && t.state != "waiting")) return t.state;
    return t.state + ": " + t.error;
}

proto::Progress as_progress(const proto::TransferInfo& t) {
    return {t.done, t.total, t.rate, 0, t.sources};
}

}  // namespace

std::string done_text(std::uint64_t done, std::uint64_t total) {
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0);
    return human_size(done) + "/" + human_size(total) + " (" + pct + ")";
}

void print_transfers(const proto::TransferList& list, bool json) {
    if (json) return print_json(list.to_json());
    Table t({"ID", "NAME", "STATE", "DONE", "RATE", "SOURCES", "ETA", "DESTINATION"});
    for (const auto& x : list.transfers) {
        t.add({std::to_string(x.id), x.name, x.state, done_text(x.done, x.total),
               x.state == "running" ? human_size(static_cast<std::uint64_t>(x.rate)) + "/s" : "-", sources_text(x),
               x.state == "running" ? eta_text(x.eta_s) : "-", x.destination});
    }
    std::cout << (t.empty() ? "no transfers: start one with `peerctl fetch NAME`\n" : t.render());
    for (const auto& x : list.transfers) {
        if (!x.error.empty() && (x.state == "failed" || x.state == "waiting"))
            std::cout << "transfer " << x.id << " " << x.state << ": " << printable(x.error) << "\n";
    }
    if (list.truncated) std::cout << "(more not shown: the list is longer than one reply holds)\n";
    if (!list.leftovers.empty()) {
        std::cout << "\nleftover partial files no transfer of this peerd owns (a fetch to the same destination "
                     "adopts one; delete one only if no other peerd has a transfer to it):\n";
        Table l({"SIZE", "PATH"});
        for (const auto& x : list.leftovers) l.add({human_size(x.size), x.path});
        std::cout << l.render();
    }
}

void watch_transfers(Session& session, std::optional<std::uint64_t> id, bool json) {
    const bool terminal = !json && isatty(STDERR_FILENO);
    std::map<std::uint64_t, std::string> last_state;
    std::size_t drawn = 0;   // lines of bars on screen
    proto::TransferList list;
    for (;;) {
        list = session.request<proto::TransferList>(proto::ListTransfers{});
        std::vector<const proto::TransferInfo*> shown;
        for (const auto& t : list.transfers) {
            if (id ? t.id == *id : (unfinished(t.state) || last_state.contains(t.id))) shown.push_back(&t);
        }
        if (!id && shown.empty()) {
            if (!json) std::cout << "nothing to watch: no transfer is queued, running or waiting (see `peerctl transfers`)\n";
            break;
        }
        if (id && shown.empty()) {
            throw Failure{kFailed, "no transfer " + std::to_string(*id) + " (cancelled, or never existed); see `peerctl transfers`"};
        }
        if (terminal) {
            for (std::size_t i = 0; i < drawn; ++i) std::fprintf(stderr, "\033[1A\r\033[K");
            for (const auto* t : shown) {
                std::fprintf(stderr, "%llu %s %s %s\n", static_cast<unsigned long long>(t->id), t->name.c_str(),
                             t->state == "running" ? progress_line(as_progress(*t), 120).c_str() : "",
                             t->state == "running" ? "" : (state_text(*t) + " " + done_text(t->done, t->total)).c_str());
            }
            std::fflush(stderr);
            drawn = shown.size();
        }
        bool any_unfinished = false;
        for (const auto* t : shown) {
            if (!terminal && !json && last_state[t->id] != t->state) {
                std::cout << "transfer " << t->id << " " << t->name << ": " << state_text(*t) << ", "
                          << done_text(t->done, t->total) << "\n" << std::flush;
            }
            last_state[t->id] = t->state;
            any_unfinished = any_unfinished || unfinished(t->state);
        }
        if (!any_unfinished) break;
        std::this_thread::sleep_for(kWatchInterval);   // a polling interval, not synchronisation
    }
    if (json) {
        proto::TransferList out;
        for (const auto& t : list.transfers)
            if (last_state.contains(t.id)) out.transfers.push_back(t);
        print_json(out.to_json());
    }
    if (id) {
        for (const auto& t : list.transfers) {
            if (t.id != *id) continue;
            if (t.state == "done") {
                if (!json && !terminal) std::cout << "done: " << printable(t.destination) << "\n";
                else if (!json) std::cout << "transfer " << t.id << " done: " << printable(t.destination) << "\n";
                return;
            }
            throw Failure{kFailed, "transfer " + std::to_string(t.id) + " " + state_text(t)};
        }
    }
}

}  // namespace peershare::ctl
