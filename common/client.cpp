// common/client.cpp — blocking request/reply over FramedConnection.
#include "common/client.hpp"

#include <algorithm>

namespace peershare::common {

using proto::Error;
using proto::ErrorCode;
using proto::Result;

namespace {

struct ConnectState {
    bool done = false;
    int status = 0;
};

}  // namespace

Client::~Client() { conn_.reset(); }

bool Client::run_until(const std::function<bool()>& done, Millis timeout) {
    Timer timer(loop_.get());
    bool expired = false;
    timer.get()->data = &expired;
    uv_timer_start(timer.get(), [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
                   static_cast<std::uint64_t>(timeout.count()), 0);
    while (!done() && !expired) uv_run(loop_.get(), UV_RUN_ONCE);
    return done();
}

Result<bool> Client::finish_connect(uv_connect_t& req, int rc, Millis timeout) {
    ConnectState state;
    req.data = &state;
    if (rc == 0) {
        run_until([&] { return state.done; }, timeout);
        if (!state.done) {
            // The connect request still references `state`; closing the handle
            // cancels it, and running the loop delivers that before we return.
            req.data = nullptr;
            conn_.reset();
            uv_run(loop_.get(), UV_RUN_NOWAIT);
            return Error{ErrorCode::timeout, "connection timed out"};
        }
        rc = state.status;
    }
    if (rc < 0) return Error{ErrorCode::unavailable, uv_error(rc)};
    conn_->start(
        [this](proto::Envelope&& env) {
            if (answer_pings_ && env.type == proto::Ping::kType) {
                conn_->send(proto::Pong{}, env.id);
                return;
            }
            inbox_.push_back(std::move(env));
        },
        [this](const std::string& reason) {
            closed_ = true;
            close_reason_ = reason;
        });
    return true;
}

static void on_connect(uv_connect_t* req, int status) {
    if (auto* state = static_cast<ConnectState*>(req->data)) {
        state->done = true;
        state->status = status;
    }
}

Result<std::unique_ptr<Client>> Client::connect_unix(const std::string& path, Millis timeout) {
    std::unique_ptr<Client> client(new Client());
    Pipe pipe(client->loop_.get());
    uv_pipe_t* raw = pipe.get();
    client->conn_ = std::make_unique<FramedConnection>(std::move(pipe));
    auto req = std::make_unique<uv_connect_t>();
    uv_pipe_connect(req.get(), raw, path.c_str(), on_connect);
    auto ok = client->finish_connect(*req, 0, timeout);
    if (!ok) return Error{ok.error().code, "cannot connect to " + path + ": " + ok.error().message};
    return client;
}

Result<std::unique_ptr<Client>> Client::connect_tcp(const Endpoint& at, Millis timeout) {
    auto addr = to_sockaddr(at);
    if (!addr) return addr.error();
    std::unique_ptr<Client> client(new Client());
    Tcp tcp(client->loop_.get());
    uv_tcp_t* raw = tcp.get();
    uv_tcp_nodelay(raw, 1);
    client->conn_ = std::make_unique<FramedConnection>(std::move(tcp));
    auto req = std::make_unique<uv_connect_t>();
    const int rc = uv_tcp_connect(req.get(), raw, reinterpret_cast<const sockaddr*>(&*addr), on_connect);
    auto ok = client->finish_connect(*req, rc, timeout);
    if (!ok) return Error{ok.error().code, "cannot connect to " + to_string(at) + ": " + ok.error().message};
    return client;
}

void Client::send_bytes(std::string bytes) {
    if (conn_ && !closed_) conn_->send_bytes(std::move(bytes));
}

Result<proto::Envelope> Client::wait_reply(std::uint64_t id, Millis timeout) {
    const auto find = [&] {
        return std::find_if(inbox_.begin(), inbox_.end(), [&](const proto::Envelope& e) { return e.id == id; });
    };
    // An error frame without an id (bad_request before close) also answers.
    const auto answered = [&] {
        return find() != inbox_.end() ||
               std::any_of(inbox_.begin(), inbox_.end(), [](const proto::Envelope& e) {
                   return !e.id && e.type == proto::ErrorReply::kType;
               });
    };
    run_until([&] { return answered() || closed_; }, timeout);
    auto it = find();
    if (it == inbox_.end()) {
        it = std::find_if(inbox_.begin(), inbox_.end(), [](const proto::Envelope& e) {
            return !e.id && e.type == proto::ErrorReply::kType;
        });
    }
    if (it != inbox_.end()) {
        auto env = std::move(*it);
        inbox_.erase(it);
        return env;
    }
    if (closed_) return Error{ErrorCode::unavailable, "connection closed: " + close_reason_};
    return Error{ErrorCode::timeout, "no reply within " + std::to_string(timeout.count()) + " ms"};
}

Result<proto::Envelope> Client::next(Millis timeout) {
    run_until([&] { return !inbox_.empty() || closed_; }, timeout);
    if (!inbox_.empty()) {
        auto env = std::move(inbox_.front());
        inbox_.pop_front();
        return env;
    }
    if (closed_) return Error{ErrorCode::unavailable, "connection closed: " + close_reason_};
    return Error{ErrorCode::timeout, "nothing received within " + std::to_string(timeout.count()) + " ms"};
}

}  // namespace peershare::common
