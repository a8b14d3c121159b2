// tracker/reach_prober.cpp — one reachability check: resolve, connect, ask, judge.
#include "tracker/reach_prober.hpp"

#include <algorithm>
#include <cstring>

#include "common/net.hpp"
#include "common/uv.hpp"
#include "proto/reach.hpp"

namespace peershare::tracker {

// A check in progress. libuv requests point at it, so each request in flight
// holds a reference (hold_*), dropped in its callback; `owner` is cleared when
// the check is finished or abandoned, after which callbacks do nothing.
struct ReachProber::Check {
    explicit Check(uv_loop_t* loop) : timer(loop) {}
    ReachProber* owner = nullptr;
    CheckId id = 0;
    std::string host;
    std::uint16_t port = 0;
    std::string where;      // "127.0.0.1:4000": the address being tried, for the reason
    std::string request;    // kept until written
    std::string proof;
    std::string response;
    Done done;
    common::Timer timer;
    std::unique_ptr<common::Tcp> tcp;
    uv_getaddrinfo_t resolve{};
    uv_connect_t connect{};
    uv_write_t write{};
    std::shared_ptr<Check> hold_resolve, hold_connect, hold_write;
    std::vector<sockaddr_storage> addresses;   // resolved, to try in turn
    std::size_t next_address = 0;
    std::vector<std::string> failures;          // one per address tried, for the reason
    std::string early_failure;                  // why it failed before anything was asked of libuv

    void close_handles() {
        timer.close();
        tcp.reset();   // pending connect and write complete with UV_ECANCELED
    }
};

namespace {

constexpr std::size_t kMaxAddresses = 8;   // of one name, tried in turn within the deadline

std::string deadline_words() { return std::to_string(proto::kReachDeadlineMs / 1000) + " s"; }

}  // namespace

ReachProber::ReachProber(uv_loop_t* loop, const common::Log& log) : loop_(loop), log_(log) {}

ReachProber::~ReachProber() {
    for (auto& [id, c] : running_) {
        c->owner = nullptr;
        c->close_handles();
    }
    running_.clear();
    waiting_.clear();
}

ReachProber::CheckId ReachProber::check(std::string host, std::uint16_t port, std::string nonce, std::string proof,
                                        Done done) {
    auto c = std::make_shared<Check>(loop_);
    c->id = next_id_++;
    c->host = std::move(host);
    c->port = port;
    c->where = common::to_string(common::Endpoint{c->host, port});
    c->request = proto::reach_request(c->host, port, nonce);
    c->proof = std::move(proof);
    c->done = std::move(done);
    const auto id = c->id;
    if (running_.size() >= kMaxReachInFlight) {
        waiting_.push_back(std::move(c));
    } else {
        start(std::move(c));
    }
    return id;
}

void ReachProber::cancel(CheckId id) {
    if (auto it = running_.find(id); it != running_.end()) {
        auto c = std::move(it->second);
        running_.erase(it);
        c->owner = nullptr;
        c->close_handles();
        return start_waiting();
    }
    std::erase_if(waiting_, [id](const std::shared_ptr<Check>& c) { return c->id == id; });
}

void ReachProber::start_waiting() {
    while (running_.size() < kMaxReachInFlight && !waiting_.empty()) {
        auto next = std::move(waiting_.front());
        waiting_.pop_front();
        start(std::move(next));
    }
}

void ReachProber::on_deadline(uv_timer_t* timer) {
    auto* check = static_cast<Check*>(timer->data);
    if (!check || !check->owner) return;
    check->owner->finish(check->id, false,
                         check->early_failure.empty()
                             ? "no answer within " + deadline_words() + " at " + check->where
                             : check->early_failure);
}

void ReachProber::start(std::shared_ptr<Check> c) {
    c->owner = this;
    running_.emplace(c->id, c);
    c->timer.get()->data = c.get();
    uv_timer_start(c->timer.get(), on_deadline, proto::kReachDeadlineMs, 0);

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    c->resolve.data = c.get();
    c->hold_resolve = c;
    const std::string port = std::to_string(c->port);
    const int rc = uv_getaddrinfo(
        loop_, &c->resolve,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
            auto* check = static_cast<Check*>(req->data);
            auto keep = std::move(check->hold_resolve);
            std::unique_ptr<addrinfo, void (*)(addrinfo*)> result(res, uv_freeaddrinfo);
            if (!check->owner) return;
            if (status < 0 || !res) {
                return check->owner->finish(check->id, false,
                                            "cannot resolve " + check->host + ": " + common::uv_error(status));
            }
            // Every address, in the resolver's order, as a fetcher's curl tries them.
            for (const addrinfo* a = res; a && check->addresses.size() < kMaxAddresses; a = a->ai_next) {
                if (auto why = common::refused_address(a->ai_addr)) {
                    check->failures.push_back(*why + ": nobody is sent there");
                    continue;
                }
                sockaddr_storage addr{};
                std::memcpy(&addr, a->ai_addr, std::min<std::size_t>(a->ai_addrlen, sizeof addr));
                check->addresses.push_back(addr);
            }
            check->owner->connect_next(keep);
        },
        c->host.c_str(), port.c_str(), &hints);
    if (rc < 0) {
        // Answered from the timer, on a later loop turn: check() never calls back before it returns.
        c->hold_resolve.reset();
        c->early_failure = "cannot resolve " + c->host + ": " + common::uv_error(rc);
        uv_timer_start(c->timer.get(), on_deadline, 0, 0);
    }
}

void ReachProber::connect_next(const std::shared_ptr<Check>& c) {
    if (c->next_address >= c->addresses.size()) {
        std::string why;
        for (const auto& f : c->failures) why += (why.empty() ? "" : "; ") + f;
        return finish(c->id, false, why.empty() ? "no address to dial" : why);
    }
    const auto& addr = c->addresses[c->next_address++];
    c->where = common::to_string(common::Endpoint{common::ip_to_string(addr), c->port});
    c->tcp = std::make_unique<common::Tcp>(loop_);
    c->tcp->get()->data = c.get();
    c->connect.data = c.get();
    c->hold_connect = c;
    const int rc = uv_tcp_connect(&c->connect, c->tcp->get(), reinterpret_cast<const sockaddr*>(&addr),
                                  [](uv_connect_t* req, int status) {
                                      auto* check = static_cast<Check*>(req->data);
                                      auto hold = std::move(check->hold_connect);
                                      if (check->owner) check->owner->on_connected(hold, status);
                                  });
    if (rc < 0) {
        c->hold_connect.reset();
        c->failures.push_back(common::uv_error(rc) + " at " + c->where);
        connect_next(c);
    }
}

void ReachProber::on_connected(const std::shared_ptr<Check>& c, int status) {
    if (status < 0) {
        c->failures.push_back(common::uv_error(status) + " at " + c->where);
        return connect_next(c);   // the next address, if any (the handle is replaced)
    }
    uv_buf_t buf = uv_buf_init(c->request.data(), static_cast<unsigned>(c->request.size()));
    c->write.data = c.get();
    c->hold_write = c;
    const int wrc = uv_write(&c->write, c->tcp->stream(), &buf, 1, [](uv_write_t* req, int st) {
        auto* check = static_cast<Check*>(req->data);
        auto held = std::move(check->hold_write);
        if (st < 0 && check->owner) {
            check->owner->finish(check->id, false,
                                 "cannot send the check to " + check->where + ": " + common::uv_error(st));
        }
    });
    if (wrc < 0) {
        c->hold_write.reset();
        return finish(c->id, false, "cannot send the check to " + c->where + ": " + common::uv_error(wrc));
    }
    const int rrc = uv_read_start(c->tcp->stream(), common::Loop::alloc_read_buffer,
                                  [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
                                      auto* check = static_cast<Check*>(stream->data);
                                      if (check && check->owner) check->owner->on_read(*check, nread, buf);
                                  });
    if (rrc < 0) finish(c->id, false, "cannot read from " + c->where + ": " + common::uv_error(rrc));
}

void ReachProber::on_read(Check& c, ssize_t nread, const uv_buf_t* buf) {
    if (nread > 0) {
        const auto room = proto::kMaxReachResponseBytes - c.response.size();
        c.response.append(buf->base, std::min<std::size_t>(static_cast<std::size_t>(nread), room));
        if (c.response.size() < proto::kMaxReachResponseBytes) return;
    } else if (nread == 0) {
        return;
    } else if (nread != UV_EOF && c.response.empty()) {
        return finish(c.id, false, common::uv_error(static_cast<int>(nread)) + " at " + c.where);
    }
    // The whole answer (the peer closed), or as much as we read.
    const auto problem = proto::reach_problem(c.response, c.proof);
    finish(c.id, !problem, problem ? *problem + " (at " + c.where + ")" : "answered at " + c.where);
}

void ReachProber::finish(CheckId id, bool reachable, const std::string& reason) {
    auto it = running_.find(id);
    if (it == running_.end()) return;
    auto c = std::move(it->second);
    running_.erase(it);
    c->owner = nullptr;
    c->close_handles();
    log_.debug("reachability check of " + c->where + ": " + (reachable ? "reachable, " : "unreachable, ") + reason);
    auto done = std::move(c->done);
    start_waiting();
    done(reachable, reason);
}

}  // namespace peershare::tracker
