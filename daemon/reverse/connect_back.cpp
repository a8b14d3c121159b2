// daemon/reverse/connect_back.cpp — dial, preface, hand over.
#include "daemon/reverse/connect_back.hpp"

#include <cassert>
#include <utility>

#include "common/uv.hpp"
#include "daemon/upload_server.hpp"
#include "proto/reverse.hpp"

namespace peershare::peerd {

// One dial. libuv may call back after the dial was abandoned (the dialer
// went away or the deadline passed), so requests reach it through `self`
// (kept while libuv holds a request) and the dialer only through `owner`,
// cleared when it is abandoned.
struct ConnectBackDialer::Dial {
    ConnectBackDialer* owner = nullptr;
    std::uint64_t id = 0;
    std::string where;                 // "ADDR:PORT", for messages
    std::string preface;               // must live until the write completes
    DoneFn done;
    std::unique_ptr<common::Tcp> tcp;
    std::unique_ptr<common::Timer> deadline;
    uv_connect_t connect{};
    uv_write_t write{};
    std::shared_ptr<Dial> self_connect, self_write;

    void close_handles() {
        deadline.reset();   // Handle closes itself
        tcp.reset();        // a pending connect or write completes with UV_ECANCELED
    }
};

ConnectBackDialer::ConnectBackDialer(uv_loop_t* loop, const common::Log& log, UploadServer& server)
    : loop_(loop), log_(log), server_(server) {}

ConnectBackDialer::~ConnectBackDialer() {
    for (auto& [id, dial] : dials_) {
        dial->owner = nullptr;
        dial->close_handles();
    }
}

proto::Result<bool> ConnectBackDialer::dial(const common::Endpoint& to, const std::string& token, DoneFn done) {
    using proto::Error;
    using proto::ErrorCode;
    if (!proto::valid_reverse_token(token)) return Error{ErrorCode::bad_request, "a connect-back token is 32 lowercase hex digits"};
    const auto where = common::to_string(to);
    auto addr = common::to_sockaddr(to);
    if (!addr) return Error{ErrorCode::bad_request, "cannot connect back to " + where + ": not an IP address and port"};
    if (auto why = common::refused_address(reinterpret_cast<const sockaddr*>(&*addr))) {
        return Error{ErrorCode::bad_request, "cannot connect back to " + where + ": " + *why};
    }
    if (dials_.size() >= kMaxConnectBackDials) {
        return Error{ErrorCode::busy, std::to_string(kMaxConnectBackDials) + " connect-backs are already being dialled"};
    }
    auto d = std::make_shared<Dial>();
    d->owner = this;
    d->id = next_id_++;
    d->where = where;
    d->preface = proto::reverse_preface(token);
    d->done = std::move(done);
    d->tcp = std::make_unique<common::Tcp>(loop_);
    d->deadline = std::make_unique<common::Timer>(loop_);
    d->tcp->get()->data = d.get();
    d->deadline->get()->data = d.get();
    d->connect.data = d.get();
    d->self_connect = d;
    const int rc = uv_tcp_connect(&d->connect, d->tcp->get(), reinterpret_cast<const sockaddr*>(&*addr),
                                  [](uv_connect_t* req, int status) {
        auto* dial = static_cast<Dial*>(req->data);
        auto keep = std::move(dial->self_connect);
        if (!dial->owner) return;
        if (status < 0) return dial->owner->finish(dial->id, false, common::uv_error(status) + " at " + dial->where);
        uv_tcp_nodelay(dial->tcp->get(), 1);
        dial->write.data = dial;
        uv_buf_t buf = uv_buf_init(dial->preface.data(), static_cast<unsigned>(dial->preface.size()));
        dial->self_write = keep;
        const int wrc = uv_write(&dial->write, dial->tcp->stream(), &buf, 1, [](uv_write_t* w, int st) {
            auto* dl = static_cast<Dial*>(w->data);
            auto hold = std::move(dl->self_write);
            if (!dl->owner) return;
            if (st < 0) return dl->owner->finish(dl->id, false, "cannot write the preface to " + dl->where + ": " + common::uv_error(st));
            dl->owner->finish(dl->id, true, "");
        });
        if (wrc < 0) {
            dial->self_write.reset();
            dial->owner->finish(dial->id, false, "cannot write the preface to " + dial->where + ": " + common::uv_error(wrc));
        }
    });
    if (rc < 0) {
        d->self_connect.reset();
        return Error{ErrorCode::unavailable, "cannot connect back to " + where + ": " + common::uv_error(rc)};
    }
    uv_timer_start(d->deadline->get(), [](uv_timer_t* t) {
        auto* dial = static_cast<Dial*>(t->data);
        if (dial && dial->owner) {
            dial->owner->finish(dial->id, false, "no connection to " + dial->where + " within " +
                                                     std::to_string(kConnectBackDeadlineMs / 1000) + " s");
        }
    }, kConnectBackDeadlineMs, 0);
    dials_.emplace(d->id, std::move(d));
    return true;
}

void ConnectBackDialer::finish(std::uint64_t id, bool ok, const std::string& why) {
    const auto it = dials_.find(id);
    assert(it != dials_.end());   // a dial calls back only while its owner knows it
    auto dial = std::move(it->second);
    dials_.erase(it);
    dial->owner = nullptr;
    if (ok) {
        dial->deadline.reset();
        dial->tcp->get()->data = nullptr;
        server_.adopt(std::move(*dial->tcp));
        dial->tcp.reset();
        log_.debug("connect-back dialled to " + dial->where);   // the caller says what it was for
    } else {
        dial->close_handles();
        log_.debug("cannot connect back: " + why);
    }
    if (dial->done) dial->done(ok, why);
}

}  // namespace peershare::peerd
