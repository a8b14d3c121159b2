// tests/unit/test_index.cpp — the tracker's index (tracker/index.hpp) with
// partial holders (issue 10): what a lookup answers under --max-holders
// (docs/protocol.md §7.5), how search counts partial holders (§6.4), and
// that a holding leaves with its peer. Pure logic, no network.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tracker/index.hpp"

using peershare::proto::FileInfo;
using peershare::proto::Holder;
using peershare::tracker::Index;
using peershare::tracker::PeerId;
using peershare::tracker::PeerRecord;

namespace {

const std::string kId(64, 'a');
constexpr std::uint64_t kPieceSize = 256 * 1024, kPieces = 40;

// Adds peer `name` holding "file": complete, or `held` pieces of it.
PeerId add_holder(Index& index, const std::string& name, std::uint64_t held = 0) {
    const PeerId peer = index.add_peer(PeerRecord{name, std::string(64, 'k'), "127.0.0.1", 7000, 0, {}, {}, {}});
    FileInfo f{"file", kPieces * kPieceSize, kId, kPieceSize, 0, {}};
    if (held > 0) f.pieces_held = held;
    REQUIRE(index.publish(peer, f).ok());
    return peer;
}

std::vector<std::string> peers_of(const std::vector<Holder>& holders) {
    std::vector<std::string> out;
    for (const auto& h : holders) out.push_back(h.peer);
    return out;
}

}  // namespace

TEST_CASE("index: a lookup under --max-holders answers a random mix, marked, always with a complete holder") {
    Index index(100, 3);
    for (int i = 0; i < 9; ++i) add_holder(index, "p" + std::to_string(i), 1 + static_cast<std::uint64_t>(i));
    add_holder(index, "seed");   // the only complete holder, published last

    std::set<std::string> seen;
    for (int round = 0; round < 200; ++round) {
        const auto holders = index.lookup("file");
        REQUIRE(holders.size() == 3);
        int complete = 0;
        for (const auto& h : holders) {
            seen.insert(h.peer);
            if (h.peer == "seed") {
                ++complete;
                CHECK_FALSE(h.partial());
            } else {
                REQUIRE(h.partial());
                CHECK(*h.pieces_held == 1 + std::stoull(h.peer.substr(1)));
            }
        }
        CHECK(complete == 1);
        CHECK(holders.back().peer == "seed");   // in the order they first published
    }
    // Random: 200 answers of 2 partial holders out of 9 are not all the same.
    CHECK(seen.size() > 3);

    bool truncated = true;
    const auto entries = index.search("file", 10, &truncated);
    CHECK_FALSE(truncated);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].holder_count == 10);
    CHECK(entries[0].partial_count == 9);
}

TEST_CASE("index: under the cap every holder is answered in publish order; --max-holders 1 gives the complete one") {
    Index index(100, 5);
    add_holder(index, "a", 3);
    add_holder(index, "b");
    add_holder(index, "c", 7);
    CHECK(peers_of(index.lookup("file")) == std::vector<std::string>{"a", "b", "c"});
    index.set_max_holders(1);
    for (int round = 0; round < 20; ++round) CHECK(peers_of(index.lookup("file")) == std::vector<std::string>{"b"});
}

TEST_CASE("index: a partial holding becomes complete when published again, and leaves with its peer") {
    Index index(100, 50);
    add_holder(index, "seed");
    bool truncated = false;
    const PeerId fetcher = add_holder(index, "fetcher", 4);
    auto holders = index.lookup("file");
    REQUIRE(holders.size() == 2);
    CHECK(holders[1].partial());
    CHECK(index.search("", 10, &truncated)[0].partial_count == 1);

    REQUIRE(index.publish(fetcher, FileInfo{"file", kPieces * kPieceSize, kId, kPieceSize, 0, {}}).ok());
    holders = index.lookup("file");
    REQUIRE(holders.size() == 2);
    CHECK_FALSE(holders[1].partial());
    CHECK(index.search("", 10, &truncated)[0].partial_count == 0);

    REQUIRE(index.publish(fetcher, FileInfo{"file", kPieces * kPieceSize, kId, kPieceSize, 0, 9}).ok());
    index.remove_peer(fetcher);
    CHECK(peers_of(index.lookup("file")) == std::vector<std::string>{"seed"});
    CHECK(index.search("", 10, &truncated)[0].partial_count == 0);
}
