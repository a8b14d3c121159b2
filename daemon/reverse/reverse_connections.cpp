// daemon/reverse/reverse_connections.cpp — see reverse_connections.hpp.
#include "daemon/reverse/reverse_connections.hpp"

#include <utility>

#include "proto/reverse.hpp"

namespace peershare::peerd {

ReverseConnections::ReverseConnections(uv_loop_t* loop, const common::Log& log, UploadServer& uploads,
                                       TrackerLink& link)
    : loop_(loop), log_(log), uploads_(uploads), link_(link), dialer_(loop, log, uploads) {
    uploads_.on_connect_back([this](const std::string& token, common::UniqueFd socket, const std::string&,
                                    std::string& why) {
        return expected_.take(token, std::move(socket), uv_now(loop_), why);
    });
    link_.on_connect_back([this](const proto::ConnectBack& m) { connect_back(m); });
}

ReverseConnections::~ReverseConnections() {
    uploads_.on_connect_back(nullptr);
    link_.on_connect_back(nullptr);
}

std::shared_ptr<HandedSockets> ReverseConnections::source(const std::string& holder, const std::string& content_id) {
    // The ask needs the source it asks for, which exists only once made.
    auto self = std::make_shared<std::weak_ptr<HandedSockets>>();
    auto handed = std::make_shared<HandedSockets>(
        [this, alive = std::weak_ptr<bool>(alive_), self, holder, content_id] {
            if (auto source = self->lock()) {
                if (alive.expired()) return source->fail("peerd is stopping");
                ask(*self, holder, content_id);
            }
        });
    *self = handed;
    return handed;
}

void ReverseConnections::ask(const std::weak_ptr<HandedSockets>& weak, const std::string& holder,
                             const std::string& content_id) {
    auto source = weak.lock();
    if (!source) return;
    const auto token = proto::random_reverse_token();
    if (!expected_.expect(token, {weak, holder, content_id}, uv_now(loop_))) {
        return source->fail("cannot have " + holder + " connect back: " + std::to_string(kMaxExpectedConnectBacks) +
                            " connect-backs are already awaited");
    }
    // May answer at once (not connected): fail() inside the engine's take() is expected.
    link_.request(proto::ReverseRequest{holder, token},
                  [this, alive = std::weak_ptr<bool>(alive_), weak, holder, token](
                      proto::Result<proto::Envelope> reply) {
                      if (alive.expired()) return;
                      auto ok = reply ? proto::expect<proto::Ok>(*reply) : proto::Result<proto::Ok>(reply.error());
                      if (ok) return;
                      expected_.forget(token, uv_now(loop_));
                      const auto why = "cannot have " + holder + " connect back: " + ok.error().message;
                      log_.info(why);
                      if (auto s = weak.lock()) s->fail(why);
                  });
}

void ReverseConnections::connect_back(const proto::ConnectBack& m) {
    const auto where = common::to_string(common::Endpoint{m.address, m.port});
    // The dialer checks the token and the address (an IP literal, not a refused one).
    if (m.port == 0) return log_.warning("cannot connect back to " + m.peer + " at " + where + ": port 0");
    auto dialled = dialer_.dial(common::Endpoint{m.address, m.port}, m.token,
                                [this, peer = m.peer, where](bool ok, const std::string& why) {
                                    // Whether the fetcher takes the connection is its to say (its log).
                                    if (ok) return log_.info("connected back to " + peer + " at " + where + " and presented its token");
                                    log_.warning("cannot connect back to " + peer + " at " + where + ": " + why);
                                });
    if (!dialled) log_.warning("cannot connect back to " + m.peer + ": " + dialled.error().message);
}

}  // namespace peershare::peerd
