// daemon/control_server.cpp — peerctl's requests.
#include "daemon/control_server.hpp"

namespace peershare::peerd {

using proto::ErrorCode;

namespace {
constexpr int kControlSocketMode = 0600;   // only the owner drives their daemon
}

ControlServer::ControlServer(uv_loop_t* loop, const common::Log& log, Peer& peer)
    : log_(log),
      peer_(peer),
      server_(loop,
              {"this peerd", "peerctl", "the first frame must be a hello with role admin", "no hello"},
              {[] { return proto::Welcome{proto::kProtocolVersion, {}, 0, 0}; },
               [this](Session& s, const proto::Envelope& env) { on_request(s, env); },
               [this](std::uint64_t session_id) { on_closed(session_id); }}) {}

ControlServer::~ControlServer() { stop(); }

proto::Result<bool> ControlServer::start(const std::string& socket_path) {
    return server_.start(socket_path, kControlSocketMode);
}

void ControlServer::stop() {
    server_.stop();
    transfers_.clear();
}

template <class F>
void ControlServer::with_session(std::uint64_t session_id, F&& send) {
    if (auto* s = server_.find(session_id)) send(*s);
}

void ControlServer::on_closed(std::uint64_t session_id) {
    auto it = transfers_.find(session_id);
    if (it == transfers_.end()) return;
    auto transfers = std::move(it->second);
    transfers_.erase(it);
    for (auto t : transfers) {
        log_.info("fetch cancelled: peerctl went away");
        peer_.cancel_fetch(t);
    }
}

void ControlServer::on_request(Session& s, const proto::Envelope& env) {
    const auto reject = [&](const proto::Error& e) {
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type);
    };
    const auto reply_error = [&](const proto::Error& e) { s.conn.send_error(e.code, e.message, env.id); };
    if (env.type == proto::PublishFile::kType) {
        auto m = proto::PublishFile::from_json(env.body);
        if (!m) return reject(m.error());
        peer_.publish(m->path, m->name, [this, sid = s.id, id = env.id](proto::Result<proto::Published> r) {
            with_session(sid, [&](Session& live) {
                if (r) live.conn.send(*r, id);
                else live.conn.send_error(r.error().code, r.error().message, id);
            });
        });
    } else if (env.type == proto::UnpublishFile::kType) {
        auto m = proto::UnpublishFile::from_json(env.body);
        if (!m) return reject(m.error());
        auto r = peer_.unpublish(m->name);
        if (!r) return reply_error(r.error());
        s.conn.send(proto::Ok{}, env.id);
    } else if (env.type == proto::ListFiles::kType) {
        peer_.list([this, sid = s.id, id = env.id](proto::Publications files) {
            with_session(sid, [&](Session& live) {
                live.conn.send_bytes(
                    proto::make_bounded_frame(std::move(files), &proto::Publications::files, id));
            });
        });
    } else if (env.type == proto::Search::kType) {
        auto m = proto::Search::from_json(env.body);
        if (!m) return reject(m.error());
        peer_.search(m->text, [this, sid = s.id, id = env.id](proto::Result<proto::IndexReply> r) {
            with_session(sid, [&](Session& live) {
                if (r) live.conn.send(*r, id);
                else live.conn.send_error(r.error().code, r.error().message, id);
            });
        });
    } else if (env.type == proto::GetStatus::kType) {
        s.conn.send(peer_.status(), env.id);
    } else if (env.type == proto::FetchFile::kType) {
        start_fetch(s, env);
    } else if (env.type == proto::GetLimits::kType || env.type == proto::SetLimits::kType) {
        answer_limits(s, env);
    } else {
        s.conn.send_error(ErrorCode::bad_request, "unknown message type '" + env.type + "'", env.id);
    }
}

void ControlServer::start_fetch(Session& s, const proto::Envelope& env) {
    auto m = proto::FetchFile::from_json(env.body);
    if (!m) {
        s.conn.send_error(ErrorCode::bad_request, m.error().message, env.id);
        s.conn.close("malformed fetch");
        return;
    }
    const auto sid = s.id;
    const auto id = env.id;
    auto transfer = std::make_shared<std::uint64_t>(0);
    Peer::FetchCallbacks callbacks;
    callbacks.progress = [this, sid, id](const proto::Progress& p) {
        with_session(sid, [&](Session& live) {
            // Progress is advisory: skip it for a reader that is behind.
            if (live.conn.queued_bytes() < 64 * 1024) live.conn.send(p, id);
        });
    };
    callbacks.choices = [this, sid, id, transfer](proto::Choices c) {
        with_session(sid, [&](Session& live) {
            transfers_[live.id].erase(*transfer);
            live.conn.send(c, id);
        });
    };
    callbacks.done = [this, sid, id, transfer](proto::Result<proto::FetchedFile> r) {
        with_session(sid, [&](Session& live) {
            transfers_[live.id].erase(*transfer);
            if (r) live.conn.send(*r, id);
            else live.conn.send_error(r.error().code, r.error().message, id);
        });
    };
    *transfer = peer_.fetch(*m, std::move(callbacks));
    with_session(sid, [&](Session& live) { transfers_[live.id].insert(*transfer); });
}

void ControlServer::answer_limits(Session& s, const proto::Envelope& env) {
    if (env.type == proto::GetLimits::kType) {
        s.conn.send(peer_.limits(), env.id);
        return;
    }
    auto m = proto::SetLimits::from_json(env.body);
    if (!m) {
        s.conn.send_error(ErrorCode::bad_request, m.error().message, env.id);
        s.conn.close("malformed set_limits");
        return;
    }
    s.conn.send(peer_.set_limits(*m), env.id);
}

}  // namespace peershare::peerd
