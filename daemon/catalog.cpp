// daemon/catalog.cpp — the publications of this peer.
#include "daemon/catalog.hpp"

#include <cassert>

namespace peershare::peerd {

std::string_view to_string(Publication::Origin origin) {
    return origin == Publication::Origin::fetched ? "fetched" : "published";
}

std::optional<Publication::Origin> parse_origin(std::string_view text) {
    if (text == "published") return Publication::Origin::published;
    if (text == "fetched") return Publication::Origin::fetched;
    return std::nullopt;
}

void Catalog::put(Publication p) {
    remove(p.name);
    auto name = p.name;
    const auto [it, inserted] = by_name_.emplace(std::move(name), std::move(p));
    by_id_.emplace(it->second.id, &it->second);
    by_path_.emplace(it->second.path, &it->second);
}

bool Catalog::remove(std::string_view name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return false;
    forget(it->second);
    by_name_.erase(it);
    return true;
}

namespace {
// Removes the entry of `key` that points at `p`.
void erase_entry(std::multimap<std::string, const Publication*, std::less<>>& index, const std::string& key,
                 const Publication& p) {
    auto [first, last] = index.equal_range(key);
    for (auto it = first; it != last; ++it) {
        if (it->second == &p) {
            index.erase(it);
            return;
        }
    }
}
}  // namespace

void Catalog::forget(const Publication& p) {
    erase_entry(by_id_, p.id, p);
    erase_entry(by_path_, p.path, p);
}

const Publication* Catalog::by_name(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second;
}

const Publication* Catalog::by_id(std::string_view id) const {
    // Asked by every upload request: an index, not a scan of every publication.
    auto [first, last] = by_id_.equal_range(id);
    for (auto it = first; it != last; ++it) {
        if (!it->second->changed) return it->second;
    }
    return nullptr;
}

std::vector<std::string> Catalog::names_of_path(std::string_view path) const {
    std::vector<std::string> out;
    auto [first, last] = by_path_.equal_range(path);
    for (auto it = first; it != last; ++it) out.push_back(it->second->name);
    return out;
}

void Catalog::put_partial(Publication holding) {
    // One bit per piece. A content of 0 bytes has no pieces: its stand-in
    // while it is shared after a fetch holds an empty bitfield (complete).
    assert(holding.have.size() == holding.pieces.size());
    auto id = holding.id;
    partials_.insert_or_assign(std::move(id), std::move(holding));
}

void Catalog::remove_partial(std::string_view id) {
    if (auto it = partials_.find(id); it != partials_.end()) partials_.erase(it);
}

bool Catalog::remove_partial_at(std::string_view id, std::string_view path) {
    auto it = partials_.find(id);
    if (it == partials_.end() || it->second.path != path) return false;
    partials_.erase(it);
    return true;
}

const Publication* Catalog::holding(std::string_view id) const {
    if (const Publication* p = by_id(id)) return p;
    auto it = partials_.find(id);
    return it == partials_.end() ? nullptr : &it->second;
}

void Catalog::mark_changed(std::string_view path) {
    for (const auto& name : names_of_path(path)) {
        auto& p = by_name_.find(name)->second;
        if (p.changed) continue;
        p.changed = true;
        if (on_changed_) on_changed_(p);
    }
}

}  // namespace peershare::peerd
