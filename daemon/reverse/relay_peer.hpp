// daemon/reverse/relay_peer.hpp — what peerd does with the relay (issue 11,
// docs/protocol.md §7.11 and §15), on both sides of a relayed connection:
//   holder:  the tracker sends a relay_offer down our session → dial the
//            relay with the holder token (RelayDialer) and serve HTTP on the
//            joined socket as on an accepted connection (UploadServer::adopt);
//   fetcher: a relay source's HandedSockets asks for a connection →
//            relay_request{holder} over the session, and on the relay_ticket
//            dial the relay with the fetcher token and give() the joined
//            socket to the source (curl then speaks HTTP over it).
// Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "common/log.hpp"
#include "daemon/fetch/handed_sockets.hpp"
#include "daemon/reverse/relay_dialer.hpp"
#include "daemon/tracker_link.hpp"
#include "proto/messages.hpp"

namespace peershare::peerd {

class UploadServer;

// The holder's side: dials offer.ticket's relay and hands the joined socket
// to `uploads`. Logs one line on failure (a bad offer, a refusal, the
// deadline) and on success; nothing else happens then: the fetcher finds out
// from its own side. `dialer`, `uploads` and `log` must outlive the dial.
void serve_relay_offer(RelayDialer& dialer, UploadServer& uploads, const common::Log& log,
                       const proto::RelayOffer& offer);

// The fetcher's side: the AskFn of a relay source's HandedSockets
// (daemon/fetch/handed_sockets.hpp; Via::relay). Each call sends
// relay_request{holder} on `link`; on the relay_ticket it dials the relay and
// give()s the joined socket to the source; any error (the tracker's: no relay,
// not found, busy; the dial's: refused, deadline, connect) is
//   source->fail("cannot reach HOLDER through the relay: …").
// `link` and `dialer` must outlive every ask (peerd's Peer owns all three).
// The source's HandedSockets is made after its ask (it takes the ask in its
// constructor): `source` is filled in once it exists, and may go first: then
// a late socket is closed and nothing is said.
HandedSockets::AskFn make_relay_ask(TrackerLink& link, RelayDialer& dialer, std::string holder,
                                    std::shared_ptr<std::weak_ptr<HandedSockets>> source);

}  // namespace peershare::peerd
