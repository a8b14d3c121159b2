// tracker/index.hpp — who is online and what they offer. Owned by the loop
// thread; no locks. Lookups are one hash probe by name. Names are interned:
// a name held by many peers is stored once, and a holding is a small fixed
// record (content id as 32 bytes, not hex), so 10,000 peers × 100 files fit
// in well under 200 MB. A peer leaving removes all of its files at once.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/errors.hpp"
#include "proto/hex.hpp"
#include "proto/messages.hpp"

namespace peershare::tracker {

using PeerId = std::uint64_t;

// Lets the maps be probed with a string_view, without building a string.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct PeerRecord {
    std::string name;
    std::string key;
    std::string address;
    std::uint16_t port = 0;
    std::int64_t since = 0;
    std::vector<const std::string*> files;   // interned names this peer holds
    // The last reachability check (tracker/reach_prober.hpp): nothing while
    // it runs or when the tracker does not check; why, in words.
    std::optional<bool> reachable;
    std::string reach_reason;
};

class Index {
public:
    explicit Index(std::size_t max_files_per_peer, std::size_t max_holders = kDefaultMaxHolders)
        : max_files_per_peer_(max_files_per_peer), max_holders_(max_holders) {}
    // Applies to later publishes; a peer already past a lowered cap keeps its files.
    void set_max_files_per_peer(std::size_t cap) { max_files_per_peer_ = cap; }
    // Holders one lookup answers (--max-holders), 1 … proto::kMaxLookupHolders.
    static constexpr std::size_t kDefaultMaxHolders = 50;
    void set_max_holders(std::size_t n);

    // Adds a live peer; the caller has made sure the name is free.
    PeerId add_peer(PeerRecord record);
    // Removes the peer and every file it published.
    void remove_peer(PeerId peer);
    const PeerRecord* peer(PeerId peer) const;
    std::optional<PeerId> peer_by_name(std::string_view name) const;
    // Records a reachability check's outcome (or nothing: unknown) for a live peer.
    void set_reach(PeerId peer, std::optional<bool> reachable, std::string reason);

    // Adds or replaces the peer's file of that name (a complete file, or a
    // partial holding when file.pieces_held is set). limit past the per-peer cap.
    proto::Result<bool> publish(PeerId peer, const proto::FileInfo& file);
    // False if the peer does not publish that name.
    bool unpublish(PeerId peer, std::string_view name);

    // The holders of `name`: all of them up to max_holders, else a random
    // mix of that many (so the fetchers of a popular file spread over its
    // holders), with at least one complete holder among them when there is one.
    std::vector<proto::Holder> lookup(std::string_view name);
    std::vector<proto::FileInfo> files_of(PeerId peer, std::size_t limit, bool* truncated) const;
    // Names containing `text` (all if empty), sorted by name, one entry per
    // distinct content under each name; at most `limit` entries.
    std::vector<proto::IndexEntry> search(std::string_view text, std::size_t limit,
                                          bool* truncated) const;
    std::vector<proto::PeerInfo> peers(std::size_t limit, bool* truncated) const;

    std::size_t peer_count() const { return peers_.size(); }
    std::size_t file_count() const { return file_count_; }
    std::size_t name_count() const { return names_.size(); }

private:
    std::vector<proto::IndexEntry> entries_of(const std::string& name) const;

    struct Holding {
        PeerId peer;
        std::uint64_t size;
        std::int64_t published_at;
        std::uint32_t piece_size;
        std::uint32_t pieces_held;   // 0: complete; else a partial holding of that many pieces
        proto::Digest id;
    };
    using Holdings = std::vector<Holding>;

    proto::FileInfo to_file_info(const std::string& name, const Holding& h) const;
    void drop_holding(const std::string* name, PeerId peer);

    std::size_t max_files_per_peer_;
    std::size_t max_holders_;
    std::mt19937_64 rng_{std::random_device{}()};   // the holders' mix
    PeerId next_peer_ = 1;
    std::size_t file_count_ = 0;
    std::unordered_map<PeerId, PeerRecord> peers_;
    std::unordered_map<std::string_view, PeerId, StringHash, std::equal_to<>> peer_names_;   // views into PeerRecord::name
    std::unordered_map<std::string, Holdings, StringHash, std::equal_to<>> names_;           // node-stable keys: interned names
};

}  // namespace peershare::tracker
