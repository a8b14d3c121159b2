// daemon/fetch/piece_picker.hpp — which piece to ask of which source next
// (docs/design.md, "The life of a transfer"). Pure: no I/O; the time comes in as an argument
// and randomness through an injected function, so every rule is unit-tested
// on plain data (tests/unit/test_piece_picker.cpp).
//
// For a source with a free request slot, pick() chooses, in this order:
// 1. a piece started before and put back (its request failed or was
//    aborted, its copy was bad, or its re-verification failed), oldest first;
// 2. the rarest piece never asked for that the source has (fewest live
//    sources have it), a random one among the equally rare;
// 3. endgame: when nothing is left to ask for, a piece another source has
//    been sending for at least `endgame_after_ms` and nobody else is: the
//    first good copy wins, the engine aborts the other request.
// A source is not asked for a piece it once sent wrong while another live
// source has the piece and has not sent it wrong too.
//
// Which pieces a source has is a proto::Bitfield: all ones for complete
// holders; a partial holder's grows as it verifies pieces (update_source,
// from its /have) and loses a piece it said "not here yet" for (lacks).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "proto/bitfield.hpp"

namespace peershare::peerd {

class PiecePicker {
public:
    // missing: to be asked for; checking: claimed to be in the partial file,
    // being re-verified; active: asked of one or more sources; verifying: a
    // copy is being hashed and written; done: verified and written.
    enum class State : std::uint8_t { missing, checking, active, verifying, done };
    // Uniform in [0, n), n > 0.
    using Random = std::function<std::uint64_t(std::uint64_t n)>;

    PiecePicker(std::uint64_t pieces, std::uint64_t endgame_after_ms, Random random);

    std::uint64_t size() const { return states_.size(); }
    State state(std::uint64_t piece) const { return states_.at(piece); }
    std::uint64_t done() const { return done_; }
    bool complete() const { return done_ == states_.size(); }
    // Some piece waits to be asked for (so some source is needed).
    bool wants_more() const;

    // A new live source; `has` has size() pieces (asserted). Returns its index.
    std::size_t add_source(proto::Bitfield has);
    // The source is gone for good. Its requests must have been ended first (asserted).
    void drop_source(std::size_t source);
    // What a live source has now (its /have again); `has` has size() pieces.
    // Requests already made of it stand.
    void update_source(std::size_t source, proto::Bitfield has);
    // The source does not have `piece` after all ("not here yet"); its
    // request for it must have been ended first.
    void lacks(std::size_t source, std::uint64_t piece);
    // Pieces the source has and that still wait to be asked for (so asking
    // what it has again is worth it when this is 0).
    bool has_wanted(std::size_t source) const;

    // missing → checking (the engine re-verifies it).
    void check(std::uint64_t piece);
    // checking → done, or → missing (put back: started first).
    void checked(std::uint64_t piece, bool good);

    // The next piece to ask of `source` at time `now_ms`, recorded as its
    // request (state active), or nullopt.
    std::optional<std::uint64_t> pick(std::size_t source, std::uint64_t now_ms);
    // The request of `source` for `piece` ended without a copy: the piece is
    // put back unless another request for it runs.
    void request_ended(std::uint64_t piece, std::size_t source);
    // A whole copy came from `source`: true and state verifying, with the
    // other sources still sending it in `others` (their requests are ended
    // here; the engine aborts them); false if the piece is not active any
    // more (a duplicate that lost the race; the request is ended).
    bool received(std::uint64_t piece, std::size_t source, std::vector<std::size_t>& others);
    // verifying → done.
    void verified(std::uint64_t piece);
    // verifying → missing (put back), and `source` is not asked for it again
    // while another live source can give it.
    void rejected(std::uint64_t piece, std::size_t source);

    // Requests running for `piece`.
    std::size_t requests_for(std::uint64_t piece) const;
    // The pieces `source` is being asked for, oldest request first.
    std::vector<std::uint64_t> requests_of(std::size_t source) const;

private:
    struct Request {
        std::uint64_t piece;
        std::size_t source;
        std::uint64_t started_ms;
    };

    bool usable(std::uint64_t piece, std::size_t source) const;
    std::optional<std::uint64_t> pick_started(std::size_t source);
    std::optional<std::uint64_t> pick_rarest(std::size_t source);
    std::optional<std::uint64_t> pick_endgame(std::size_t source, std::uint64_t now_ms);
    void put_back(std::uint64_t piece);
    void to_bucket(std::uint64_t piece);
    void from_bucket(std::uint64_t piece);
    void set_availability(std::uint64_t piece, std::uint32_t availability);
    void end_request(std::uint64_t piece, std::size_t source);

    std::uint64_t endgame_after_ms_;
    Random random_;
    std::vector<State> states_;
    std::uint64_t done_ = 0;
    std::vector<proto::Bitfield> has_;  // per source
    std::vector<bool> live_;            // per source
    std::vector<std::uint32_t> availability_;  // per piece: live sources that have it
    // Pieces never asked for (state missing), by availability; position_ is
    // each one's index in its bucket (kNowhere when in none).
    std::vector<std::vector<std::uint64_t>> buckets_;
    std::vector<std::uint64_t> position_;
    std::deque<std::uint64_t> started_;  // put back, oldest first (state missing)
    std::vector<Request> requests_;       // running, oldest first
    std::set<std::pair<std::uint64_t, std::size_t>> rejected_;  // (piece, source)
};

}  // namespace peershare::peerd
