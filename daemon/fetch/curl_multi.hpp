// daemon/fetch/curl_multi.hpp — libcurl's multi interface driven by a libuv
// loop (curl's "multi_socket" API, see libcurl-multi(3) and
// curl_multi_socket_action(3)): one uv_poll per socket curl asks to watch,
// one uv_timer for curl's timeouts; finished transfers are handed to a
// callback. Loop thread only.
//
// The owner may call close() (and remove its handles) from inside the done
// callback; the object itself must outlive every callback, so the owner
// destroys it only outside them. Watches still closing hold no pointer to it.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <functional>
#include <set>
#include <string>

#include "common/uv.hpp"

namespace peershare::peerd {

class CurlMulti {
public:
    // A transfer finished with `result` (it is still added: the callback
    // removes it, or closes everything).
    using DoneFn = std::function<void(CURL* easy, CURLcode result)>;
    // A socket could not be watched (the loop refused): the transfers cannot go on.
    using FailFn = std::function<void(const std::string& why)>;

    // A socket curl opened is about to be watched for the first time (after
    // curl started connecting it): the owner may still swap what the
    // descriptor refers to (a reverse source does, handed_sockets.hpp).
    using NewSocketFn = std::function<void(CURL* easy, curl_socket_t s)>;

    CurlMulti(uv_loop_t* loop, DoneFn done, FailFn fail);
    void on_new_socket(NewSocketFn fn) { new_socket_ = std::move(fn); }
    ~CurlMulti();
    CurlMulti(const CurlMulti&) = delete;
    CurlMulti& operator=(const CurlMulti&) = delete;

    // Creates the multi handle; false if curl cannot.
    bool open();
    bool is_open() const { return multi_ != nullptr; }
    // curl_multi_add_handle; false on failure. Only while open.
    bool add(CURL* easy);
    // curl_multi_remove_handle; the easy handle stays the caller's. Only while open.
    void remove(CURL* easy);
    // Removes nothing: every easy handle must have been removed. Closes the
    // multi handle, every watch and the timer; the object may be opened again.
    void close();
    // close(), and the timer handle too, for good: the owner is going away
    // while the loop may outlive it (or close every handle itself first).
    void shut_down();
    // curl_easy_pause(CURLPAUSE_CONT) for a handle whose write callback paused
    // it, then drives curl (which may deliver data at once).
    void resume(CURL* easy);

private:
    struct Watch {
        uv_poll_t poll;  // first: the handle's address is the watch's
        CurlMulti* owner = nullptr;
        curl_socket_t fd = CURL_SOCKET_BAD;
    };

    static int on_socket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
    static int on_timer(CURLM* multi, long timeout_ms, void* userp);
    static void on_poll(uv_poll_t* poll, int status, int events);
    void drive(curl_socket_t s, int events);
    void collect_finished();
    void close_watch(Watch* w);

    uv_loop_t* loop_;
    DoneFn done_;
    FailFn fail_;
    NewSocketFn new_socket_;
    CURLM* multi_ = nullptr;
    bool socket_failed_ = false;
    std::set<Watch*> watches_;
    common::Timer timer_;
};

}  // namespace peershare::peerd
