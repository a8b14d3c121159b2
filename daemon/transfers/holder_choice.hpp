// daemon/transfers/holder_choice.hpp — which holders a fetch may use, from
// the tracker's answer to a lookup. Pure: no I/O, unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>
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

// What this peer knows of its own reach, for the holders the tracker found
// unreachable (issue 11, docs/protocol.md §7.10–§7.12).
struct OwnReach {
    std::optional<bool> reachable;   // TrackerLink::reach(): nothing while unknown
    std::string reason;              // its reason, in words
    bool relay = false;              // the tracker runs a relay (welcome.relay)
    // The tracker is checking our reachability now (after a hello; at most
    // proto::kReachDeadlineMs): `reachable` is nothing but soon will not be.
    bool checking = false;
};

// How a holder the tracker found unreachable can still be a source:
// reverse — we are reachable, so it connects back to us (the tracker passes
// the ask); relay — we are not (or not known to be), and a relay can be
// asked; none — neither: it is left out.
enum class HiddenRoute { reverse, relay, none };
HiddenRoute hidden_route(const OwnReach& own);
std::string_view to_string(HiddenRoute route);   // "reverse", "relay", "none"

// How a holder the tracker did not find unreachable (reachable, or not
// checked) can still be a source after a direct connect to it failed
// (refused, connect timeout, no route; FetchRequest::fallback): reverse when
// we are known to be reachable; relay when we are known not to be and the
// tracker runs a relay; none while our own reachability is unknown (a
// tracker run with --no-reach-check, or its check still running), so a
// tracker that checks nothing never gets a connect-back asked of it.
HiddenRoute fallback_route(const OwnReach& own);

// When fallback_route(own) is none: why, one clause for a source's drop
// reason, naming what would fix it ("no other way to it: this peer is
// unreachable too (…), so it cannot connect back, and the tracker runs no
// relay; …"); "" otherwise.
std::string no_fallback_reason(const OwnReach& own);

// When `own` gives no route (hidden_route none): the one line that says
// `holders` (every one unreachable, at least one) cannot be fetched from,
// which side is unreachable (they, and this peer too, or not yet known) and
// what would fix it (open/forward the upload port, peerd --advertise, or a
// tracker relay: trackerd --relay-listen).
std::string no_route_message(const std::string& name, const std::vector<proto::Holder>& holders, const OwnReach& own);

// With `own` giving a route to hidden holders (hidden_route reverse or
// relay), they are kept in the holders returned (reachable == false: the
// caller reaches them that way, never at their address), and every holder
// hidden is not an error. Without one: as described above, with the error's
// line from no_route_message.
HolderChoice choose_holders(const std::string& name, const std::vector<proto::Holder>& all,
                            const HolderFilter& filter, const OwnReach& own = {});

// Whether a fetch that got `choice` (from choose_holders with `own`) should
// wait for the tracker's verdict on our own reachability and choose again:
// the check is still running (own.checking) and every holder is unreachable,
// so the verdict may give a route (the choice is the every-holder-unreachable
// error), or a better one (holders reached through the relay, which a
// reverse connection would spare).
bool wait_for_own_reach(const HolderChoice& choice, const OwnReach& own);

// The holders that pass `filter` but that the tracker found unreachable
// (reachable == false): never dialled directly; empty when there are none.
std::vector<proto::Holder> unreachable_holders(const std::vector<proto::Holder>& all, const HolderFilter& filter);

// How long a waiting transfer waits before asking the tracker again, after
// `attempts` lookups that found nobody: 1 s doubling to 60 s, plus up to 10 %
// jitter taken from `jitter` (0..1), so transfers do not ask in lockstep.
std::uint64_t lookup_backoff_ms(unsigned attempts, double jitter);

}  // namespace peershare::peerd
