// daemon/catalog.hpp — what this peer publishes: name → local file, its
// content id and piece hashes, and the size and mtime it had when hashed.
// Owned by the loop thread. The upload server serves only what is here, by
// content id; a file whose size or mtime no longer match is not served.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/bitfield.hpp"
#include "proto/content.hpp"
#include "proto/messages.hpp"

namespace peershare::peerd {

struct Publication {
    std::string name;
    std::string path;              // absolute
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;     // as hashed; a change means "re-hash before serving"
    std::string id;                // content id, hex
    std::uint64_t piece_size = 0;
    std::vector<proto::Digest> pieces;
    std::int64_t published_at = 0;
    bool changed = false;          // found changed or missing on disk since hashing
    // How it came to be: the user published it, or peerd shared a file it
    // fetched (--share-fetched), without hashing it again.
    enum class Origin { published, fetched } origin = Origin::published;
    // Pieces held, for a partial holding (a transfer's partial file, never
    // persisted as a publication): size 0 for a publication, whose every
    // piece is there.
    proto::Bitfield have;

    bool partial() const { return have.size() > 0 && !have.all(); }

    proto::FileInfo info() const {
        proto::FileInfo f{name, size, id, piece_size, published_at, {}};
        if (partial()) f.pieces_held = have.count();
        return f;
    }
    proto::PieceList piece_list() const { return {size, piece_size, pieces}; }
};

// "published", "fetched" (peerctl list, the state database).
std::string_view to_string(Publication::Origin origin);
// The inverse; nothing for anything else.
std::optional<Publication::Origin> parse_origin(std::string_view text);

class Catalog {
public:
    Catalog() = default;
    Catalog(const Catalog&) = delete;   // by_id_ points into by_name_
    Catalog& operator=(const Catalog&) = delete;

    // Adds or replaces the publication of that name.
    void put(Publication p);
    bool remove(std::string_view name);
    const Publication* by_name(std::string_view name) const;
    // A publication with that content id that is not known to have changed.
    const Publication* by_id(std::string_view id) const;
    // The names published from `path` (an index: a publish asks it, and must
    // not scan 10,000 publications to answer).
    std::vector<std::string> names_of_path(std::string_view path) const;
    // Marks every publication of `path` changed (the upload server saw it
    // differ) and tells the observer, which withdraws them from the tracker.
    void mark_changed(std::string_view path);
    void on_changed(std::function<void(const Publication&)> observer) { on_changed_ = std::move(observer); }
    const std::map<std::string, Publication, std::less<>>& all() const { return by_name_; }

    // Partial holdings (issue 10): the verified pieces of a running or
    // stopped transfer, served from its partial file by content id until the
    // file is complete (then, shared, it is a publication). One per content
    // id; `holding.have` has one bit per piece (none for a 0-byte content).
    // Not in all(), not persisted here.
    void put_partial(Publication holding);
    void remove_partial(std::string_view id);
    // Removes the partial holding of `id` only if it is served from `path`
    // (another transfer of that content may have taken its place); whether it did.
    bool remove_partial_at(std::string_view id, std::string_view path);
    // The complete publication of `id` if there is one, else the partial holding.
    const Publication* holding(std::string_view id) const;
    const std::map<std::string, Publication, std::less<>>& partials() const { return partials_; }

private:
    void forget(const Publication& p);

    std::map<std::string, Publication, std::less<>> by_name_;
    // Content id → its publications (several names may share one content);
    // map nodes do not move, so the pointers stay valid until removal.
    std::multimap<std::string, const Publication*, std::less<>> by_id_;
    std::multimap<std::string, const Publication*, std::less<>> by_path_;   // likewise
    std::function<void(const Publication&)> on_changed_;
    std::map<std::string, Publication, std::less<>> partials_;   // by content id
};

}  // namespace peershare::peerd
