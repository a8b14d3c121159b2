// daemon/catalog.cpp — the publications of this peer.
#include "daemon/catalog.hpp"

namespace peershare::peerd {

void Catalog::put(Publication p) {
    auto name = p.name;
    by_name_.insert_or_assign(std::move(name), std::move(p));
}

bool Catalog::remove(std::string_view name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return false;
    by_name_.erase(it);
    return true;
}

const Publication* Catalog::by_name(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second;
}

const Publication* Catalog::by_id(std::string_view id) const {
    // A handful to thousands of entries: a scan is cheap next to opening the file.
    for (const auto& [name, p] : by_name_) {
        if (p.id == id && !p.changed) return &p;
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
