// tracker/relay/relay_server.cpp — the relay's loop: prefaces, pairing, copying.
#include "tracker/relay/relay_server.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <functional>
#include <map>
#include <optional>
#include <variant>

#include "common/token_bucket.hpp"
#include "common/uv.hpp"
#include "proto/relay.hpp"

namespace peershare::tracker {

namespace {

std::uint64_t ceil_ms(std::uint64_t ns) { return std::max<std::uint64_t>(1, (ns + 999'999) / 1'000'000); }

// One uv_write of bytes it owns; freed in its callback, which then calls `done`.
struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
    std::function<void(int status)> done;
};

void write_owned(uv_stream_t* stream, std::string bytes, std::function<void(int)> done) {
    auto request = std::make_unique<WriteRequest>();
    request->bytes = std::move(bytes);
    request->done = std::move(done);
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    request->req.data = request.get();
    const int rc = uv_write(&request->req, stream, &buf, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<WriteRequest> owned(static_cast<WriteRequest*>(req->data));
        if (owned->done) owned->done(status);
    });
    if (rc < 0) {
        if (request->done) request->done(rc);
        return;
    }
    (void)request.release();   // the callback owns it now
}

std::string seconds_words(std::uint64_t ms) { return std::to_string(ms / 1000) + " s"; }

}  // namespace

struct RelayServer::Impl {
    struct Circuit;

    // One accepted connection: alone until it joins a circuit (or is refused).
    // Its handles' data point at it; Handle::close clears them, so callbacks
    // queued after it is gone find nothing.
    struct Conn {
        Conn(Impl& i, std::uint64_t conn_id) : impl(i), id(conn_id), tcp(i.loop.get()), timer(i.loop.get()) {
            tcp.get()->data = this;
            timer.get()->data = this;
        }
        Impl& impl;
        std::uint64_t id;
        common::Tcp tcp;
        common::Timer timer;   // the preface's deadline, then the partner's
        std::string inbox;     // the preface and whatever came with it, then only what came after it
        std::optional<RelayClaim> claim;
        Circuit* circuit = nullptr;   // once joined
        int index = 0;                // its side in the circuit
    };

    // Two joined connections. Direction i copies what side i sends to side 1-i.
    struct Circuit {
        Circuit(Impl& i, std::uint64_t rate)
            : impl(i), bucket(rate, [] { return uv_hrtime(); }), lifetime(i.loop.get()),
              pace{common::Timer(i.loop.get()), common::Timer(i.loop.get())} {
            lifetime.get()->data = this;
            pace[0].get()->data = this;
            pace[1].get()->data = this;
        }
        Impl& impl;
        std::uint64_t id = 0;
        std::string fetcher, holder;
        std::array<std::unique_ptr<Conn>, 2> side;
        std::array<bool, 2> eof{};         // side i sent its end (then side 1-i is shut down for writing)
        std::array<bool, 2> in_flight{};   // a chunk read from side i is being written or paid for
        std::array<std::uint64_t, 2> owed_circuit{}, owed_total{};
        std::uint64_t relayed = 0;
        std::uint64_t joined_ms = 0;
        common::TokenBucket bucket;
        common::Timer lifetime;
        std::array<common::Timer, 2> pace;
    };

    Impl(RelayServer& o, RelayLimits l)
        : owner(o), limits(l), total(l.total_rate, [] { return uv_hrtime(); }), admission(l.max_circuits) {}

    RelayServer& owner;
    RelayLimits limits;
    common::Loop loop;
    std::unique_ptr<common::Tcp> listener;
    uv_async_t stop_signal{};
    common::TokenBucket total;
    CircuitAdmission admission;
    std::uint64_t next_conn = 1;
    std::map<std::uint64_t, std::unique_ptr<Conn>> unjoined;     // by conn id: before the preface, or refused
    std::map<std::uint64_t, std::unique_ptr<Conn>> waiting;      // by circuit id: the first side to arrive
    std::map<std::uint64_t, std::unique_ptr<Circuit>> circuits;  // by circuit id

    static std::uint64_t now_ms() { return uv_hrtime() / 1'000'000; }   // as RelayServer::issue

    void count(std::uint64_t RelayCounts::*member, std::uint64_t n = 1) {
        std::lock_guard lock(owner.mutex_);
        owner.counts_.*member += n;
        owner.counts_.open = admission.active();
    }

    // ---- stopping (on the relay's thread, from the stop signal) ----

    void shut() {
        circuits.clear();
        waiting.clear();
        unjoined.clear();
        listener.reset();
        uv_close(reinterpret_cast<uv_handle_t*>(&stop_signal), nullptr);
        // uv_run returns once the handles above are closed and their callbacks ran.
    }

    // ---- accepting and prefaces ----

    void accept_one() {
        auto conn = std::make_unique<Conn>(*this, next_conn++);
        if (uv_accept(listener->stream(), conn->tcp.stream()) != 0) return;
        if (unjoined.size() >= kMaxUnjoined) return;   // conn's destructor closes it
        uv_tcp_nodelay(conn->tcp.get(), 1);
        Conn& c = *conn;
        unjoined.emplace(c.id, std::move(conn));
        arm(c, limits.preface_deadline_ms);
        uv_read_start(c.tcp.stream(), common::Loop::alloc_read_buffer,
                      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
                          if (auto* conn = static_cast<Conn*>(stream->data)) conn->impl.on_preface(*conn, nread, buf);
                      });
    }

    void arm(Conn& c, std::uint64_t ms) {
        uv_timer_start(
            c.timer.get(),
            [](uv_timer_t* t) {
                if (auto* conn = static_cast<Conn*>(t->data)) conn->impl.on_conn_deadline(*conn);
            },
            ms, 0);
    }

    void on_conn_deadline(Conn& c) {
        if (c.claim) {   // waiting for its partner
            auto it = waiting.find(c.claim->circuit);
            assert(it != waiting.end() && it->second.get() == &c);
            auto conn = std::move(it->second);
            waiting.erase(it);
            admission.close();
            count(&RelayCounts::no_partner);
            const std::string why = "the other side did not come within " + seconds_words(limits.partner_deadline_ms);
            owner.notify({RelayNotice::Kind::refused, c.claim->fetcher, c.claim->holder, why});
            return refuse(std::move(conn), why);
        }
        auto it = unjoined.find(c.id);
        if (it == unjoined.end()) return;
        auto conn = std::move(it->second);
        unjoined.erase(it);
        count(&RelayCounts::refused_token);
        refuse(std::move(conn), "no preface within " + seconds_words(limits.preface_deadline_ms));
    }

    void on_preface(Conn& c, ssize_t nread, const uv_buf_t* buf) {
        auto it = unjoined.find(c.id);
        if (it == unjoined.end()) return;
        if (nread < 0) {   // gone before saying who it is
            unjoined.erase(it);
            return;
        }
        c.inbox.append(buf->base, static_cast<std::size_t>(nread));
        const auto parsed = proto::parse_relay_preface(c.inbox);
        if (std::holds_alternative<proto::RelayIncomplete>(parsed)) return;
        uv_read_stop(c.tcp.stream());   // what follows waits for the partner: at most one read's worth
        auto conn = std::move(it->second);
        unjoined.erase(it);
        if (const auto* bad = std::get_if<proto::RelayBad>(&parsed)) {
            count(&RelayCounts::refused_token);
            return refuse(std::move(conn), bad->why);
        }
        const auto& line = std::get<proto::RelayLine>(parsed);
        std::optional<RelayClaim> claim;
        {
            std::lock_guard lock(owner.mutex_);
            claim = owner.tokens_.claim(line.text, now_ms());
        }
        if (!claim) {
            count(&RelayCounts::refused_token);
            return refuse(std::move(conn), "unknown, used or expired token");
        }
        c.inbox.erase(0, line.consumed);
        c.claim = std::move(claim);
        if (auto partner = waiting.find(c.claim->circuit); partner != waiting.end()) {
            auto first = std::move(partner->second);
            waiting.erase(partner);
            return join(std::move(first), std::move(conn));
        }
        if (!admission.open()) {
            count(&RelayCounts::refused_full);
            const std::string why = "the relay is full (at most " + std::to_string(admission.max()) +
                                    (admission.max() == 1 ? " circuit" : " circuits") + " at once)";
            owner.notify({RelayNotice::Kind::refused, c.claim->fetcher, c.claim->holder, why});
            return refuse(std::move(conn), why);
        }
        count(&RelayCounts::open, 0);
        arm(c, limits.partner_deadline_ms);
        waiting.emplace(c.claim->circuit, std::move(conn));
    }

    // Writes the refusal, then closes. The Conn lives in `unjoined` (under a
    // fresh id) until its write completes, so stop() closes it too.
    void refuse(std::unique_ptr<Conn> conn, const std::string& reason) {
        uv_read_stop(conn->tcp.stream());
        uv_timer_stop(conn->timer.get());
        conn->claim.reset();
        const auto id = conn->id;
        uv_stream_t* stream = conn->tcp.stream();
        unjoined.emplace(id, std::move(conn));
        write_owned(stream, proto::relay_refused(reason), [this, id](int) { unjoined.erase(id); });
    }

    // ---- circuits ----

    void join(std::unique_ptr<Conn> first, std::unique_ptr<Conn> second) {
        auto circuit = std::make_unique<Circuit>(*this, limits.circuit_rate);
        Circuit& k = *circuit;
        k.id = first->claim->circuit;
        k.fetcher = first->claim->fetcher;
        k.holder = first->claim->holder;
        k.joined_ms = now_ms();
        for (auto* conn : {first.get(), second.get()}) uv_timer_stop(conn->timer.get());
        const int first_index = first->claim->side == RelaySide::fetcher ? 0 : 1;
        k.side[first_index] = std::move(first);
        k.side[1 - first_index] = std::move(second);
        for (int i = 0; i < 2; ++i) {
            k.side[i]->circuit = &k;
            k.side[i]->index = i;
        }
        uv_timer_start(
            k.lifetime.get(),
            [](uv_timer_t* t) {
                if (auto* c = static_cast<Circuit*>(t->data)) {
                    c->impl.end(*c, "open for its limit of " + std::to_string(c->impl.limits.circuit_seconds) + " s");
                }
            },
            limits.circuit_seconds * 1000, 0);
        circuits.emplace(k.id, std::move(circuit));
        count(&RelayCounts::opened);
        owner.notify({RelayNotice::Kind::opened, k.fetcher, k.holder, "circuit " + std::to_string(k.id)});
        for (int i = 0; i < 2; ++i) {
            write_owned(k.side[i]->tcp.stream(), proto::relay_joined(), nullptr);
        }
        const auto id = k.id;
        for (int i = 0; i < 2 && circuits.contains(id); ++i) {   // a failure below ends it
            // What came with the preface goes first; reading resumes once it is written.
            auto early = std::move(k.side[i]->inbox);
            if (early.empty()) {
                start_reading(k, i);
            } else {
                forward(k, i, std::move(early));
            }
        }
    }

    void start_reading(Circuit& k, int i) {
        const int rc = uv_read_start(k.side[i]->tcp.stream(), common::Loop::alloc_read_buffer,
                                     [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
                                         auto* conn = static_cast<Conn*>(stream->data);
                                         if (conn && conn->circuit) conn->impl.on_data(*conn->circuit, conn->index, nread, buf);
                                     });
        if (rc < 0) end(k, "cannot read: " + common::uv_error(rc));
    }

    void on_data(Circuit& k, int i, ssize_t nread, const uv_buf_t* buf) {
        if (nread == 0) return;
        if (nread == UV_EOF) {
            uv_read_stop(k.side[i]->tcp.stream());
            k.eof[i] = true;
            if (!k.in_flight[i]) pass_eof(k, i);
            return;
        }
        if (nread < 0) return end(k, std::string(to_string(i == 0 ? RelaySide::fetcher : RelaySide::holder)) + ": " +
                                         common::uv_error(static_cast<int>(nread)));
        uv_read_stop(k.side[i]->tcp.stream());   // one chunk per direction at a time
        forward(k, i, std::string(buf->base, static_cast<std::size_t>(nread)));
    }

    // Side i's end reached side 1-i: shut its writing down; both ends: done.
    void pass_eof(Circuit& k, int i) {
        if (k.eof[0] && k.eof[1] && !k.in_flight[0] && !k.in_flight[1]) return end(k, "both sides closed");
        auto request = std::make_unique<uv_shutdown_t>();
        const int rc = uv_shutdown(request.get(), k.side[1 - i]->tcp.stream(),
                                   [](uv_shutdown_t* req, int) { std::unique_ptr<uv_shutdown_t> owned(req); });
        if (rc < 0) return end(k, "cannot pass the end on: " + common::uv_error(rc));
        (void)request.release();   // the callback owns it now
    }

    void forward(Circuit& k, int i, std::string bytes) {
        const auto n = bytes.size();
        k.in_flight[i] = true;
        k.relayed += n;
        k.owed_circuit[i] += n;
        k.owed_total[i] += n;
        count(&RelayCounts::bytes, n);
        const auto id = k.id;
        write_owned(k.side[1 - i]->tcp.stream(), std::move(bytes), [this, id, i](int status) {
            auto it = circuits.find(id);
            if (it == circuits.end()) return;
            Circuit& c = *it->second;
            if (status < 0) return end(c, "cannot write: " + common::uv_error(status));
            if (auto spent = circuit_spent(limits, c.relayed, c.joined_ms, now_ms())) return end(c, *spent);
            pay(c, i);
        });
    }

    // Takes what direction i owes from the circuit's and the relay's buckets;
    // reads again once paid, else waits for the tokens on its pace timer.
    void pay(Circuit& k, int i) {
        k.owed_circuit[i] -= k.bucket.take(k.owed_circuit[i]);
        k.owed_total[i] -= total.take(k.owed_total[i]);
        if (k.owed_circuit[i] == 0 && k.owed_total[i] == 0) {
            k.in_flight[i] = false;
            if (k.eof[i]) return pass_eof(k, i);
            return start_reading(k, i);
        }
        const auto wait_ns = std::max(k.bucket.wait_ns(k.owed_circuit[i]), total.wait_ns(k.owed_total[i]));
        uv_timer_start(k.pace[i].get(), i == 0 ? on_pace<0> : on_pace<1>, ceil_ms(wait_ns), 0);
    }

    template <int I>
    static void on_pace(uv_timer_t* t) {
        if (auto* c = static_cast<Circuit*>(t->data)) c->impl.pay(*c, I);
    }

    void end(Circuit& k, const std::string& why) {
        auto it = circuits.find(k.id);
        assert(it != circuits.end());
        auto circuit = std::move(it->second);
        circuits.erase(it);
        admission.close();
        count(&RelayCounts::open, 0);
        owner.notify({RelayNotice::Kind::closed, circuit->fetcher, circuit->holder,
                      "circuit " + std::to_string(circuit->id) + " closed after " + std::to_string(circuit->relayed) +
                          " bytes: " + why});
        // circuit's destructor closes both connections and its timers.
    }
};

RelayServer::RelayServer(RelayLimits limits)
    : impl_(std::make_unique<Impl>(*this, limits)), tokens_([] { return proto::random_relay_token(); }) {}

RelayServer::~RelayServer() { stop(); }

proto::Result<bool> RelayServer::start(const common::Endpoint& at) {
    assert(!thread_.joinable());
    Impl& impl = *impl_;
    auto listener = common::listen_tcp(
        impl.loop.get(), at,
        [](uv_stream_t* server, int status) {
            auto* self = static_cast<Impl*>(server->data);
            if (self && status == 0) self->accept_one();
        },
        &impl);
    if (!listener) return listener.error();
    impl.listener = std::make_unique<common::Tcp>(std::move(*listener));
    port_ = common::bound_port(*impl.listener);
    uv_async_init(impl.loop.get(), &impl.stop_signal, [](uv_async_t* a) { static_cast<Impl*>(a->data)->shut(); });
    impl.stop_signal.data = &impl;
    // Before the thread starts, nothing else touches the loop; after, only the thread does.
    thread_ = std::thread([&impl] { impl.loop.run(); });
    return true;
}

void RelayServer::stop() {
    if (!thread_.joinable()) return;
    uv_async_send(&impl_->stop_signal);
    thread_.join();
}

proto::Result<RelayTicket> RelayServer::issue(const std::string& fetcher, const std::string& holder) {
    std::lock_guard lock(mutex_);
    return tokens_.issue(fetcher, holder, Impl::now_ms());
}

std::vector<RelayNotice> RelayServer::take_notices() {
    std::lock_guard lock(mutex_);
    return std::exchange(notices_, {});
}

RelayCounts RelayServer::counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
}

void RelayServer::notify(RelayNotice notice) {
    std::lock_guard lock(mutex_);
    if (notices_.size() >= kMaxNotices) notices_.erase(notices_.begin());
    notices_.push_back(std::move(notice));
}

}  // namespace peershare::tracker
