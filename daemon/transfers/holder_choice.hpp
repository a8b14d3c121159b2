// daemon/transfers/holder_choice.hpp — which holders a fetch may use, from
// the tracker's answer to a lookup. Pure: no I/O, unit-tested.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "proto/errors.hpp"
#include "proto/control.hpp"
#include "proto/messages.hpp"

namespace peershare::peerd {

struct HolderFilter {
    std::string self;        // this peer's name: never a source for itself
    std::string from;        // only this holder, if set
    std::string id_prefix;   // only contents whose id starts so, if set
    std::string content_id;  // only this content (a transfer that already chose one), if set
};

// The holders of one content (non-empty, all with the same id), or the
// holders of several contents (the user must choose: Choices), or
// Error{not_found, one line saying why nobody qualifies}, or, when the
// tracker found every holder of the one content unreachable (Holder::
// reachable false; docs/protocol.md §7.10) and no other way to them exists,
// Error{unavailable, one line naming them and what would fix it} — at once,
// rather than after a connect timeout per holder.
//
// The holders returned are the direct sources: a holder the tracker found
// unreachable (reachable == false) is never one, even when others are
// reachable, since its address is unproven and may be anyone's (issue 9,
// "addresses taken on trust"). Holders whose reachability is unknown (a
// tracker run with --no-reach-check) are kept. unreachable_holders() gives
// the ones left out, for a way to them that does not dial their address.
using HolderChoice = std::variant<std::vector<proto::Holder>, proto::Choices, proto::Error>;

HolderChoice choose_holders(const std::string& name, const std::vector<proto::Holder>& all,
                            const HolderFilter& filter);

// The holders that pass `filter` but that the tracker found unreachable
// (reachable == false): never dialled directly; empty when there are none.
std::vector<proto::Holder> unreachable_holders(const std::vector<proto::Holder>& all, const HolderFilter& filter);

// How long a waiting transfer waits before asking the tracker again, after
// `attempts` lookups that found nobody: 1 s doubling to 60 s, plus up to 10 %
// jitter taken from `jitter` (0..1), so transfers do not ask in lockstep.
std::uint64_t lookup_backoff_ms(unsigned attempts, double jitter);

}  // namespace peershare::peerd
