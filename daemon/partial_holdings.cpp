// daemon/partial_holdings.cpp — see partial_holdings.hpp.
#include "daemon/partial_holdings.hpp"

#include <cassert>

#include "daemon/share_fetched.hpp"

namespace peershare::peerd {

PartialHoldings::Step PartialHoldings::hold(std::uint64_t transfer, Publication held,
                                            const Announceable& announceable) {
    assert(held.have.size() > 0 && held.have.count() > 0);
    auto it = contents_.try_emplace(held.id).first;
    it->second.by_transfer.insert_or_assign(transfer, std::move(held));
    return settle(it->second, announceable);
}

PartialHoldings::Step PartialHoldings::release(std::uint64_t transfer, std::string_view id,
                                               const Announceable& announceable) {
    auto it = contents_.find(id);
    if (it == contents_.end()) return {};
    it->second.by_transfer.erase(transfer);
    Step step = settle(it->second, announceable);
    if (it->second.by_transfer.empty()) contents_.erase(it);   // step.serve is null
    return step;
}

std::size_t PartialHoldings::holders_of(std::string_view id) const {
    const auto it = contents_.find(id);
    return it == contents_.end() ? 0 : it->second.by_transfer.size();
}

PartialHoldings::Step PartialHoldings::settle(Content& c, const Announceable& announceable) {
    Step step;
    if (c.announced && (c.by_transfer.empty() || c.announced->name != c.by_transfer.begin()->second.name)) {
        step.withdraw = std::move(c.announced->name);
        c.announced.reset();
    }
    if (c.by_transfer.empty()) return step;
    const Publication& holding = c.by_transfer.begin()->second;
    step.serve = &holding;
    const std::uint64_t before = c.announced ? c.announced->pieces : 0;
    const std::uint64_t now = holding.have.count();
    if (announceable(holding.name) && worth_announcing(before, now, holding.pieces.size())) {
        step.announce = true;
        c.announced = Announced{holding.name, now};
    }
    return step;
}

}  // namespace peershare::peerd
