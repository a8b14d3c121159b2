// daemon/catalog.cpp — the publications of this peer.
#include "daemon/catalog.hpp"

namespace peershare::peerd {

void Catalog::put(Publication p) {
    remove(p.name);
    auto name = p.name;
    const auto [it, inserted] = by_name_.emplace(std::move(name), std::move(p));
    by_id_.emplace(it->second.id, &it->second);
}

bool Catalog::remove(std::string_view name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return false;
    forget_id(it->second);
    by_name_.erase(it);
    return true;
}

void Catalog::forget_id(const Publication& p) {
    auto [first, last] = by_id_.equal_range(p.id);
    for (auto it = first; it != last; ++it) {
        if (it->second == &p) {
            by_id_.erase(it);
            return;
        }
    }
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

void Catalog::mark_changed(std::string_view path) {
    for (auto& [name, p] : by_name_) {
        if (p.path != path || p.changed) continue;
        p.changed = true;
        if (on_changed_) on_changed_(p);
    }
}

}  // namespace peershare::peerd
