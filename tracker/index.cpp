// tracker/index.cpp — the in-memory index of peers and their files.
#include "tracker/index.hpp"

#include <algorithm>
#include <cassert>
#include <map>

#include "proto/limits.hpp"

namespace peershare::tracker {

PeerId Index::add_peer(PeerRecord record) {
    const PeerId id = next_peer_++;
    auto& stored = peers_.emplace(id, std::move(record)).first->second;
    peer_names_.emplace(stored.name, id);
    return id;
}

void Index::remove_peer(PeerId peer) {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    for (const std::string* name : it->second.files) drop_holding(name, peer);
    file_count_ -= it->second.files.size();
    peer_names_.erase(it->second.name);
    peers_.erase(it);
}

const PeerRecord* Index::peer(PeerId peer) const {
    auto it = peers_.find(peer);
    return it == peers_.end() ? nullptr : &it->second;
}

std::optional<PeerId> Index::peer_by_name(std::string_view name) const {
    auto it = peer_names_.find(name);
    if (it == peer_names_.end()) return std::nullopt;
    return it->second;
}

proto::Result<bool> Index::publish(PeerId peer, const proto::FileInfo& file) {
    auto pit = peers_.find(peer);
    if (pit == peers_.end()) return proto::Error{proto::ErrorCode::not_found, "unknown peer"};
    auto digest = proto::digest_from_hex(file.id);
    if (!digest) return proto::Error{proto::ErrorCode::bad_request, "bad content id"};
    auto& [name, holdings] = *names_.try_emplace(file.name).first;
    Holding record{peer, file.size, file.published_at, static_cast<std::uint32_t>(file.piece_size),
                   static_cast<std::uint32_t>(file.pieces_held.value_or(0)), *digest};
    auto mine = std::find_if(holdings.begin(), holdings.end(),
                             [&](const Holding& h) { return h.peer == peer; });
    if (mine != holdings.end()) {
        *mine = record;   // republished: new content or metadata, same name
        return true;
    }
    if (pit->second.files.size() >= max_files_per_peer_) {
        if (holdings.empty()) names_.erase(file.name);
        return proto::Error{proto::ErrorCode::limit, "a peer may publish at most " +
                                                         std::to_string(max_files_per_peer_) +
                                                         " files"};
    }
    holdings.push_back(record);
    pit->second.files.push_back(&name);
    ++file_count_;
    return true;
}

bool Index::unpublish(PeerId peer, std::string_view name) {
    auto pit = peers_.find(peer);
    auto nit = names_.find(name);
    if (pit == peers_.end() || nit == names_.end()) return false;
    auto& files = pit->second.files;
    auto fit = std::find(files.begin(), files.end(), &nit->first);
    if (fit == files.end()) return false;
    *fit = files.back();
    files.pop_back();
    --file_count_;
    drop_holding(&nit->first, peer);
    return true;
}

void Index::drop_holding(const std::string* name, PeerId peer) {
    auto nit = names_.find(*name);
    if (nit == names_.end()) return;
    auto& holdings = nit->second;
    std::erase_if(holdings, [&](const Holding& h) { return h.peer == peer; });
    if (holdings.empty()) names_.erase(nit);
}

proto::FileInfo Index::to_file_info(const std::string& name, const Holding& h) const {
    proto::FileInfo f{name, h.size, proto::to_hex(h.id), h.piece_size, h.published_at, {}};
    if (h.pieces_held > 0) f.pieces_held = h.pieces_held;
    return f;
}

void Index::set_max_holders(std::size_t n) {
    assert(n >= 1 && n <= proto::kMaxLookupHolders);
    max_holders_ = n;
}

std::vector<proto::Holder> Index::lookup(std::string_view name) {
    std::vector<proto::Holder> out;
    auto nit = names_.find(name);
    if (nit == names_.end()) return out;
    const Holdings& all = nit->second;
    // Bounded so the reply fits in a frame, and to spread the load: a random
    // max_holders of them (a partial Fisher-Yates shuffle of their indices).
    std::vector<std::size_t> pick(all.size());
    for (std::size_t i = 0; i < pick.size(); ++i) pick[i] = i;
    const auto n = std::min(all.size(), max_holders_);
    if (n < all.size()) {
        for (std::size_t i = 0; i < n; ++i) {
            std::uniform_int_distribution<std::size_t> next(i, pick.size() - 1);
            std::swap(pick[i], pick[next(rng_)]);
        }
        const auto complete = [&](std::size_t i) { return all[pick[i]].pieces_held == 0; };
        bool any = false;
        for (std::size_t i = 0; i < n && !any; ++i) any = complete(i);
        for (std::size_t i = n; i < pick.size() && !any; ++i) {
            if (complete(i)) {
                std::swap(pick[n - 1], pick[i]);   // one that can finish the download
                any = true;
            }
        }
        pick.resize(n);
        std::sort(pick.begin(), pick.end());   // in the order they first published
    }
    out.reserve(n);
    for (const auto i : pick) {
        const Holding& h = all[i];
        const PeerRecord& p = peers_.at(h.peer);
        proto::Holder holder{p.name, p.address, p.port, h.size, proto::to_hex(h.id), h.piece_size,
                             h.published_at, {}};
        if (h.pieces_held > 0) holder.pieces_held = h.pieces_held;
        holder.reachable = p.reachable;
        out.push_back(std::move(holder));
    }
    return out;
}

std::vector<proto::FileInfo> Index::files_of(PeerId peer, std::size_t limit, bool* truncated) const {
    std::vector<proto::FileInfo> out;
    auto pit = peers_.find(peer);
    if (pit == peers_.end()) return out;
    for (const std::string* name : pit->second.files) {
        for (const auto& h : names_.at(*name)) {
            if (h.peer == peer) out.push_back(to_file_info(*name, h));
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    *truncated = out.size() > limit;
    if (*truncated) out.resize(limit);
    return out;
}

// One entry per (name, content id): holders of different contents under one
// name are listed apart, so nobody takes one id for all of them.
std::vector<proto::IndexEntry> Index::search(std::string_view text, std::size_t limit,
                                             bool* truncated) const {
    std::vector<const std::string*> matches;
    for (const auto& [name, holdings] : names_) {
        if (name.find(text) != std::string::npos) matches.push_back(&name);
    }
    std::sort(matches.begin(), matches.end(), [](auto* a, auto* b) { return *a < *b; });
    std::vector<proto::IndexEntry> out;
    *truncated = false;
    for (const std::string* name : matches) {
        for (auto& entry : entries_of(*name)) {
            if (out.size() == limit) {
                *truncated = true;
                return out;
            }
            out.push_back(std::move(entry));
        }
    }
    return out;
}

std::vector<proto::IndexEntry> Index::entries_of(const std::string& name) const {
    // Linear in the holders: each content is found by its digest in a map,
    // and only the first kMaxListedHolders holders of each are named.
    std::vector<proto::IndexEntry> entries;   // in the order each content was first announced
    std::map<proto::Digest, std::size_t> entry_of;
    for (const auto& h : names_.at(name)) {
        auto [it, fresh] = entry_of.try_emplace(h.id, entries.size());
        if (fresh) entries.push_back(proto::IndexEntry{name, h.size, proto::to_hex(h.id), {}, 0});
        auto& e = entries[it->second];
        ++e.holder_count;
        if (h.pieces_held > 0) ++e.partial_count;
        if (e.holders.size() < proto::kMaxListedHolders) e.holders.push_back(peers_.at(h.peer).name);
    }
    return entries;
}

void Index::set_reach(PeerId peer, std::optional<bool> reachable, std::string reason) {
    auto it = peers_.find(peer);
    assert(it != peers_.end());
    it->second.reachable = reachable;
    it->second.reach_reason = std::move(reason);
}

std::vector<proto::PeerInfo> Index::peers(std::size_t limit, bool* truncated) const {
    std::vector<proto::PeerInfo> out;
    for (const auto& [id, p] : peers_) {
        out.push_back({p.name, p.address, p.port, p.files.size(), p.since, p.reachable, p.reach_reason});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    *truncated = out.size() > limit;
    if (*truncated) out.resize(limit);
    return out;
}

}  // namespace peershare::tracker
