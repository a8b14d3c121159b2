// daemon/reverse/preface_dialer.cpp — dial, write a preface, await an answer line.
#include "daemon/reverse/preface_dialer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "common/uv.hpp"

namespace peershare::peerd {

namespace {

// strerror's words, lowercase first as libuv's (common::uv_error): "connection refused".
std::string errno_text(int err) {
    std::string text = std::strerror(err);
    if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    return text;
}

// The socket's pending error (SO_ERROR), 0 if none.
int socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

// "15 s", or "300 ms" for a deadline that is not whole seconds.
std::string duration_text(std::uint64_t ms) {
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

struct PrefaceDialer::Dial {
    explicit Dial(uv_loop_t* loop) : deadline(loop) {}
    ~Dial() { close_poll(); }   // before `socket` closes: the poll must let go of it first

    void close_poll() {
        if (!poll) return;
        poll->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(poll), common::free_handle);
        poll = nullptr;
    }

    enum class Phase { connecting, writing, reading };
    PrefaceDialer* owner = nullptr;
    std::uint64_t id = 0;
    std::string where;           // "ADDR:PORT", for messages
    std::string preface;
    std::size_t written = 0;
    AnswerJudge judge;
    std::string line;            // bytes of the answer line consumed so far (the judge found no end in them)
    Phase phase = Phase::connecting;
    DoneFn done;
    common::UniqueFd socket;
    uv_poll_t* poll = nullptr;   // watches `socket`; freed by libuv after uv_close
    common::Timer deadline;
};

PrefaceDialer::PrefaceDialer(uv_loop_t* loop, std::string target, DialLimits limits)
    : loop_(loop), target_(std::move(target)), limits_(limits) {
    assert(limits_.deadline_ms > 0 && limits_.max_dials > 0);
}

PrefaceDialer::~PrefaceDialer() = default;   // each Dial closes its poll, timer and socket

void PrefaceDialer::abandon() { dials_.clear(); }

std::string PrefaceDialer::name(const std::string& where) const {
    return target_.empty() ? where : target_ + " at " + where;
}

proto::Result<bool> PrefaceDialer::dial(const common::Endpoint& to, std::string preface, AnswerJudge judge,
                                        DoneFn done) {
    using proto::Error;
    using proto::ErrorCode;
    assert(done);
    assert(!judge || limits_.max_answer_bytes > 0);
    const auto where = common::to_string(to);
    auto addr = common::to_sockaddr(to);
    if (!addr) return Error{ErrorCode::bad_request, "cannot dial " + name(where) + ": not an IP address and port"};
    const auto* sa = reinterpret_cast<const sockaddr*>(&*addr);
    if (auto why = common::refused_address(sa)) return Error{ErrorCode::bad_request, "cannot dial " + name(where) + ": " + *why};
    if (dials_.size() >= limits_.max_dials) {
        return Error{ErrorCode::busy, std::to_string(limits_.max_dials) + " dials" +
                                          (target_.empty() ? std::string() : " to " + target_) + " are already running"};
    }
    common::UniqueFd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return Error{ErrorCode::unavailable, "cannot make a socket to dial " + name(where) + ": " + errno_text(errno)};
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::connect(fd.get(), sa, len) != 0 && errno != EINPROGRESS) {
        return Error{ErrorCode::unavailable, errno_text(errno) + " at " + where};
    }

    auto d = std::make_unique<Dial>(loop_);
    d->owner = this;
    d->id = next_id_++;
    d->where = where;
    d->preface = std::move(preface);
    d->judge = std::move(judge);
    d->done = std::move(done);
    d->socket = std::move(fd);
    auto poll = std::make_unique<uv_poll_t>();
    if (const int rc = uv_poll_init(loop_, poll.get(), d->socket.get()); rc < 0) {
        return Error{ErrorCode::unavailable, "cannot watch the socket to " + name(where) + ": " + common::uv_error(rc)};
    }
    d->poll = poll.release();   // libuv's now: freed by free_handle after uv_close
    // A handle's data is its dial, which outlives it: finish() closes both
    // handles before the dial goes, and a closed handle calls back no more.
    d->poll->data = d.get();
    d->deadline.get()->data = d.get();
    uv_poll_start(d->poll, UV_WRITABLE, [](uv_poll_t* p, int status, int events) {
        auto* dial = static_cast<Dial*>(p->data);
        dial->owner->on_ready(*dial, status, events);
    });
    uv_timer_start(d->deadline.get(), [](uv_timer_t* t) {
        auto* dial = static_cast<Dial*>(t->data);
        auto* owner = dial->owner;
        owner->finish(dial->id, false,
                      (dial->judge ? "no answer from " : "no connection to ") + owner->name(dial->where) +
                          " within " + duration_text(owner->limits_.deadline_ms));
    }, limits_.deadline_ms, 0);
    dials_.emplace(d->id, std::move(d));
    return true;
}

void PrefaceDialer::on_ready(Dial& d, int status, int events) {
    const int fd = d.socket.get();
    if (status < 0) {   // libuv says EBADF for POLLERR: the socket knows what went wrong
        const int err = socket_error(fd);
        return finish(d.id, false, (err ? errno_text(err) : common::uv_error(status)) + " at " + d.where);
    }
    if (d.phase == Dial::Phase::connecting) {
        if (!(events & UV_WRITABLE)) return;
        if (const int err = socket_error(fd)) return finish(d.id, false, errno_text(err) + " at " + d.where);
        d.phase = Dial::Phase::writing;
    }
    if (d.phase == Dial::Phase::writing) {
        if (!(events & UV_WRITABLE)) return;
        while (d.written < d.preface.size()) {
            const auto n = ::send(fd, d.preface.data() + d.written, d.preface.size() - d.written, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;   // writable again later
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return finish(d.id, false, "cannot write the preface to " + name(d.where) + ": " + errno_text(errno));
            d.written += static_cast<std::size_t>(n);
        }
        if (!d.judge) return finish(d.id, true, "");
        d.phase = Dial::Phase::reading;
        uv_poll_start(d.poll, UV_READABLE, [](uv_poll_t* p, int st, int ev) {
            auto* dial = static_cast<Dial*>(p->data);
            dial->owner->on_ready(*dial, st, ev);
        });
        return;
    }
    if (events & UV_READABLE) read_answer(d);
}

void PrefaceDialer::read_answer(Dial& d) {
    // Peek at what came, judge the line so far with it, and consume only the
    // line's own bytes: whatever follows belongs to the other side.
    const int fd = d.socket.get();
    assert(d.line.size() < limits_.max_answer_bytes);
    std::vector<char> buf(limits_.max_answer_bytes - d.line.size());
    const auto n = ::recv(fd, buf.data(), buf.size(), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) return finish(d.id, false, "cannot read the answer of " + name(d.where) + ": " + errno_text(errno));
    if (n == 0) return finish(d.id, false, name(d.where) + " closed the connection without answering");
    const std::string seen = d.line + std::string(buf.data(), static_cast<std::size_t>(n));
    const DialAnswer answer = d.judge(seen);
    if (answer.kind == DialAnswer::Kind::bad) return finish(d.id, false, answer.why + " (" + name(d.where) + ")");
    std::size_t take = static_cast<std::size_t>(n);   // incomplete: all of it is the line's
    if (answer.kind == DialAnswer::Kind::ok) {
        assert(answer.consumed > d.line.size() && answer.consumed <= seen.size());
        take = answer.consumed - d.line.size();
    } else if (seen.size() >= limits_.max_answer_bytes) {
        // A judge that wants more than the longest line: never wait for it.
        return finish(d.id, false, "an answer longer than " + std::to_string(limits_.max_answer_bytes) +
                                       " bytes from " + name(d.where));
    }
    const auto got = ::recv(fd, buf.data(), take, 0);
    // Peeked bytes are there to be read: all of them come at once.
    if (got != static_cast<ssize_t>(take)) {
        return finish(d.id, false, "cannot read the answer of " + name(d.where) + ": " + errno_text(errno));
    }
    if (answer.kind == DialAnswer::Kind::ok) return finish(d.id, true, "");
    d.line = seen;
}

void PrefaceDialer::finish(std::uint64_t id, bool ok, const std::string& why) {
    const auto it = dials_.find(id);
    assert(it != dials_.end());   // a dial calls back only while the dialer holds it
    auto dial = std::move(it->second);
    dials_.erase(it);
    dial->close_poll();
    dial->deadline.close();
    auto done = std::move(dial->done);
    common::UniqueFd socket = ok ? std::move(dial->socket) : common::UniqueFd{};
    dial.reset();   // closes the socket unless it was handed over
    done(std::move(socket), why);
}

}  // namespace peershare::peerd
