// tests/unit/test_write_queue.cpp — the state writer's queue: one write per
// row, later writes replace or merge into earlier ones, a failed batch goes
// back ahead of newer writes, which win.
#include <doctest/doctest.h>

#include "daemon/state/write_queue.hpp"

using namespace peershare;
using namespace peershare::peerd;

namespace {

PutPublication put_pub(std::string name, std::string path) {
    Publication p;
    p.name = std::move(name);
    p.path = std::move(path);
    return {p};
}

PutTransfer put_transfer(std::uint64_t id, std::uint64_t pieces) {
    TransferRecord r;
    r.id = id;
    r.name = "t" + std::to_string(id);
    r.have = proto::Bitfield(pieces);
    return {r};
}

TransferProgress progress(std::uint64_t id, std::uint64_t pieces, std::uint64_t set, TransferState state) {
    TransferProgress p;
    p.id = id;
    p.have = proto::Bitfield(pieces);
    p.have.set(set);
    p.state = state;
    return p;
}

}  // namespace

TEST_CASE("write queue: a later write to a row replaces the queued one in its place") {
    WriteQueue q;
    q.push(put_pub("a", "/1"));
    q.push(put_pub("b", "/2"));
    q.push(put_pub("a", "/3"));
    CHECK(q.size() == 2);
    q.push(RemovePublication{"b"});
    CHECK(q.size() == 2);
    CHECK(q.urgent());
    const auto writes = q.take();
    REQUIRE(writes.size() == 2);
    CHECK(std::get<PutPublication>(writes[0]).publication.path == "/3");
    CHECK(std::get<RemovePublication>(writes[1]).name == "b");
    CHECK(q.empty());
    CHECK_FALSE(q.urgent());
}

TEST_CASE("write queue: progress merges into a queued record, replaces progress, and is dropped after a removal") {
    WriteQueue q;
    q.push(progress(1, 10, 0, TransferState::running));
    CHECK_FALSE(q.urgent());   // progress alone may wait
    q.push(progress(1, 10, 1, TransferState::running));
    CHECK(q.size() == 1);
    q.push(put_transfer(2, 10));
    CHECK(q.urgent());
    q.push(progress(2, 10, 5, TransferState::paused));
    q.push(RemoveTransfer{3});
    q.push(progress(3, 10, 5, TransferState::running));
    const auto writes = q.take();
    REQUIRE(writes.size() == 3);
    const auto& p1 = std::get<TransferProgress>(writes[0]);
    CHECK(p1.have.test(1));
    CHECK_FALSE(p1.have.test(0));   // replaced, not or-ed: the caller's bitfield is the truth
    const auto& r2 = std::get<PutTransfer>(writes[1]).record;
    CHECK(r2.have.test(5));
    CHECK(r2.state == TransferState::paused);
    CHECK(std::holds_alternative<RemoveTransfer>(writes[2]));
}

TEST_CASE("write queue: a put after a queued progress makes the row urgent; id reservations keep the largest") {
    WriteQueue q;
    q.push(progress(1, 4, 0, TransferState::running));
    CHECK_FALSE(q.urgent());
    q.push(put_transfer(1, 4));
    CHECK(q.urgent());
    CHECK(q.size() == 1);
    q.push(ReserveTransferIds{5});
    q.push(ReserveTransferIds{3});
    const auto writes = q.take();
    REQUIRE(writes.size() == 2);
    CHECK(std::get<ReserveTransferIds>(writes[1]).next == 5);
}

TEST_CASE("write queue: a failed batch goes back first; newer writes to its rows win") {
    WriteQueue q;
    q.push(put_pub("a", "/old"));
    q.push(put_pub("b", "/b"));
    q.push(put_transfer(7, 8));
    auto failed = q.take();
    q.push(put_pub("a", "/new"));
    q.push(progress(7, 8, 3, TransferState::running));
    q.put_back(std::move(failed));
    const auto writes = q.take();
    REQUIRE(writes.size() == 3);
    CHECK(std::get<PutPublication>(writes[0]).publication.path == "/new");
    CHECK(std::get<PutPublication>(writes[1]).publication.name == "b");
    CHECK(std::get<PutTransfer>(writes[2]).record.have.test(3));   // the newer progress, merged
}
