// daemon/fetch/curl_multi.cpp — see curl_multi.hpp.
#include "daemon/fetch/curl_multi.hpp"

#include <utility>
#include <vector>

namespace peershare::peerd {

CurlMulti::CurlMulti(uv_loop_t* loop, DoneFn done, FailFn fail)
    : loop_(loop), done_(std::move(done)), fail_(std::move(fail)), timer_(loop) {
    timer_.get()->data = this;
}

CurlMulti::~CurlMulti() { close(); }

bool CurlMulti::open() {
    if (multi_) return true;
    if (!timer_.get()) return false;  // shut down
    multi_ = curl_multi_init();
    if (!multi_) return false;
    socket_failed_ = false;
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    return true;
}

bool CurlMulti::add(CURL* easy) { return multi_ && curl_multi_add_handle(multi_, easy) == CURLM_OK; }

void CurlMulti::remove(CURL* easy) {
    if (multi_) curl_multi_remove_handle(multi_, easy);
}

void CurlMulti::close() {
    CURLM* multi = std::exchange(multi_, nullptr);  // callbacks from here on only release
    if (multi) curl_multi_cleanup(multi);
    for (auto* w : std::vector<Watch*>(watches_.begin(), watches_.end())) close_watch(w);
    if (timer_.get()) uv_timer_stop(timer_.get());
}

void CurlMulti::shut_down() {
    close();
    timer_.close();
}

void CurlMulti::resume(CURL* easy) {
    if (!multi_) return;
    curl_easy_pause(easy, CURLPAUSE_CONT);
    drive(CURL_SOCKET_TIMEOUT, 0);
}

int CurlMulti::on_socket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<CurlMulti*>(userp);
    auto* w = static_cast<Watch*>(socketp);
    if (what == CURL_POLL_REMOVE) {
        if (w) self->close_watch(w);
        if (self->multi_) curl_multi_assign(self->multi_, s, nullptr);
        return 0;
    }
    if (!self->multi_) return 0;  // closing
    if (!w) {
        if (self->new_socket_) self->new_socket_(easy, s);   // before epoll sees the descriptor
        w = new Watch;
        if (uv_poll_init_socket(self->loop_, &w->poll, s) != 0) {
            delete w;
            self->socket_failed_ = true;
            return -1;
        }
        w->owner = self;
        w->fd = s;
        self->watches_.insert(w);
        curl_multi_assign(self->multi_, s, w);
    }
    const int events =
        ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&w->poll, events, on_poll);
    return 0;
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<CurlMulti*>(userp);
    if (!self->multi_) return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(self->timer_.get());
        return 0;
    }
    // Even a 0 timeout goes through the loop: curl must not be re-entered from here.
    uv_timer_start(
        self->timer_.get(),
        [](uv_timer_t* t) {
            if (t->data) static_cast<CurlMulti*>(t->data)->drive(CURL_SOCKET_TIMEOUT, 0);
        },
        static_cast<std::uint64_t>(timeout_ms), 0);
    return 0;
}

void CurlMulti::on_poll(uv_poll_t* poll, int status, int events) {
    auto* w = reinterpret_cast<Watch*>(poll);
    if (!w->owner) return;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    w->owner->drive(w->fd, flags);
}

void CurlMulti::drive(curl_socket_t s, int events) {
    if (!multi_) return;
    int running = 0;
    curl_multi_socket_action(multi_, s, events, &running);
    if (socket_failed_) {
        socket_failed_ = false;
        return fail_("cannot watch a socket");
    }
    collect_finished();
}

void CurlMulti::collect_finished() {
    int left = 0;
    // multi_ turns null when a finished transfer ends the whole fetch.
    while (multi_) {
        CURLMsg* m = curl_multi_info_read(multi_, &left);
        if (!m) break;
        if (m->msg == CURLMSG_DONE) done_(m->easy_handle, m->data.result);
    }
}

void CurlMulti::close_watch(Watch* w) {
    watches_.erase(w);
    w->owner = nullptr;
    uv_poll_stop(&w->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll),
             [](uv_handle_t* h) { delete reinterpret_cast<Watch*>(h); });
}

}  // namespace peershare::peerd
