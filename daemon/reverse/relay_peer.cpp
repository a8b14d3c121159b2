// daemon/reverse/relay_peer.cpp — relay_offer on the holder's side, relay
// asks on the fetcher's.
#include "daemon/reverse/relay_peer.hpp"

#include <cassert>
#include <utility>

#include "common/uv.hpp"
#include "daemon/upload_server.hpp"

namespace peershare::peerd {

void serve_relay_offer(RelayDialer& dialer, UploadServer& uploads, const common::Log& log,
                       const proto::RelayOffer& offer) {
    const auto& t = offer.ticket;
    const std::string who = "the relay for " + t.peer;
    auto started = dialer.dial({t.relay_address, t.relay_port}, t.token,
                               [&uploads, &log, who](common::UniqueFd socket, const std::string& why) {
        if (!socket) return log.info("cannot serve " + who + ": " + why);
        if (uploads.adopt(std::move(socket))) log.info("serving " + who);
    });
    if (!started) log.info("cannot serve " + who + ": " + started.error().message);
}

HandedSockets::AskFn make_relay_ask(TrackerLink& link, RelayDialer& dialer, std::string holder,
                                    std::shared_ptr<std::weak_ptr<HandedSockets>> source) {
    assert(source);
    return [&link, &dialer, holder = std::move(holder), source = std::move(source)] {
        const std::weak_ptr<HandedSockets> sockets = *source;
        const auto fail = [holder, sockets](const std::string& why) {
            if (auto s = sockets.lock()) s->fail("cannot reach " + holder + " through the relay: " + why);
        };
        link.request(proto::RelayRequest{holder}, [&dialer, holder, sockets, fail](proto::Result<proto::Envelope> reply) {
            if (!reply) return fail(reply.error().message);
            auto ticket = proto::expect<proto::RelayTicket>(*reply);
            if (!ticket) return fail(ticket.error().message);
            auto started = dialer.dial({ticket->relay_address, ticket->relay_port}, ticket->token,
                                       [sockets, fail](common::UniqueFd socket, const std::string& why) {
                if (!socket) return fail(why);
                if (auto s = sockets.lock()) s->give(std::move(socket));   // else it closes here
            });
            if (!started) fail(started.error().message);
        });
    };
}

}  // namespace peershare::peerd
