// daemon/peer.cpp — publish, unpublish, list, search, status and fetch.
#include "daemon/peer.hpp"

#include <algorithm>
#include <ctime>
#include <set>

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;

struct Peer::Transfer {
    std::string name;
    std::unique_ptr<Fetch> fetch;   // empty while looking up
    FetchCallbacks callbacks;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
};

Peer::Peer(uv_loop_t* loop, const common::Log& log, PeerConfig config)
    : loop_(loop), log_(log), config_(std::move(config)), store_(config_.state_dir),
      uploads_(loop, catalog_, log, config_.uploads) {
    uploads_.count_into(&metrics_);
    catalog_.on_changed([this](const Publication& p) {
        log_.warning("'" + p.name + "' (" + p.path + ") changed on disk: no longer served; publish it again");
        if (link_) link_->withdraw(p.name);
    });
}

Peer::~Peer() { stop(); }

proto::Result<bool> Peer::start() {
    if (auto ok = store_.open(); !ok) return ok.error();
    auto key = store_.peer_key();
    if (!key) return key.error();
    restore_publications();
    if (auto ok = uploads_.start(config_.listen); !ok) return ok.error();
    link_ = std::make_unique<TrackerLink>(
        loop_, log_, LinkConfig{config_.tracker, config_.name, *key, uploads_.port(), config_.advertise},
        catalog_);
    link_->start();
    return true;
}

void Peer::stop() {
    serving_.reset();
    for (auto& [id, job] : hashing_) cancel_hash(*job);
    hashing_.clear();
    auto transfers = std::move(transfers_);
    transfers_.clear();
    for (auto& [id, t] : transfers) {
        if (t->callbacks.done) t->callbacks.done(Error{ErrorCode::unavailable, "peerd is stopping"});
    }
    transfers.clear();
    if (link_) link_->stop();
    uploads_.stop();
    save_state();
}

void Peer::restore_publications() {
    auto loaded = store_.load_publications();
    if (!loaded) {
        log_.error(loaded.error().message);
        return;
    }
    for (auto& p : *loaded) {
        // Re-check each file: one that changed while we were down is kept but not served.
        p.changed = !unchanged_since(p.path, stamp_of(p));
        if (p.changed) log_.warning("'" + p.name + "' (" + p.path + ") changed while peerd was down: not served");
        catalog_.put(std::move(p));
    }
    log_.info("restored " + std::to_string(catalog_.all().size()) + " publications from " + store_.dir());
}

void Peer::save_state() {
    if (auto ok = store_.write_publications(StateStore::serialize(catalog_)); !ok) {
        log_.error("cannot save state: " + ok.error().message);
    }
}

void Peer::publish(const std::string& path, const std::string& name, PublishDone done) {
    const auto job_id = next_hash_++;
    auto job = hash_file(loop_, path, config_.workers,
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
    for (const auto& [other, q] : catalog_.all()) {
        if (q.path == p.path && other != name) renamed.push_back(q);
    }
    for (const auto& old : renamed) {
        catalog_.remove(old.name);
        if (link_) link_->withdraw(old.name);
        log_.info("'" + old.name + "' is now published as '" + name + "'");
    }
    catalog_.put(p);
    save_state();
    log_.info("published '" + name + "' (" + p.path + ", " + std::to_string(p.size) + " bytes, id " + p.id + ")");
    if (!link_) return done(proto::Published{p.info(), p.path});
    link_->announce(p, [this, p, renamed = std::move(renamed), done](proto::Result<bool> announced) {
        if (announced) return done(proto::Published{p.info(), p.path});
        // Refused (a limit of the tracker's): do not keep what nobody can
        // find, and give back the names this publication had taken over.
        const Publication* current = catalog_.by_name(p.name);
        if (current && current->id == p.id && current->path == p.path) catalog_.remove(p.name);
        for (const auto& old : renamed) {
            if (catalog_.by_name(old.name)) continue;   // published again meanwhile
            catalog_.put(old);
            if (link_) link_->announce(old);
            log_.info("'" + old.name + "' is published again under its old name");
        }
        save_state();
        done(announced.error());
    });
}

proto::Result<bool> Peer::unpublish(const std::string& name) {
    if (!catalog_.remove(name)) return Error{ErrorCode::not_found, "this peer does not publish '" + name + "'"};
    save_state();
    if (link_) link_->withdraw(name);
    log_.info("unpublished '" + name + "'");
    return true;
}

namespace {

// The files `list` checks: each publication not yet known to have changed,
// as it was hashed. The worker fills `differs`; nothing else is shared.
struct ListJob {
    struct File {
        std::string name;
        std::string path;
        FileStamp hashed;
        bool differs = false;   // out
    };
    uv_work_t work{};
    std::vector<File> files;
    std::function<void(ListJob&)> after;
};

}  // namespace

void Peer::list(ListDone done) {
    auto job = std::make_unique<ListJob>();
    for (const auto& [name, p] : catalog_.all()) {
        if (!p.changed) job->files.push_back({name, p.path, stamp_of(p)});
    }
    job->after = [this, serving = std::weak_ptr<bool>(serving_), done = std::move(done)](ListJob& j) {
        if (serving.expired()) return;
        for (const auto& f : j.files) {
            // Only if that name still stands for the file as it was hashed:
            // it may have been published again while the worker looked.
            const Publication* p = catalog_.by_name(f.name);
            if (f.differs && p && p->path == f.path && stamp_of(*p) == f.hashed) {
                catalog_.mark_changed(p->path);
            }
        }
        done(publications());
    };
    job->work.data = job.get();
    uv_queue_work(
        loop_, &job.release()->work,
        [](uv_work_t* w) {
            for (auto& f : static_cast<ListJob*>(w->data)->files) f.differs = !unchanged_since(f.path, f.hashed);
        },
        [](uv_work_t* w, int) {
            std::unique_ptr<ListJob> j(static_cast<ListJob*>(w->data));
            j->after(*j);
        });
}

proto::Publications Peer::publications() const {
    proto::Publications out;
    for (const auto& [name, p] : catalog_.all()) {
        out.files.push_back({p.name, p.size, p.id, p.path, p.published_at, p.changed ? "changed" : "ok"});
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
    s.published = catalog_.all().size();
    s.uploads = uploads_.active_uploads();
    for (const auto& [id, t] : transfers_) s.transfers.push_back({t->name, t->done, t->total});
    return s;
}

PeerGauges Peer::gauges() const {
    PeerGauges g;
    g.upload_slots_in_use = uploads_.active_uploads();
    g.upload_slots = uploads_.max_uploads();
    g.upload_connections = uploads_.connection_count();
    g.publications = catalog_.all().size();
    g.tracker_connected = link_ && link_->connected();
    g.transfers["running"] = transfers_.size();   // the lead's hook: transfer states (issue 8)
    return g;
}

std::uint64_t Peer::fetch(const proto::FetchFile& request, FetchCallbacks callbacks) {
    const auto id = next_transfer_++;
    auto transfer = std::make_unique<Transfer>();
    transfer->name = request.name;
    transfer->callbacks = std::move(callbacks);
    transfers_.emplace(id, std::move(transfer));
    link_->request(proto::Lookup{request.name}, [this, id, request](proto::Result<proto::Envelope> reply) {
        if (!transfers_.contains(id)) return;   // cancelled meanwhile
        auto holders = reply ? proto::expect<proto::Holders>(*reply) : proto::Result<proto::Holders>(reply.error());
        if (!holders) {
            auto done = std::move(transfers_.at(id)->callbacks.done);
            end_transfer(id);
            return done(holders.error());
        }
        start_transfer(id, request, holders->holders);
    });
    return id;
}

void Peer::start_transfer(std::uint64_t transfer_id, const proto::FetchFile& request,
                          const std::vector<proto::Holder>& all_holders) {
    Transfer& t = *transfers_.at(transfer_id);
    const auto fail = [&](ErrorCode code, std::string message) {
        auto done = std::move(t.callbacks.done);
        end_transfer(transfer_id);
        done(Error{code, std::move(message)});
    };
    std::vector<proto::Holder> holders;
    bool only_self = false;
    for (const auto& h : all_holders) {
        if (h.peer == config_.name) {   // never download from ourselves
            only_self = true;
            continue;
        }
        if (!request.from.empty() && h.peer != request.from) continue;
        if (!h.id.starts_with(request.id_prefix)) continue;
        holders.push_back(h);
    }
    if (holders.empty()) {
        std::string why = "no live peer offers '" + request.name + "'";
        if (!request.from.empty()) why += " from " + request.from;
        if (!request.id_prefix.empty()) why += " with id " + request.id_prefix + "…";
        if (only_self && all_holders.size() == 1) why = "'" + request.name + "' is published only by this peer";
        return fail(ErrorCode::not_found, why + "; see `peerctl search`");
    }
    std::set<std::string> ids;
    for (const auto& h : holders) ids.insert(h.id);
    if (ids.size() > 1) {
        auto choices = std::move(t.callbacks.choices);
        end_transfer(transfer_id);
        return choices(proto::Choices{request.name, holders});
    }
    FetchRequest fr;
    fr.name = request.name;
    fr.id = holders.front().id;
    fr.size = holders.front().size;
    fr.piece_size = holders.front().piece_size;
    fr.destination = request.output;
    fr.force = request.force;
    fr.metrics = &metrics_;
    for (const auto& h : holders) fr.sources.push_back({h.peer, h.address, h.port});
    t.total = fr.size;
    t.fetch = std::make_unique<Fetch>(
        loop_, log_, fr,
        [this, transfer_id](const FetchProgress& p) {
            auto it = transfers_.find(transfer_id);
            if (it == transfers_.end()) return;
            it->second->done = p.done;
            proto::Progress msg{p.done, p.total, p.rate, p.stalled_ms, {}};
            for (const auto& s : p.sources) msg.sources.push_back({s.peer, s.bytes, s.rate, s.dropped, s.why});
            if (it->second->callbacks.progress) it->second->callbacks.progress(msg);
        },
        [this, transfer_id, fr](proto::Result<FetchResult> result) {
            auto it = transfers_.find(transfer_id);
            if (it == transfers_.end()) return;
            auto done = std::move(it->second->callbacks.done);
            // The Fetch may not be destroyed inside its own callback chain by us
            // before we are done reading `result`; keep it until return.
            auto fetch = std::move(it->second->fetch);
            transfers_.erase(it);
            if (!result) return done(result.error());
            link_->notify(proto::Fetched{fr.name, fr.id, result->sources_used});
            log_.info("fetched '" + fr.name + "' to " + result->path);
            done(proto::FetchedFile{fr.name, result->path, result->bytes, fr.id, result->seconds,
                                    result->sources_used});
        });
    t.fetch->start();
}

void Peer::cancel_fetch(std::uint64_t transfer) {
    auto it = transfers_.find(transfer);
    if (it == transfers_.end()) return;
    it->second->callbacks = {};   // the requester is gone: nobody to tell
    end_transfer(transfer);       // destroying the Fetch cancels it and removes its temporary file
}

void Peer::end_transfer(std::uint64_t transfer_id) { transfers_.erase(transfer_id); }

void Peer::set_upload_limits(UploadLimits limits) {
    config_.uploads = limits;
    uploads_.set_limits(limits);
}

}  // namespace peershare::peerd
