// tracker/event_stream.cpp — batching events to SSE subscribers.
#include "tracker/event_stream.hpp"

#include <vector>

namespace peershare::tracker {

std::string sse_message(const proto::Event& e) {
    // JSON escapes newlines, so the data is one line as SSE needs.
    return "id: " + std::to_string(e.seq) + "\nevent: event\ndata: " +
           e.to_json().dump(-1, ' ', false, proto::json::error_handler_t::replace) + "\n\n";
}

EventStream::EventStream(uv_loop_t* loop, EventLog& events, common::HttpServer& http)
    : events_(events), http_(http), timer_(loop) {
    timer_.get()->data = this;
}

EventStream::~EventStream() { stop(); }

void EventStream::stop() {
    if (follow_token_) events_.unfollow(*follow_token_);
    follow_token_.reset();
    uv_timer_stop(timer_.get());
    subscribers_.clear();
}

void EventStream::subscribe(common::HttpServer::ConnectionId id) {
    // "retry" tells EventSource how soon to reconnect after a drop.
    if (!http_.open_stream(id, "text/event-stream; charset=utf-8", "retry: 2000\n\n")) return;
    subscribers_.insert(id);
    if (follow_token_) return;
    follow_token_ = events_.follow([this](const proto::Event& e) { on_event(e); });
    quiet_ms_ = 0;
    uv_timer_start(
        timer_.get(), [](uv_timer_t* t) { static_cast<EventStream*>(t->data)->flush(); }, kFlushMs, kFlushMs);
}

void EventStream::forget(common::HttpServer::ConnectionId id) {
    subscribers_.erase(id);
    if (!subscribers_.empty() || !follow_token_) return;
    events_.unfollow(*follow_token_);
    follow_token_.reset();
    uv_timer_stop(timer_.get());
    batch_.clear();
    batched_ = 0;
    skipped_ = 0;
}

void EventStream::on_event(const proto::Event& e) {
    if (batched_ >= kMaxEventsPerFlush) {
        ++skipped_;
        return;
    }
    batch_ += sse_message(e);
    ++batched_;
}

void EventStream::flush() {
    if (skipped_) {
        batch_ += "event: skipped\ndata: {\"skipped\":" + std::to_string(skipped_) + "}\n\n";
    }
    quiet_ms_ += kFlushMs;
    if (batch_.empty() && quiet_ms_ >= kKeepAliveMs) batch_ = ": keep-alive\n\n";
    if (batch_.empty()) return;
    quiet_ms_ = 0;
    // send() may drop a subscriber, whose close comes back through forget() later, not now.
    const std::vector<common::HttpServer::ConnectionId> ids(subscribers_.begin(), subscribers_.end());
    for (auto id : ids) {
        if (!http_.send(id, batch_)) subscribers_.erase(id);
    }
    batch_.clear();
    batched_ = 0;
    skipped_ = 0;
}

}  // namespace peershare::tracker
