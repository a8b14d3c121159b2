// daemon/partial_holdings.hpp — one partial holding per content (issue 10).
// One peerd may run several transfers of the same content (a fetch of it to
// two destinations); it serves and announces them as one partial holding,
// never two: the holding of a content is its oldest transfer (lowest id)
// that holds verified pieces, so the tracker hears one name that does not
// flip with every piece, and when that transfer stops holding (done,
// cancelled, paused with sharing off), the next oldest takes its place. What
// was announced is kept here too, so an announcement goes out on the first
// piece and then every further tenth of the file (worth_announcing). Pure:
// no I/O; the caller serves (Catalog::put_partial) and talks to the tracker.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/catalog.hpp"

namespace peershare::peerd {

class PartialHoldings {
public:
    // Whether a partial holding may be announced under `name` now: not when
    // the peer has no tracker link, nor when it publishes something under
    // that name (the publication is what the tracker knows it for).
    using Announceable = std::function<bool(std::string_view name)>;

    // What the caller does after a change, in this order: withdraw the name
    // `withdraw` from the tracker (announced before, no holding uses it now;
    // unless a publication has that name), then serve `serve` as the
    // content's partial holding (null: serve no partial of it any more) and,
    // if `announce`, announce it. `serve` points into this object, valid
    // until its next call.
    struct Step {
        std::optional<std::string> withdraw;
        const Publication* serve = nullptr;
        bool announce = false;
    };

    // Transfer `transfer` holds `held` now (a partial holding: held.id its
    // content id, held.have not all zero, asserted).
    Step hold(std::uint64_t transfer, Publication held, const Announceable& announceable);
    // Transfer `transfer` of content `id` holds nothing to serve any more.
    // A transfer that held nothing is no change.
    Step release(std::uint64_t transfer, std::string_view id, const Announceable& announceable);

    // The transfers holding pieces of content `id` (0 if none).
    std::size_t holders_of(std::string_view id) const;

private:
    struct Announced {
        std::string name;
        std::uint64_t pieces = 0;
    };
    struct Content {
        std::map<std::uint64_t, Publication> by_transfer;   // oldest first
        std::optional<Announced> announced;
    };

    static Step settle(Content& c, const Announceable& announceable);

    std::map<std::string, Content, std::less<>> contents_;   // by content id
};

}  // namespace peershare::peerd
