// daemon/reverse/preface_dialer.hpp — the one dial behind both outbound
// connections of issue 11 (docs/protocol.md §11.10, §15): dial an IP literal
// and port, write a one-line preface, and, when the other end answers with a
// line of its own, read that line and nothing past it; then hand the
// connected socket to the caller. ConnectBackDialer (connect_back.hpp: the
// holder dials a fetcher, no answer) and RelayDialer (relay_dialer.hpp:
// `PEERSHARE-RELAY/1 OK`) are this with their preface and answer.
//
// Nothing past the answer line is read: the other side's first bytes may
// follow it in the same segment (the relay copies the fetcher's request right
// behind its OK), so the line is read with recv(2) MSG_PEEK and only its own
// bytes are consumed. Hence a raw non-blocking socket watched by a uv_poll,
// not a uv_tcp stream.
//
// Each dial has one deadline for connect, preface and answer together, not
// an idle timer. At most `max_dials` run at once; past that a dial is refused
// at once. Loop thread only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/net.hpp"
#include "common/unique_fd.hpp"
#include "proto/errors.hpp"

namespace peershare::peerd {

// What the answer bytes seen so far say.
struct DialAnswer {
    enum class Kind { incomplete, ok, bad };
    Kind kind = Kind::incomplete;
    std::size_t consumed = 0;   // ok: the answer line's length, its CRLF included
    std::string why;            // bad: in words ("the relay refused: the relay is full")
};
// Judges `seen`, the answer's bytes so far (at most max_answer_bytes, the
// line's and perhaps some past it). Empty: no answer is awaited; the dial
// is done once the preface is written.
using AnswerJudge = std::function<DialAnswer(std::string_view seen)>;

struct DialLimits {
    std::uint64_t deadline_ms = 5'000;   // connect + preface (+ answer), all of it
    std::size_t max_dials = 16;          // at once
    std::size_t max_answer_bytes = 0;    // the longest answer line; > 0 with a judge
};

class PrefaceDialer {
public:
    // On success `socket` is connected, non-blocking, the preface written and
    // nothing read past the answer line; the callee owns it. On failure
    // `socket` is empty and `why` is one line naming the target:
    // "connection refused at 10.0.0.1:9997", "no answer from the relay at
    // 10.0.0.1:9997 within 15 s", "no connection to 10.0.0.5:7070 within 5 s",
    // or the judge's `why` with the target after it.
    using DoneFn = std::function<void(common::UniqueFd socket, const std::string& why)>;

    // `target` names the other end in messages ("the relay": "the relay at
    // ADDR:PORT"); empty: the address alone.
    PrefaceDialer(uv_loop_t* loop, std::string target, DialLimits limits);
    ~PrefaceDialer();   // abandons dials in flight: their sockets are closed, `done` is not called
    PrefaceDialer(const PrefaceDialer&) = delete;
    PrefaceDialer& operator=(const PrefaceDialer&) = delete;

    // Dials `to` (an IP literal and port: never a name), writes `preface`,
    // awaits the answer `judge` accepts (if any). Errors at once (bad_request:
    // not an IP address and port, or a refused one, common::refused_address;
    // busy: max_dials running; unavailable: no socket, or the connect failed
    // at once); otherwise `done` (not empty) is called exactly once, later,
    // on the loop.
    proto::Result<bool> dial(const common::Endpoint& to, std::string preface, AnswerJudge judge, DoneFn done);
    std::size_t in_flight() const { return dials_.size(); }
    // Abandons every dial in flight: sockets closed, no `done` called.
    void abandon();
    std::uint64_t deadline_ms() const { return limits_.deadline_ms; }

private:
    struct Dial;
    void on_ready(Dial& d, int status, int events);
    void read_answer(Dial& d);
    // Ends a dial: hands the socket over (ok) or closes it, then calls done.
    void finish(std::uint64_t id, bool ok, const std::string& why);
    std::string name(const std::string& where) const;   // "the relay at ADDR:PORT" or "ADDR:PORT"

    uv_loop_t* loop_;
    std::string target_;
    DialLimits limits_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Dial>> dials_;
};

}  // namespace peershare::peerd
