// daemon/peer.cpp — publish, unpublish, list, search, status and rate limits;
// the transfers' connections to the tracker link and the state database.
#include "daemon/peer.hpp"

#include "daemon/state/open_state.hpp"

#include <algorithm>
#include <cassert>
#include <ctime>
#include <set>

#include "common/config.hpp"
#include "common/pool.hpp"
#include "common/rate.hpp"
#include "common/uv.hpp"
#include "daemon/reverse/relay_peer.hpp"
#include "daemon/share_fetched.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

// The transfer registry persists its records through the state writer.
class Peer::TransferRows : public TransferStore {
public:
    explicit TransferRows(StateWriter& writer) : writer_(writer) {}
    std::uint64_t next_transfer_id() override { return writer_.next_transfer_id(); }
    void put_transfer(const TransferRecord& record) override { writer_.put_transfer(record); }
    void put_transfer_progress(std::uint64_t id, const proto::Bitfield& have, TransferState state,
                               const std::string& error) override {
        writer_.put_transfer_progress(id, have, state, error);
    }
    void remove_transfer(std::uint64_t id) override { writer_.remove_transfer(id); }

private:
    StateWriter& writer_;
};

Peer::Peer(uv_loop_t* loop, const common::Log& log, PeerConfig config)
    : loop_(loop), log_(log), config_(std::move(config)),
      uploads_(loop, catalog_, log, config_.uploads),
      relay_dialer_(loop),
      download_bucket_(config_.download_rate, uv_hrtime),
      buffers_(std::make_shared<BufferPool>(config_.fetch_memory)) {
    uploads_.count_into(&metrics_);
    catalog_.on_changed([this](const Publication& p) {
        log_.warning("'" + p.name + "' (" + p.path + ") changed on disk: no longer served; publish it again");
        if (link_) link_->withdraw(p.name);
    });
}

Peer::~Peer() { stop(); }

proto::Result<bool> Peer::start() {
    auto state = open_state(config_.state_dir, log_);
    if (!state) return state.error();
    state_ = std::make_unique<StateWriter>(loop_, state->db, state->next_transfer_id, [this](const Error& e) {
        log_.error("cannot save state: " + e.message);
    });
    restore_publications(std::move(state->publications));
    uploads_.set_reach_key(state->peer_key);
    if (auto ok = uploads_.start(config_.listen); !ok) return ok.error();
    link_ = std::make_unique<TrackerLink>(
        loop_, log_, LinkConfig{config_.tracker, config_.name, state->peer_key, uploads_.port(), config_.advertise},
        catalog_);
    reverse_ = std::make_unique<ReverseConnections>(loop_, log_, uploads_, *link_);
    link_->on_relay_offer([this](const proto::RelayOffer& offer) {
        serve_relay_offer(relay_dialer_, uploads_, log_, offer);
    });
    link_->start();
    start_transfers(std::move(state->transfers));
    return true;
}

void Peer::drain(std::uint64_t deadline_ms, std::function<void()> drained) {
    if (!transfers_) return drained();
    transfers_->drain(deadline_ms, std::move(drained));
}

void Peer::stop() {
    serving_.reset();
    for (auto& [id, job] : hashing_) cancel_hash(*job);
    hashing_.clear();
    if (transfers_) transfers_->stop();   // partial files and records stay: the next start resumes
    reverse_.reset();   // dials in flight are abandoned; connect-backs still coming are refused
    if (link_) link_->stop();
    relay_dialer_.abandon();
    uploads_.stop();
    if (state_) state_->flush();
}

void Peer::restore_publications(std::vector<Publication> stored) {
    for (auto& p : stored) {
        // Re-check each file: one that changed while we were down is kept but not served.
        p.changed = !unchanged_since(p.path, stamp_of(p));
        if (p.changed) log_.warning("'" + p.name + "' (" + p.path + ") changed while peerd was down: not served");
        catalog_.put(std::move(p));
    }
    log_.info("restored " + std::to_string(catalog_.all().size()) + " publications from " + config_.state_dir +
              "/" + kStateFile);
}

void Peer::publish(const std::string& path, const std::string& name, PublishDone done) {
    // One file, one publication, however its path was spelled (./same.txt, a symlink).
    auto canonical = canonical_path(path);
    if (!canonical) return done(canonical.error());
    const auto job_id = next_hash_++;
    auto job = hash_file(loop_, std::move(*canonical), config_.workers,
                         [this, job_id, name, done = std::move(done)](proto::Result<Publication> hashed) {
                             hashing_.erase(job_id);
                             finish_publish(std::move(hashed), name, done);
                         });
    hashing_.emplace(job_id, std::move(job));
}

void Peer::finish_publish(proto::Result<Publication> hashed, const std::string& name, const PublishDone& done) {
    if (!hashed) return done(hashed.error());
    Publication p = std::move(*hashed);
    p.name = name;
    p.published_at = static_cast<std::int64_t>(std::time(nullptr));
    // One path is one publication: publishing it under a new name renames it.
    std::vector<Publication> renamed;
    for (const auto& other : catalog_.names_of_path(p.path)) {
        if (other != name) renamed.push_back(*catalog_.by_name(other));
    }
    for (const auto& old : renamed) {
        catalog_.remove(old.name);
        state_->remove_publication(old.name);
        if (link_) link_->withdraw(old.name);
        log_.info("'" + old.name + "' is now published as '" + name + "'");
    }
    catalog_.put(p);
    state_->put_publication(p);
    log_.info("published '" + name + "' (" + p.path + ", " + std::to_string(p.size) + " bytes, id " + p.id + ")");
    if (!link_) return done(proto::Published{p.info(), p.path});
    link_->announce(p, [this, p, renamed = std::move(renamed), done](proto::Result<bool> announced) {
        if (!announced) {
            // Refused (a limit of the tracker's): do not keep what nobody can find.
            undo_publish(p, renamed);
            return done(announced.error());
        }
        // "Published" promises it survives a crash: answer once its row is
        // committed. A state that cannot be written (a full disk, a read-only
        // file system) fails the publish, undone, rather than leave the
        // client waiting for a retry that may never work.
        state_->when_written([this, serving = std::weak_ptr<bool>(serving_), p, renamed, done](
                                 const std::optional<proto::Error>& unsaved) {
            if (serving.expired()) return;
            if (!unsaved) return done(proto::Published{p.info(), p.path});
            const Publication* current = catalog_.by_name(p.name);
            if (link_ && current && current->id == p.id && current->path == p.path) {
                link_->withdraw(p.name);   // announced: take it back
            }
            undo_publish(p, renamed);
            done(Error{ErrorCode::internal, "'" + p.name + "' not published: cannot save it in " +
                                                config_.state_dir + " (" + unsaved->message + ")"});
        });
    });
}

void Peer::undo_publish(const Publication& p, const std::vector<Publication>& renamed) {
    // Gives back the names this publication had taken over, too.
    const Publication* current = catalog_.by_name(p.name);
    if (current && current->id == p.id && current->path == p.path) {
        catalog_.remove(p.name);
        state_->remove_publication(p.name);
        log_.warning("'" + p.name + "' is not published after all: the publish was undone");
    }
    for (const auto& old : renamed) {
        if (catalog_.by_name(old.name)) continue;   // published again meanwhile
        catalog_.put(old);
        state_->put_publication(old);
        if (link_) link_->announce(old);
        log_.info("'" + old.name + "' is published again under its old name");
    }
}

proto::Result<bool> Peer::unpublish(const std::string& name) {
    if (!catalog_.remove(name)) return Error{ErrorCode::not_found, "this peer does not publish '" + name + "'"};
    state_->remove_publication(name);
    if (link_) link_->withdraw(name);
    log_.info("unpublished '" + name + "'");
    return true;
}

namespace {

// A file `list` checks: a publication not yet known to have changed, as it
// was hashed. The worker fills `differs`; nothing else is shared.
struct ListedFile {
    std::string name;
    std::string path;
    FileStamp hashed;
    bool differs = false;   // out
};

}  // namespace

void Peer::list(ListDone done) {
    auto files = std::make_shared<std::vector<ListedFile>>();
    for (const auto& [name, p] : catalog_.all()) {
        if (!p.changed) files->push_back({name, p.path, stamp_of(p)});
    }
    const int rc = common::run_in_pool(
        loop_,
        [files] {
            for (auto& f : *files) f.differs = !unchanged_since(f.path, f.hashed);
        },
        [this, files, serving = std::weak_ptr<bool>(serving_), done = std::move(done)] {
            if (serving.expired()) return;
            for (const auto& f : *files) {
                // Only if that name still stands for the file as it was hashed:
                // it may have been published again while the worker looked.
                const Publication* p = catalog_.by_name(f.name);
                if (f.differs && p && p->path == f.path && stamp_of(*p) == f.hashed) {
                    catalog_.mark_changed(p->path);
                }
            }
            done(publications());
        });
    assert(rc == 0);   // uv_queue_work fails only for a null work callback
    (void)rc;
}

proto::Publications Peer::publications() const {
    proto::Publications out;
    for (const auto& [name, p] : catalog_.all()) {
        out.files.push_back({p.name, p.size, p.id, p.path, p.published_at, p.changed ? "changed" : "ok",
                             std::string(to_string(p.origin))});
    }
    return out;
}

void Peer::search(const std::string& text, SearchDone done) {
    link_->request(proto::Search{text}, [done = std::move(done)](proto::Result<proto::Envelope> reply) {
        if (!reply) return done(reply.error());
        done(proto::expect<proto::IndexReply>(*reply));
    });
}

proto::Status Peer::status() const {
    proto::Status s;
    s.name = config_.name;
    s.tracker = common::to_string(config_.tracker);
    s.connected = link_ && link_->connected();
    s.tracker_error = link_ ? link_->error() : "not started";
    s.address = link_ ? link_->observed_address() : "";
    s.port = uploads_.port();
    if (link_) {
        s.reachable = link_->reach().reachable;
        s.reach_reason = link_->reach().reason;
    }
    s.published = catalog_.all().size();
    s.uploads = uploads_.active_uploads();
    s.uploaded = uploads_.bytes_uploaded();
    if (transfers_) s.transfers = transfers_->summary();
    s.fetch_memory_used = buffers_->used();
    s.fetch_memory_limit = buffers_->budget();
    return s;
}

void Peer::check_reach(std::function<void(proto::Result<proto::Reachability>)> done) {
    link_->check_reach(std::move(done));
}

PeerGauges Peer::gauges() const {
    PeerGauges g;
    g.uploaded_bytes = uploads_.bytes_uploaded();
    g.upload_slots_in_use = uploads_.active_uploads();
    g.upload_slots = uploads_.max_uploads();
    g.upload_connections = uploads_.connection_count();
    g.connect_backs_taken = uploads_.connect_backs_taken();
    g.connect_backs_refused = uploads_.connect_backs_refused();
    g.publications = catalog_.all().size();
    g.tracker_connected = link_ && link_->connected();
    for (auto state : {TransferState::queued, TransferState::running, TransferState::waiting, TransferState::paused,
                       TransferState::failed, TransferState::done})
        g.transfers[std::string(to_string(state))] = 0;   // every state, zero or not
    if (transfers_) {
        for (const auto& [state, n] : transfers_->count_by_state()) g.transfers[std::string(to_string(state))] = n;
    }
    return g;
}

void Peer::start_transfers(std::vector<TransferRecord> stored) {
    transfer_rows_ = std::make_unique<TransferRows>(*state_);
    RegistryHooks hooks;
    hooks.lookup = [this](const std::string& name,
                          std::function<void(proto::Result<std::vector<proto::Holder>>)> done) {
        link_->request(proto::Lookup{name}, [done = std::move(done)](proto::Result<proto::Envelope> reply) {
            if (!reply) return done(reply.error());
            auto holders = proto::expect<proto::Holders>(*reply);
            if (!holders) return done(holders.error());
            done(std::move(holders->holders));
        });
    };
    hooks.own_reach = [this] {
        const auto& reach = link_->reach();
        return OwnReach{reach.reachable, reach.reason, link_->tracker_relay(), reach.checking};
    };
    hooks.hidden_source = [this](const proto::Holder& h, HiddenRoute route) { return hidden_source(h, route); };
    hooks.make_fetch = [this](FetchRequest request, Fetch::Callbacks callbacks) {
        request.metrics = &metrics_;
        return std::make_unique<Fetch>(loop_, log_, std::move(request), std::move(callbacks), buffers_,
                                       &download_bucket_);
    };
    hooks.completed = [this](const TransferRecord& r, const std::vector<std::string>& sources) {
        link_->notify(proto::Fetched{r.name, r.content_id, sources});
        if (r.share) share_fetched(r);
    };
    hooks.holding = [this](const TransferRecord& r, bool serve) { hold_partial(r, serve); };
    transfers_ = std::make_unique<TransferRegistry>(
        loop_, log_,
        RegistryConfig{config_.name, config_.max_active_fetches, config_.max_sources, config_.share_fetched,
                       config_.deadlines},
        *transfer_rows_, std::move(hooks));
    transfers_->restore(std::move(stored));   // read and checked by open_state
    link_->on_connected([this] { transfers_->tracker_connected(); });
    link_->on_reach_verdict([this] { transfers_->reach_known(); });
}

Source Peer::hidden_source(const proto::Holder& h, HiddenRoute route) {
    Source s{h.peer, h.address, h.port, h.partial()};
    if (route == HiddenRoute::reverse) {
        s.handed = reverse_->source(h.peer, h.id);
        s.via = Via::reverse;
        return s;
    }
    assert(route == HiddenRoute::relay);   // only when the tracker runs a relay (OwnReach::relay)
    auto self = std::make_shared<std::weak_ptr<HandedSockets>>();
    // The relay dial's own deadline (and its more precise error) comes first.
    s.handed = std::make_shared<HandedSockets>(make_relay_ask(*link_, relay_dialer_, h.peer, self), kMaxConnectBacks,
                                               kRelayDialDeadlineMs + 1'000);
    *self = s.handed;
    s.via = Via::relay;
    return s;
}

void Peer::share_fetched(const TransferRecord& done) {
    const auto what = "not sharing '" + done.name + "' (" + done.destination + "): ";
    if (auto why = share_conflict(catalog_.by_name(done.name), done)) return log_.warning(what + *why);
    // Served from its destination until the publication takes over: no 404 meanwhile.
    hold_completed(catalog_, done);
    auto stamp = std::make_shared<proto::Result<FileStamp>>(Error{ErrorCode::internal, "not stat'ed"});
    const auto rc = common::run_in_pool(
        loop_, [stamp, path = done.destination] { *stamp = stamp_file(path); },
        [this, serving = std::weak_ptr<bool>(serving_), stamp, done, what] {
            if (serving.expired()) return;
            // The publication (if any) is put below in this same callback: no gap.
            release_completed(catalog_, done);
            if (!*stamp) return log_.warning(what + stamp->error().message);
            // Asked again: the user may have published the name meanwhile.
            if (auto why = share_conflict(catalog_.by_name(done.name), done)) return log_.warning(what + *why);
            auto p = fetched_publication(done, **stamp);
            if (!p) return log_.warning(what + p.error().message);
            finish_publish(std::move(p), done.name, [this, what](proto::Result<proto::Published> r) {
                if (!r) log_.warning(what + r.error().message);
            });
        });
    if (rc != 0) {
        release_completed(catalog_, done);
        log_.warning(what + common::uv_error(rc));
    }
}

void Peer::hold_partial(const TransferRecord& r, bool serve) {
    const auto announceable = [this](std::string_view name) { return link_ && !catalog_.by_name(name); };
    const auto step = serve ? partials_.hold(r.id, partial_holding(r), announceable)
                            : partials_.release(r.id, r.content_id, announceable);
    // Unless a publication of the name took its place at the tracker.
    if (step.withdraw && link_ && !catalog_.by_name(*step.withdraw)) link_->withdraw(*step.withdraw);
    if (!step.serve) {
        catalog_.remove_partial(r.content_id);
        return;
    }
    if (step.announce) link_->announce(*step.serve);
    catalog_.put_partial(*step.serve);
}

void Peer::set_fetch_memory(std::uint64_t bytes) {
    config_.fetch_memory = bytes;
    buffers_->set_budget(bytes);
}

void Peer::set_upload_limits(UploadLimits limits) {
    config_.uploads = limits;
    uploads_.set_limits(limits);
}

void Peer::set_download_rate(std::uint64_t bytes_per_s) {
    config_.download_rate = bytes_per_s;
    download_bucket_.set_rate(bytes_per_s);
}

proto::Limits Peer::limits() const { return {config_.uploads.max_rate, config_.download_rate}; }

proto::Limits Peer::set_limits(const proto::SetLimits& change) {
    const auto before = limits();
    if (change.upload_rate) {
        auto uploads = config_.uploads;   // slots, deadline and connection cap kept
        uploads.max_rate = *change.upload_rate;
        set_upload_limits(uploads);
    }
    if (change.download_rate) set_download_rate(*change.download_rate);
    const auto after = limits();
    using common::format_rate;
    common::Changes changed;
    changed.note("upload", format_rate(before.upload_rate), format_rate(after.upload_rate));
    changed.note("download", format_rate(before.download_rate), format_rate(after.download_rate));
    log_.info("rate limits set by peerctl: " + changed.summary() +
              " (a reload applies the config file again)");
    return after;
}

}  // namespace peershare::peerd
