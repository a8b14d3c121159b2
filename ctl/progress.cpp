// ctl/progress.cpp — the fetch's progress bar, choices and summary.
#include "ctl/progress.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ctl/output.hpp"
#include "proto/transfers.hpp"

namespace peershare::ctl {
namespace {

constexpr common::Millis kFrameWait{3'600'000};
constexpr std::uint64_t kStallNoticeMs = 5'000;

// How often the fetch loop looks up from the socket to notice Ctrl-C.
constexpr common::Millis kPollWait{200};

// Ctrl-C during a fetch: the loop below notices the flag, asks peerd to pause
// the transfer and says how to go on. (If peerctl dies another way, peerd
// pauses the transfer when the session closes.) The one piece of process-wide
// state here: what a signal handler may touch.
volatile std::sig_atomic_t interrupted = 0;
void on_interrupt(int) { interrupted = 1; }

std::string rate_text(double bytes_per_s) { return human_size(static_cast<std::uint64_t>(bytes_per_s)) + "/s"; }

std::string eta_text(const proto::Progress& p) {
    if (p.rate < 1 || p.done >= p.total) return "--";
    return duration_text(static_cast<std::uint64_t>(static_cast<double>(p.total - p.done) / p.rate));
}

}  // namespace

std::string progress_line(const proto::Progress& p, std::size_t width) {
    const double fraction = p.total ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1.0;
    constexpr std::size_t kBar = 24;
    const auto filled = static_cast<std::size_t>(fraction * kBar);
    std::string line = "[" + std::string(filled, '#') + std::string(kBar - filled, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", fraction * 100);
    line += pct + human_size(p.done) + "/" + human_size(p.total);
    if (p.stalled_ms >= kStallNoticeMs) {
        line += "  no progress for " + std::to_string(p.stalled_ms / 1000) + " s";
    } else {
        line += "  " + rate_text(p.rate) + "  ETA " + eta_text(p);
    }
    std::string sources;
    for (const auto& s : p.sources) {
        if (s.dropped) continue;
        sources += (sources.empty() ? "  from " : ", ") + s.peer + " (" + s.via + ") " + rate_text(s.rate);
    }
    line += sources;
    if (line.size() > width) line.resize(width);
    return line;
}

FetchView::FetchView(bool json, bool quiet)
    : json_(json), bar_(!json && !quiet && isatty(STDERR_FILENO)),
      interactive_(!json && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {}

void FetchView::run(Session& session, proto::FetchFile request) {
    std::signal(SIGINT, on_interrupt);
    std::optional<proto::TransferAccepted> transfer;
    for (;;) {   // at most twice: once more after the user picks a content
        const auto id = session.send(request);
        auto waited = common::Millis{0};
        for (;;) {
            if (interrupted) interrupt(session, transfer, request);
            auto env = session.client().next(kPollWait);
            if (!env && !session.client().closed() && (waited += kPollWait) < kFrameWait) continue;
            if (!env) {
                clear_line();
                throw Failure{kUnreachable, "lost peerd during the fetch: " + env.error().message};
            }
            if (env->id != id) continue;
            waited = common::Millis{0};
            if (env->type == proto::TransferAccepted::kType) {
                auto a = proto::TransferAccepted::from_json(env->body);
                if (!a) throw Session::failure(a.error());
                transfer = *a;
                if (request.detach) return detached(*a);
                continue;
            }
            if (env->type == proto::Progress::kType) {
                if (auto p = proto::Progress::from_json(env->body); p && bar_) draw(*p);
                continue;
            }
            clear_line();
            if (env->type == proto::Choices::kType) {
                auto choices = proto::Choices::from_json(env->body);
                if (!choices) throw Session::failure(choices.error());
                if (!interactive_ || !request.id_prefix.empty()) refuse_ambiguous(*choices);
                request.id_prefix = choose(*choices);
                break;
            }
            auto done = proto::expect<proto::FetchedFile>(*env);
            if (!done) throw Session::failure(done.error());
            return summarize(*done);
        }
    }
}

void FetchView::interrupt(Session& session, const std::optional<proto::TransferAccepted>& transfer,
                          const proto::FetchFile& request) {
    clear_line();
    if (!transfer) throw Failure{kFailed, "fetch interrupted before it started; nothing was kept"};
    const auto n = std::to_string(transfer->transfer);
    auto paused = session.client().request<proto::TransferInfo>(proto::PauseTransfer{transfer->transfer},
                                                                 kRequestTimeout);
    if (!paused) throw Failure{kFailed, "interrupted; pausing transfer " + n + " failed: " + paused.error().message};
    throw Failure{kFailed, "paused transfer " + n + " with " + human_size(paused->done) + " of " +
                               human_size(paused->total) + " verified: continue with `peerctl resume " + n +
                               "` (or `peerctl fetch " + request.name + " -o " + transfer->destination +
                               "`), discard with `peerctl cancel " + n + "`"};
}

void FetchView::detached(const proto::TransferAccepted& a) {
    if (json_) return print_json(a.to_json());
    std::cout << (a.resumed ? "continuing" : "started") << " transfer " << a.transfer << ": " << a.name << " to "
              << printable(a.destination) << " (follow with `peerctl watch " << a.transfer << "`)\n";
}

void FetchView::draw(const proto::Progress& p) {
    std::fprintf(stderr, "\r%s\033[K", progress_line(p, 160).c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void FetchView::clear_line() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
}

std::string FetchView::choose(const proto::Choices& choices) {
    std::cerr << "peers offer different contents under '" << choices.name << "':\n";
    Table t({"#", "HOST", "SIZE", "ID", "PUBLISHED"});
    for (std::size_t i = 0; i < choices.holders.size(); ++i) {
        const auto& h = choices.holders[i];
        t.add({std::to_string(i + 1), h.peer, human_size(h.size), short_id(h.id), local_time(h.published_at)});
    }
    std::cerr << t.render();
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::cerr << "fetch which one? [1-" << choices.holders.size() << "] " << std::flush;
        std::string answer;
        if (!std::getline(std::cin, answer)) break;
        try {
            const auto n = std::stoul(answer);
            if (n >= 1 && n <= choices.holders.size()) return choices.holders[n - 1].id;
        } catch (...) {
        }
    }
    throw Failure{kFailed, "no content chosen"};
}

void FetchView::refuse_ambiguous(const proto::Choices& choices) {
    if (json_) {
        print_json({{"name", choices.name}, {"choices", proto::list_json(choices.holders)}});
    } else {
        Table t({"HOST", "SIZE", "ID", "PUBLISHED"});
        for (const auto& h : choices.holders) {
            t.add({h.peer, human_size(h.size), short_id(h.id), local_time(h.published_at)});
        }
        std::cerr << t.render();
    }
    throw Failure{kFailed, "peers offer different contents under '" + choices.name +
                               "'; pick one with --id PREFIX (or --from HOST)"};
}

void FetchView::summarize(const proto::FetchedFile& f) {
    if (json_) {
        const nlohmann::json doc = {{"name", f.name}, {"path", f.path}, {"size", f.size}, {"id", f.id},
                                    {"seconds", f.seconds}, {"sources", f.sources}};
        std::cout << doc.dump(2) << "\n";
        return;
    }
    std::string from;
    for (const auto& s : f.sources) from += (from.empty() ? "" : ", ") + s;
    const double rate = f.seconds > 0 ? static_cast<double>(f.size) / f.seconds : 0;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.2f s", f.seconds);
    std::cout << "fetched " << f.name << " (" << human_size(f.size) << ") to " << printable(f.path) << " in " << secs << " ("
              << rate_text(rate) << ") from " << (from.empty() ? "-" : from) << "\n";
}

}  // namespace peershare::ctl
