// tracker/event_stream.hpp — the live event feed as Server-Sent Events (HTML
// Living Standard §9.2, "text/event-stream") for /api/v1/events/stream.
//
// Cost is bounded whatever the event rate: events are encoded once into a
// batch, and the batch goes to every subscriber every kFlushMs (one write
// each); past kMaxEventsPerFlush events in one period the rest are counted
// and announced as one "skipped" message. A subscriber whose client stops
// reading is dropped by the HttpServer once its buffer limit is reached.
// It follows the EventLog only while it has subscribers. Owned by the loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "common/http_server.hpp"
#include "common/uv.hpp"
#include "proto/messages.hpp"
#include "tracker/events.hpp"

namespace peershare::tracker {

inline constexpr std::uint64_t kFlushMs = 250;
inline constexpr std::size_t kMaxEventsPerFlush = 25;   // 100 events/s: more than anyone reads
inline constexpr std::uint64_t kKeepAliveMs = 15'000;   // a comment line, so dead clients are found

// One event as an SSE message: "id: SEQ\nevent: event\ndata: JSON\n\n".
std::string sse_message(const proto::Event& e);

class EventStream {
public:
    EventStream(uv_loop_t* loop, EventLog& events, common::HttpServer& http);
    ~EventStream();
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;

    // Answers the request on `id` with the stream and subscribes it.
    void subscribe(common::HttpServer::ConnectionId id);
    void forget(common::HttpServer::ConnectionId id);   // its connection closed
    std::size_t subscribers() const { return subscribers_.size(); }
    void stop();

private:
    void on_event(const proto::Event& e);
    void flush();

    EventLog& events_;
    common::HttpServer& http_;
    common::Timer timer_;
    std::optional<std::uint64_t> follow_token_;
    std::set<common::HttpServer::ConnectionId> subscribers_;
    std::string batch_;
    std::size_t batched_ = 0;
    std::uint64_t skipped_ = 0;
    std::uint64_t quiet_ms_ = 0;   // since the last bytes sent, for keep-alives
};

}  // namespace peershare::tracker
