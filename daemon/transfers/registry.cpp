// daemon/transfers/registry.cpp — see registry.hpp.
#include "daemon/transfers/registry.hpp"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>

#include "common/pool.hpp"
#include "common/uv.hpp"
#include "daemon/fetch/partial_file.hpp"
#include "daemon/transfers/holder_choice.hpp"
#include "daemon/transfers/leftovers.hpp"
#include "proto/content.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

struct TransferRegistry::Transfer {
    TransferRegistry* owner = nullptr;
    TransferRecord rec;
    std::unique_ptr<Fetch> fetch;
    std::uint64_t generation = 0;        // bumps whenever a run starts or stops: late answers are ignored
    std::vector<proto::Holder> holders;  // from a lookup just made, for the next run
    std::vector<Follower> followers;
    FetchProgress last;                  // the engine's latest progress while running
    std::unique_ptr<common::Timer> retry;  // while waiting: the next lookup
    std::unique_ptr<common::Timer> swarm;  // while running: new holders every kSwarmLookupMs
    // Looks in a row that led to no verified piece (the backoff's count):
    // only a piece verified, a resume or a tracker reconnect clears it, not
    // a look that finds holders, which may fail again at once.
    unsigned lookups_failed = 0;
    bool fresh = false;    // created in this run of peerd and holds no verified piece yet
    bool adopt = false;    // its partial file was left by someone else: verify every piece
    // The Fetch was asked to stop (pause, cancel, waiting): it makes what it
    // verified durable and reports it, then DoneFn. No new Fetch on the same
    // partial file until then.
    bool stopping = false;
    bool cancelled = false;   // forget it (and remove the partial file) once stopped
};

namespace {

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool unfinished(TransferState s) {
    return s == TransferState::queued || s == TransferState::running || s == TransferState::waiting;
}

// Verified bytes in the partial file according to the record.
std::uint64_t held_bytes(const TransferRecord& r) {
    if (r.state == TransferState::done) return r.size;
    std::uint64_t bytes = 0;
    for (std::uint64_t i = 0; i < r.have.size(); ++i)
        if (r.have.test(i)) bytes += proto::piece_length(r.size, r.piece_size, i);
    return bytes;
}

proto::Progress to_message(const FetchProgress& p) {
    proto::Progress msg{p.done, p.total, p.rate, p.stalled_ms, {}};
    for (const auto& s : p.sources)
        msg.sources.push_back({s.peer, s.bytes, s.rate, s.dropped, s.stalled, s.why, std::string(via_name(s.via))});
    return msg;
}

std::string label(const TransferRecord& r) { return "transfer " + std::to_string(r.id) + " ('" + r.name + "')"; }

}  // namespace

TransferRegistry::TransferRegistry(uv_loop_t* loop, const common::Log& log, RegistryConfig config,
                                   TransferStore& store, RegistryHooks hooks)
    : loop_(loop), log_(log), config_(std::move(config)), store_(store), hooks_(std::move(hooks)) {
    assert(config_.max_active >= 1);
}

TransferRegistry::~TransferRegistry() { stop(); }

TransferRegistry::Transfer* TransferRegistry::find(std::uint64_t id) {
    auto it = transfers_.find(id);
    return it == transfers_.end() ? nullptr : it->second.get();
}

TransferRegistry::Transfer* TransferRegistry::by_destination(const std::string& destination) {
    for (auto& [id, t] : transfers_)
        if (t->rec.destination == destination) return t.get();
    return nullptr;
}

unsigned TransferRegistry::active() const {
    unsigned n = 0;
    for (const auto& [id, t] : transfers_) n += t->rec.state == TransferState::running;
    return n;
}

void TransferRegistry::restore(std::vector<TransferRecord> records) {
    unsigned resumed = 0;
    for (auto& rec : records) {
        auto t = std::make_unique<Transfer>();
        t->owner = this;
        const auto held = std::to_string(held_bytes(rec)) + " of " + std::to_string(rec.size) + " bytes verified";
        if (unfinished(rec.state)) {
            rec.state = TransferState::queued;
            ++resumed;
            log_.info(label(rec) + ": resuming with " + held);
        } else if (rec.state != TransferState::done) {
            log_.info(label(rec) + ": kept " + std::string(to_string(rec.state)) + " with " + held);
        }
        t->rec = std::move(rec);
        transfers_.emplace(t->rec.id, std::move(t));
    }
    if (!records.empty())
        log_.info("transfers: " + std::to_string(records.size()) + " restored, " + std::to_string(resumed) +
                  " continue");
    pump();
}

std::uint64_t TransferRegistry::fetch(const proto::FetchFile& request, Follow follow) {
    const auto token = next_token_++;
    if (Transfer* t = by_destination(request.output)) {
        if (t->cancelled) {
            follow.done(Error{ErrorCode::unavailable, label(t->rec) + " to " + request.output +
                                                          " is being cancelled; try again in a moment"});
            return token;
        }
        if (t->rec.state == TransferState::done) {
            forget(t->rec.id, false);   // a done record gives way to a new fetch to the same path
        } else if (t->rec.name != request.name) {
            follow.done(Error{ErrorCode::bad_request,
                              request.output + " is the destination of " + label(t->rec) +
                                  "; cancel it (`peerctl cancel " + std::to_string(t->rec.id) +
                                  "`) or fetch to another path with -o"});
            return token;
        } else if (t->rec.state == TransferState::running || t->rec.state == TransferState::queued) {
            attach(*t, request, token, std::move(follow));
            return token;
        }
        // A waiting, paused or failed transfer continues if its content is
        // still offered; the lookup below decides.
    }
    hooks_.lookup(request.name, [this, alive = std::weak_ptr<bool>(alive_), request, token,
                                 follow = std::move(follow)](proto::Result<std::vector<proto::Holder>> r) mutable {
        if (!alive.expired()) fetch_looked_up(request, token, std::move(follow), std::move(r), true);
    });
    return token;
}

void TransferRegistry::fetch_looked_up(const proto::FetchFile& request, std::uint64_t token, Follow follow,
                                       proto::Result<std::vector<proto::Holder>> r, bool may_wait) {
    if (gone_tokens_.erase(token)) return;   // the asker left meanwhile: start nothing
    if (may_wait && r) {
        const auto own = own_reach();
        const HolderFilter filter{config_.self, request.from, request.id_prefix, ""};
        if (wait_for_own_reach(choose_holders(request.name, *r, filter, own), own)) {
            return after_own_reach("'" + request.name + "'", [this, request, token, follow, r = std::move(r)]() mutable {
                fetch_looked_up(request, token, std::move(follow), std::move(r), false);
            });
        }
    }
    const auto alive = std::weak_ptr<bool>(alive_);
    Transfer* existing = by_destination(request.output);
    if (existing && (existing->cancelled || existing->rec.state == TransferState::done)) existing = nullptr;
    if (existing) {
        // Its content still offered (or nothing is): continue it. Another
        // content under the name: a new transfer takes its place and
        // adopts its partial file (pieces that match are kept).
        const bool offered = r && std::any_of(r->begin(), r->end(), [&](const proto::Holder& h) {
            return h.id == existing->rec.content_id && h.peer != config_.self;
        });
        const bool other = r && std::holds_alternative<std::vector<proto::Holder>>(choose_holders(
                                    request.name, *r, {config_.self, request.from, request.id_prefix, ""},
                                    own_reach()));
        if (offered || !other || existing->fetch) return attach(*existing, request, token, std::move(follow));
        log_.info(label(existing->rec) + ": its content is no longer offered; a new transfer replaces it");
        end_followers(*existing, Error{ErrorCode::unavailable, label(existing->rec) + " replaced"});
        forget(existing->rec.id, false);
    }
    if (!r) return follow.done(r.error());
    auto choice = choose_holders(request.name, *r, {config_.self, request.from, request.id_prefix, ""}, own_reach());
    if (auto* e = std::get_if<Error>(&choice)) return follow.done(*e);
    if (auto* c = std::get_if<proto::Choices>(&choice)) return follow.choices(std::move(*c));
    auto holders = std::get<std::vector<proto::Holder>>(std::move(choice));
    auto adopt = std::make_shared<bool>(false);
    const auto rc = common::run_in_pool(
        loop_, [adopt, dest = request.output] { *adopt = take_leftover(dest); },
        [this, alive, adopt, request, token, holders = std::move(holders), follow = std::move(follow)]() mutable {
            if (alive.expired()) return;
            if (gone_tokens_.erase(token)) return;
            if (Transfer* t = by_destination(request.output);
                t && t->rec.state != TransferState::done && !t->cancelled) {
                return attach(*t, request, token, std::move(follow));   // raced with another fetch
            }
            create(request, std::move(holders), *adopt, token, std::move(follow));
        });
    if (rc != 0) follow.done(Error{ErrorCode::internal, "cannot queue work: " + common::uv_error(rc)});
}

void TransferRegistry::create(const proto::FetchFile& request, std::vector<proto::Holder> holders, bool adopt,
                              std::uint64_t token, Follow follow) {
    assert(!holders.empty());
    if (Transfer* old = by_destination(request.output)) forget(old->rec.id, false);   // a done one
    auto t = std::make_unique<Transfer>();
    t->owner = this;
    TransferRecord& rec = t->rec;
    rec.id = store_.next_transfer_id();
    rec.name = request.name;
    rec.content_id = holders.front().id;
    rec.size = holders.front().size;
    rec.piece_size = holders.front().piece_size;
    rec.destination = request.output;
    rec.partial_path = partial_path_for(request.output);
    for (const auto& h : holders) rec.sources.push_back({h.peer, h.address, h.port});
    rec.from = request.from;
    rec.id_prefix = request.id_prefix;
    rec.force = request.force;
    rec.share = request.share.value_or(config_.share_fetched);
    rec.state = TransferState::queued;
    rec.created_at = rec.updated_at = now_s();
    t->holders = std::move(holders);
    t->fresh = true;
    t->adopt = adopt;
    store_.put_transfer(rec);
    log_.info(label(rec) + ": queued to " + rec.destination + (adopt ? " (adopting a leftover partial file)" : ""));
    Transfer& ref = *t;
    transfers_.emplace(rec.id, std::move(t));
    follow.accepted(accepted(ref, false));
    if (!request.detach) ref.followers.push_back({token, false, std::move(follow)});
    pump();
}

void TransferRegistry::attach(Transfer& t, const proto::FetchFile& request, std::uint64_t token, Follow follow) {
    if (request.share && *request.share != t.rec.share) {   // the latest word on sharing wins
        t.rec.share = *request.share;
        store_.put_transfer(t.rec);
    }
    follow.accepted(accepted(t, true));
    const auto id = t.rec.id;
    if (!request.detach) t.followers.push_back({token, false, std::move(follow)});
    if (t.rec.state == TransferState::paused || t.rec.state == TransferState::failed) {
        (void)resume(id);
    } else if (t.rec.state == TransferState::waiting) {
        lookup_again(id);
    }
}

void TransferRegistry::forget_follower(std::uint64_t token) {
    if (draining_) return;   // peerd is stopping: the transfer must stay unfinished, to continue at start
    for (auto& [id, t] : transfers_) {
        auto& fs = t->followers;
        for (auto it = fs.begin(); it != fs.end(); ++it) {
            if (it->token != token) continue;
            fs.erase(it);
            if (unfinished(t->rec.state)) {
                log_.info(label(t->rec) + ": paused, the peerctl that followed it went away");
                (void)pause(id);
            }
            return;
        }
    }
    gone_tokens_.insert(token);   // still looking up: create nothing for it
    // Bounded: a token is erased when its lookup answers, which it always does.
}

void TransferRegistry::pump() {
    if (draining_) return check_drained();
    // By id, since starting one may change the map (a lookup can answer at once).
    std::vector<std::uint64_t> queued;
    for (const auto& [id, t] : transfers_)
        if (t->rec.state == TransferState::queued) queued.push_back(id);
    for (auto id : queued) {
        if (active() >= config_.max_active) return;
        if (Transfer* t = find(id); t && t->rec.state == TransferState::queued && !t->fetch) run(*t);
    }
}

void TransferRegistry::run(Transfer& t) {
    set_state(t, TransferState::running);
    ++t.generation;
    if (!t.holders.empty()) {
        auto holders = std::move(t.holders);
        t.holders.clear();
        return start_fetch(t, holders);
    }
    lookup_holders(t, TransferState::running,
                   [this](Transfer& t, std::vector<proto::Holder> holders) { start_fetch(t, holders); });
}

void TransferRegistry::lookup_holders(Transfer& t, TransferState expected, HoldersFound found) {
    const auto generation = ++t.generation;
    hooks_.lookup(t.rec.name, [this, alive = std::weak_ptr<bool>(alive_), id = t.rec.id, generation, expected,
                               found = std::move(found)](proto::Result<std::vector<proto::Holder>> r) {
        if (!alive.expired()) holders_looked_up(id, generation, expected, found, std::move(r), true);
    });
}

void TransferRegistry::holders_looked_up(std::uint64_t id, std::uint64_t generation, TransferState expected,
                                         const HoldersFound& found, proto::Result<std::vector<proto::Holder>> r,
                                         bool may_wait) {
    Transfer* t = find(id);
    if (!t || t->generation != generation || t->rec.state != expected) return;
    if (!r) return enter_waiting(*t, r.error().message);
    const auto own = own_reach();
    auto choice = choose_holders(t->rec.name, *r, {config_.self, t->rec.from, "", t->rec.content_id}, own);
    if (may_wait && wait_for_own_reach(choice, own)) {
        return after_own_reach(label(t->rec), [this, id, generation, expected, found, r = std::move(r)]() mutable {
            holders_looked_up(id, generation, expected, found, std::move(r), false);
        });
    }
    if (auto* holders = std::get_if<std::vector<proto::Holder>>(&choice)) return found(*t, std::move(*holders));
    const auto* e = std::get_if<Error>(&choice);
    enter_waiting(*t, e && e->code == ErrorCode::unavailable ? e->message : "no live holder of this content");
}

void TransferRegistry::after_own_reach(const std::string& who, std::function<void()> then) {
    log_.info(who + ": every holder is unreachable; waiting for the tracker's check of this peer's own reachability");
    // `then` runs while the registry runs: stop() drops it with the timer.
    awaiting_reach_.push_back(std::move(then));
    if (!reach_wait_) {
        reach_wait_ = std::make_unique<common::Timer>(loop_);
        reach_wait_->get()->data = this;
    }
    if (awaiting_reach_.size() > 1) return;   // the first one's deadline is running
    uv_timer_start(
        reach_wait_->get(), [](uv_timer_t* timer) { static_cast<TransferRegistry*>(timer->data)->reach_known(); },
        kOwnReachWaitMs, 0);
}

void TransferRegistry::reach_known() {
    if (reach_wait_) uv_timer_stop(reach_wait_->get());
    auto waiting = std::exchange(awaiting_reach_, {});
    for (auto& then : waiting) then();
}

FetchRequest::Fallback TransferRegistry::fallback_source(std::uint64_t id, const Source& direct,
                                                         const std::string& why) {
    Transfer* t = find(id);
    const auto own = own_reach();
    const auto route = fallback_route(own);
    if (!t || !hooks_.hidden_source) return {};
    if (route == HiddenRoute::none) return {std::nullopt, no_fallback_reason(own)};
    proto::Holder h;
    h.peer = direct.peer;
    h.address = direct.host;
    h.port = direct.port;
    h.id = t->rec.content_id;
    h.size = t->rec.size;
    h.piece_size = t->rec.piece_size;
    if (direct.partial) h.pieces_held = 0;   // how many is its /have's to say
    h.reachable = false;                     // to us, now: never dialled at its address again by this fetch
    log_.info(label(t->rec) + ": cannot connect to " + direct.peer + " at its address; asking for a " +
              std::string(to_string(route)) + " connection (" + why + ")");
    return {hooks_.hidden_source(h, route), ""};
}

void TransferRegistry::start_fetch(Transfer& t, const std::vector<proto::Holder>& holders) {
    TransferRecord& rec = t.rec;
    rec.sources.clear();
    for (const auto& h : holders) rec.sources.push_back({h.peer, h.address, h.port});
    FetchRequest fr;
    fr.name = rec.name;
    fr.id = rec.content_id;
    fr.size = rec.size;
    fr.piece_size = rec.piece_size;
    fr.destination = rec.destination;
    fr.force = rec.force;
    fr.partial_path = rec.partial_path;
    fr.pieces = rec.pieces;
    fr.have = rec.have;
    fr.adopt = t.adopt;
    fr.max_sources = config_.max_sources;
    fr.deadlines = config_.deadlines;
    fr.sources = sources_for(holders);
    const auto id = rec.id;
    fr.fallback = [this, id](const Source& direct, const std::string& why) { return fallback_source(id, direct, why); };
    Fetch::Callbacks callbacks;
    callbacks.progress = [this, id](const FetchProgress& p) {
        Transfer* t = find(id);
        if (!t || t->stopping) return;
        t->last = p;
        const auto msg = to_message(p);
        for (auto& f : t->followers)
            if (f.follow.progress) f.follow.progress(msg);
    };
    callbacks.piece_list = [this, id](const proto::PieceList& list) {
        Transfer* t = find(id);
        if (!t) return;
        t->rec.pieces = list.pieces;
        if (t->rec.have.size() != list.pieces.size()) t->rec.have = proto::Bitfield(list.pieces.size());
        store_.put_transfer(t->rec);
    };
    callbacks.durable = [this, id](const proto::Bitfield& have) {
        Transfer* t = find(id);
        if (!t) return;
        if (have.count() > t->rec.have.count()) {
            t->lookups_failed = 0;   // it got somewhere: a later wait starts short again
        }
        t->rec.have = have;
        if (!have.none()) t->fresh = false;
        t->adopt = false;   // what was adopted has been verified
        t->rec.updated_at = now_s();
        store_.put_transfer_progress(t->rec.id, t->rec.have, t->rec.state, t->rec.error);
        if (hooks_.holding && !t->cancelled) hooks_.holding(t->rec, t->rec.share && !have.none());
    };
    callbacks.done = [this, id](proto::Result<FetchResult> result) { on_done(id, std::move(result)); };
    t.fetch = hooks_.make_fetch(std::move(fr), std::move(callbacks));
    t.fetch->start();
    if (!t.swarm) t.swarm = std::make_unique<common::Timer>(loop_);
    t.swarm->get()->data = &t;
    uv_timer_start(
        t.swarm->get(),
        [](uv_timer_t* timer) {
            auto* tr = static_cast<Transfer*>(timer->data);
            if (tr) tr->owner->look_for_sources(tr->rec.id);
        },
        kSwarmLookupMs, kSwarmLookupMs);
}

void TransferRegistry::look_for_sources(std::uint64_t id) {
    Transfer* t = find(id);
    if (!t || !t->fetch || t->stopping) return;
    const auto generation = t->generation;
    hooks_.lookup(t->rec.name, [this, alive = std::weak_ptr<bool>(alive_), id,
                                generation](proto::Result<std::vector<proto::Holder>> r) {
        if (alive.expired() || !r) return;
        Transfer* t = find(id);
        if (!t || !t->fetch || t->stopping || t->generation != generation) return;
        auto choice =
            choose_holders(t->rec.name, *r, {config_.self, t->rec.from, "", t->rec.content_id}, own_reach());
        auto* holders = std::get_if<std::vector<proto::Holder>>(&choice);
        if (!holders) return;
        t->fetch->add_sources(sources_for(*holders));
    });
}

OwnReach TransferRegistry::own_reach() const { return hooks_.own_reach ? hooks_.own_reach() : OwnReach{}; }

std::vector<Source> TransferRegistry::sources_for(const std::vector<proto::Holder>& holders) const {
    const auto route = hidden_route(own_reach());
    std::vector<Source> sources;
    for (const auto& h : holders) {
        if (h.reachable != false) {
            sources.push_back({h.peer, h.address, h.port, h.partial()});
        } else if (route != HiddenRoute::none) {
            assert(hooks_.hidden_source);
            sources.push_back(hooks_.hidden_source(h, route));
            assert(sources.back().handed && sources.back().via != Via::direct);
        }   // else never dialled: its address is unproven (choose_holders)
    }
    return sources;
}

void TransferRegistry::on_done(std::uint64_t id, proto::Result<FetchResult> result) {
    Transfer* t = find(id);
    if (!t) return;
    // Destroyed on return: the engine allows its owner to drop it in DoneFn.
    auto fetch = std::move(t->fetch);
    if (t->swarm) uv_timer_stop(t->swarm->get());
    t->last = {};
    TransferRecord& rec = t->rec;
    const bool was_stopping = std::exchange(t->stopping, false);
    if (result) {   // also when a pause came too late: the file is in place
        if (hooks_.holding) hooks_.holding(rec, false);   // the partial file is gone: renamed into place
        for (std::uint64_t i = 0; i < rec.have.size(); ++i) rec.have.set(i);
        set_state(*t, TransferState::done);
        log_.info(label(rec) + ": done, " + rec.destination);
        if (hooks_.completed) hooks_.completed(rec, result->sources_used);
        end_followers(*t, proto::FetchedFile{rec.name, result->path, result->bytes, rec.content_id, result->seconds,
                                             result->sources_used});
        if (t->cancelled) forget(id, false);   // cancelled too late: the file stays, the record goes
        return pump();
    }
    const Error error = result.error();
    if (t->cancelled) {
        forget(id, true);
        return pump();
    }
    if (was_stopping || cancelled(error)) return pump();   // paused or waiting: already said
    if (no_source_left(error)) {
        enter_waiting(*t, error.message);
        return pump();
    }
    if (t->fresh && rec.have.none()) {
        // It never held a verified piece: forget it, as a fetch that never started.
        log_.info(label(rec) + ": failed before any piece, forgotten: " + error.message);
        end_followers(*t, error);
        forget(id, !t->adopt);
        return pump();
    }
    log_.warning(label(rec) + ": failed: " + error.message);
    set_state(*t, TransferState::failed, error.message);
    end_followers(*t, Error{error.code, error.message + " (" + label(rec) + " is kept: `peerctl resume " +
                                            std::to_string(id) + "` tries again, `peerctl cancel " +
                                            std::to_string(id) + "` discards it)"});
    pump();
}

void TransferRegistry::enter_waiting(Transfer& t, const std::string& why) {
    stop_fetch(t);
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    const auto wait = lookup_backoff_ms(++t.lookups_failed, jitter(rng_));
    const auto again = "; asking the tracker again in " + std::to_string(wait / 1000) + " s";
    if (t.rec.state != TransferState::waiting) log_.info(label(t.rec) + ": waiting for a holder: " + why + again);
    set_state(t, TransferState::waiting, why);
    const auto id = t.rec.id;
    end_followers(t, Error{ErrorCode::unavailable,
                           "no holder of '" + t.rec.name + "' can be fetched from right now (" + why + "); transfer " +
                               std::to_string(id) +
                               " is kept and continues by itself when one returns (see `peerctl transfers`)"});
    if (!t.retry) {
        t.retry = std::make_unique<common::Timer>(loop_);
    }
    t.retry->get()->data = &t;
    uv_timer_start(
        t.retry->get(),
        [](uv_timer_t* timer) {
            auto* tr = static_cast<Transfer*>(timer->data);
            if (tr) tr->owner->lookup_again(tr->rec.id);
        },
        wait, 0);
    pump();
}

void TransferRegistry::tracker_connected() {
    if (draining_ || !alive_) return;
    std::vector<std::uint64_t> waiting;
    for (const auto& [id, t] : transfers_)
        if (t->rec.state == TransferState::waiting) waiting.push_back(id);
    for (auto id : waiting) {
        if (Transfer* t = find(id)) t->lookups_failed = 0;
        lookup_again(id);
    }
}

void TransferRegistry::lookup_again(std::uint64_t id) {
    Transfer* t = find(id);
    if (!t || t->rec.state != TransferState::waiting) return;
    if (t->retry) uv_timer_stop(t->retry->get());
    lookup_holders(*t, TransferState::waiting, [this](Transfer& t, std::vector<proto::Holder> holders) {
        t.holders = std::move(holders);
        log_.info(label(t.rec) + ": holders found (" + std::to_string(t.holders.size()) + "), continuing");
        set_state(t, TransferState::queued);
        pump();
    });
}

void TransferRegistry::set_state(Transfer& t, TransferState state, std::string error) {
    t.rec.state = state;
    t.rec.error = std::move(error);
    t.rec.updated_at = now_s();
    if (state != TransferState::waiting && t.retry) uv_timer_stop(t.retry->get());
    store_.put_transfer_progress(t.rec.id, t.rec.have, t.rec.state, t.rec.error);
}

void TransferRegistry::stop_fetch(Transfer& t) {
    ++t.generation;   // a lookup still on its way is ignored
    t.last = {};
    if (!t.fetch || t.stopping) return;
    t.stopping = true;
    t.fetch->cancel();   // DoneFn (on_done) follows once what it verified is durable
}

void TransferRegistry::end_followers(Transfer& t, const proto::Result<proto::FetchedFile>& outcome) {
    auto followers = std::move(t.followers);
    t.followers.clear();
    for (auto& f : followers)
        if (f.follow.done) f.follow.done(outcome);
}

void TransferRegistry::forget(std::uint64_t id, bool remove_partial) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;
    store_.remove_transfer(id);
    assert(!it->second->fetch);   // no engine left on the partial file
    if (hooks_.holding) hooks_.holding(it->second->rec, false);
    if (remove_partial) {
        auto removed = std::make_shared<proto::Result<bool>>(true);
        common::run_in_pool(
            loop_, [removed, path = it->second->rec.partial_path] { *removed = peerd::remove_partial(path); },
            [this, removed, alive = std::weak_ptr<bool>(alive_)] {
                if (!*removed && !alive.expired()) log_.warning(removed->error().message);
            });
    }
    transfers_.erase(it);
}

proto::Result<proto::TransferInfo> TransferRegistry::pause(std::uint64_t id) {
    Transfer* t = find(id);
    if (!t || t->cancelled) return Error{ErrorCode::not_found, "no transfer " + std::to_string(id) + "; see `peerctl transfers`"};
    if (t->rec.state == TransferState::done) return Error{ErrorCode::bad_request, label(t->rec) + " is done"};
    if (t->rec.state != TransferState::paused) {
        stop_fetch(*t);
        set_state(*t, TransferState::paused);
        const auto done = held_bytes(t->rec);
        log_.info(label(t->rec) + ": paused");
        end_followers(*t, Error{ErrorCode::unavailable,
                                label(t->rec) + " paused with " + std::to_string(done) + " of " +
                                    std::to_string(t->rec.size) + " bytes: continue with `peerctl resume " +
                                    std::to_string(id) + "`, discard with `peerctl cancel " + std::to_string(id) +
                                    "`"});
        pump();
    }
    return info(*t);
}

proto::Result<proto::TransferInfo> TransferRegistry::resume(std::uint64_t id) {
    Transfer* t = find(id);
    if (!t || t->cancelled) return Error{ErrorCode::not_found, "no transfer " + std::to_string(id) + "; see `peerctl transfers`"};
    switch (t->rec.state) {
    case TransferState::paused:
    case TransferState::failed:
        log_.info(label(t->rec) + ": resumed");
        t->lookups_failed = 0;
        set_state(*t, TransferState::queued);
        pump();
        break;
    case TransferState::waiting:
        t->lookups_failed = 0;   // the user asked: the doubling starts again
        lookup_again(id);
        break;
    default:
        break;
    }
    return info(*t);
}

proto::Result<bool> TransferRegistry::cancel(std::uint64_t id) {
    Transfer* t = find(id);
    if (!t || t->cancelled) return Error{ErrorCode::not_found, "no transfer " + std::to_string(id) + "; see `peerctl transfers`"};
    const bool finished = t->rec.state == TransferState::done;
    log_.info(label(t->rec) + (finished ? ": forgotten" : ": cancelled, partial file removed"));
    end_followers(*t, Error{ErrorCode::unavailable, label(t->rec) + " cancelled"});
    if (hooks_.holding) hooks_.holding(t->rec, false);
    if (!t->fetch) {
        forget(id, !finished);
    } else {
        // The record goes now; the partial file once the engine has stopped.
        t->cancelled = true;
        store_.remove_transfer(id);
        stop_fetch(*t);
    }
    pump();
    return true;
}

void TransferRegistry::list(std::function<void(proto::TransferList)> done) {
    proto::TransferList out;
    std::set<std::string> dirs, owned;
    for (const auto& [id, t] : transfers_) {
        if (t->cancelled) continue;
        out.transfers.push_back(info(*t));
        owned.insert(t->rec.partial_path);
        const auto slash = t->rec.destination.rfind('/');
        dirs.insert(slash == 0 ? "/" : t->rec.destination.substr(0, slash));
    }
    auto leftovers = std::make_shared<std::vector<proto::Leftover>>();
    auto reply = std::make_shared<proto::TransferList>(std::move(out));
    const auto rc = common::run_in_pool(
        loop_, [leftovers, dirs = std::move(dirs), owned = std::move(owned)] { *leftovers = find_leftovers(dirs, owned); },
        [alive = std::weak_ptr<bool>(alive_), leftovers, reply, done = std::move(done)] {
            if (alive.expired()) return;
            reply->leftovers = std::move(*leftovers);
            done(std::move(*reply));
        });
    if (rc != 0) done(std::move(*reply));
}

std::vector<proto::Transfer> TransferRegistry::summary() const {
    std::vector<proto::Transfer> out;
    for (const auto& [id, t] : transfers_)
        if (unfinished(t->rec.state) && !t->cancelled) out.push_back({t->rec.name, info(*t).done, t->rec.size});
    return out;
}

std::map<TransferState, std::size_t> TransferRegistry::count_by_state() const {
    std::map<TransferState, std::size_t> out;
    for (const auto& [id, t] : transfers_)
        if (!t->cancelled) ++out[t->rec.state];
    return out;
}

proto::TransferInfo TransferRegistry::info(const Transfer& t) const {
    proto::TransferInfo i;
    i.id = t.rec.id;
    i.name = t.rec.name;
    i.content_id = t.rec.content_id;
    i.state = std::string(to_string(t.rec.state));
    i.error = t.rec.error;
    i.total = t.rec.size;
    i.done = t.fetch ? t.last.done : held_bytes(t.rec);
    if (t.fetch && t.last.total == 0) i.done = held_bytes(t.rec);   // no progress report yet
    i.rate = t.fetch ? t.last.rate : 0;
    if (i.rate >= 1 && i.done < i.total)
        i.eta_s = static_cast<std::int64_t>(static_cast<double>(i.total - i.done) / i.rate);
    i.destination = t.rec.destination;
    if (t.fetch) i.sources = to_message(t.last).sources;
    i.created_at = t.rec.created_at;
    return i;
}

proto::TransferAccepted TransferRegistry::accepted(const Transfer& t, bool resumed) const {
    return {t.rec.id, t.rec.name, t.rec.destination, resumed, held_bytes(t.rec), t.rec.size};
}

void TransferRegistry::drain(std::uint64_t deadline_ms, std::function<void()> drained) {
    assert(!draining_ && alive_);
    draining_ = true;
    drained_ = std::move(drained);
    for (auto& [id, t] : transfers_) {
        if (t->rec.state == TransferState::waiting && t->retry) uv_timer_stop(t->retry->get());
        end_followers(*t, Error{ErrorCode::unavailable, "peerd is stopping; " + label(t->rec) +
                                                            " is kept and continues when peerd starts again"});
        ++t->generation;   // a lookup still on its way starts nothing
        if (!t->fetch || t->stopping) continue;
        t->stopping = true;
        t->fetch->cancel();   // on_done follows once what it verified is durable; the state stays running
    }
    drain_deadline_ = std::make_unique<common::Timer>(loop_);
    drain_deadline_->get()->data = this;
    uv_timer_start(drain_deadline_->get(), on_drain_timer, deadline_ms, 0);
    check_drained();
}

bool TransferRegistry::fetch_running() const {
    return std::any_of(transfers_.begin(), transfers_.end(), [](const auto& entry) { return entry.second->fetch != nullptr; });
}

void TransferRegistry::on_drain_timer(uv_timer_t* timer) {
    auto* self = static_cast<TransferRegistry*>(timer->data);
    if (self->fetch_running()) self->log_.warning("transfers did not stop within the deadline; stopping them abruptly");
    if (auto done = std::exchange(self->drained_, nullptr)) done();
}

// Called from on_done, inside a Fetch's callback: `drained` runs on a later
// loop turn (the timer, restarted at 0), never from within the engine.
void TransferRegistry::check_drained() {
    if (fetch_running()) return;
    if (drain_deadline_ && drained_) uv_timer_start(drain_deadline_->get(), on_drain_timer, 0, 0);
}

void TransferRegistry::stop() {
    if (!alive_) return;
    drained_ = nullptr;
    drain_deadline_.reset();
    awaiting_reach_.clear();
    reach_wait_.reset();
    alive_.reset();
    for (auto& [id, t] : transfers_) {
        t->fetch.reset();   // abrupt: the last second of pieces may be fetched again after the restart
        t->followers.clear();
        t->retry.reset();
        t->swarm.reset();
    }
}

}  // namespace peershare::peerd
