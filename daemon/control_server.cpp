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
              {[] { return proto::Welcome{proto::kProtocolVersion, {}, 0, 0, false}; },
               [this](Session& s, const proto::Envelope& env) { on_request(s, env); },
               [this](std::uint64_t session_id) { on_closed(session_id); }}) {}

ControlServer::~ControlServer() { stop(); }

proto::Result<bool> ControlServer::start(const std::string& socket_path, std::uint64_t request_timeout_ms) {
    return server_.start(socket_path, kControlSocketMode, request_timeout_ms);
}

void ControlServer::stop() {
    server_.stop();
    followers_.clear();
}

template <class F>
void ControlServer::with_session(std::uint64_t session_id, F&& send) {
    if (auto* s = server_.find(session_id)) send(*s);
}

void ControlServer::on_closed(std::uint64_t session_id) {
    auto it = followers_.find(session_id);
    if (it == followers_.end()) return;
    auto tokens = std::move(it->second);
    followers_.erase(it);
    for (auto token : tokens) peer_.transfers().forget_follower(token);
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
    } else if (env.type == proto::ReachCheck::kType) {
        if (auto m = proto::ReachCheck::from_json(env.body); !m) return reject(m.error());
        peer_.check_reach([this, sid = s.id, id = env.id](proto::Result<proto::Reachability> r) {
            with_session(sid, [&](Session& live) {
                if (r) live.conn.send(*r, id);
                else live.conn.send_error(r.error().code, r.error().message, id);
            });
        });
    } else if (env.type == proto::FetchFile::kType) {
        start_fetch(s, env);
    } else if (env.type == proto::GetLimits::kType || env.type == proto::SetLimits::kType) {
        answer_limits(s, env);
    } else if (on_transfer_request(s, env)) {
        return;
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
    auto token = std::make_shared<std::uint64_t>(0);
    const auto finished = [this, sid, token] {
        if (auto it = followers_.find(sid); it != followers_.end()) it->second.erase(*token);
    };
    TransferRegistry::Follow follow;
    follow.choices = [this, sid, id, finished](proto::Choices c) {
        finished();
        with_session(sid, [&](Session& live) { live.conn.send(c, id); });
    };
    follow.accepted = [this, sid, id, finished, detach = m->detach](const proto::TransferAccepted& a) {
        if (detach) finished();
        with_session(sid, [&](Session& live) { live.conn.send(a, id); });
    };
    follow.progress = [this, sid, id](const proto::Progress& p) {
        with_session(sid, [&](Session& live) {
            // Progress is advisory: skip it for a reader that is behind.
            if (live.conn.queued_bytes() < 64 * 1024) live.conn.send(p, id);
        });
    };
    follow.done = [this, sid, id, finished](proto::Result<proto::FetchedFile> r) {
        finished();
        with_session(sid, [&](Session& live) {
            if (r) live.conn.send(*r, id);
            else live.conn.send_error(r.error().code, r.error().message, id);
        });
    };
    // The token is known before any callback can run: answers come on later
    // loop turns (a lookup), never inside fetch().
    followers_[sid].insert(*token = peer_.transfers().fetch(*m, std::move(follow)));
}

bool ControlServer::on_transfer_request(Session& s, const proto::Envelope& env) {
    auto& registry = peer_.transfers();
    const auto reject = [&](const proto::Error& e) {
        s.conn.send_error(ErrorCode::bad_request, e.message, env.id);
        s.conn.close("malformed " + env.type);
    };
    const auto answer = [&](const auto& r) {
        if (r) s.conn.send(*r, env.id);
        else s.conn.send_error(r.error().code, r.error().message, env.id);
    };
    if (env.type == proto::ListTransfers::kType) {
        if (auto m = proto::ListTransfers::from_json(env.body); !m) return reject(m.error()), true;
        registry.list([this, sid = s.id, id = env.id](proto::TransferList list) {
            with_session(sid, [&](Session& live) {
                live.conn.send_bytes(proto::make_bounded_frame(std::move(list), &proto::TransferList::transfers, id));
            });
        });
    } else if (env.type == proto::PauseTransfer::kType) {
        auto m = proto::PauseTransfer::from_json(env.body);
        if (!m) return reject(m.error()), true;
        answer(registry.pause(m->transfer));
    } else if (env.type == proto::ResumeTransfer::kType) {
        auto m = proto::ResumeTransfer::from_json(env.body);
        if (!m) return reject(m.error()), true;
        answer(registry.resume(m->transfer));
    } else if (env.type == proto::CancelTransfer::kType) {
        auto m = proto::CancelTransfer::from_json(env.body);
        if (!m) return reject(m.error()), true;
        auto r = registry.cancel(m->transfer);
        if (r) s.conn.send(proto::Ok{}, env.id);
        else s.conn.send_error(r.error().code, r.error().message, env.id);
    } else {
        return false;
    }
    return true;
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
