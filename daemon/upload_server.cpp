// daemon/upload_server.cpp — HTTP connections, file bodies by sendfile(2),
// upload slots and the upload rate limit.
//
// A connection is a small state machine on the loop thread:
//   read → proto::HttpRequestReader (the parsing, pure and fuzzed: a queue of
//   at most kMaxPipelinedRequests; reading stops past that) → one response at a time:
//   headers (and any small body) with uv_write, then for a file body
//   open + fstat in the pool, then sendfile(2) in the pool, chunk by chunk.
// Requests are answered strictly in order, so pipelining needs nothing more.
#include "daemon/upload_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>
#include <string>
#include <string_view>

#include "proto/http.hpp"
#include "proto/http_request.hpp"
#include "proto/reach.hpp"
#include "proto/reverse.hpp"

namespace peershare::peerd {
namespace {

using proto::response_head;

std::int64_t mtime_ns(const uv_stat_t& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
           static_cast<std::int64_t>(st.st_mtim.tv_nsec);
}

// Closes a file descriptor in the pool; the request frees itself, so the
// connection that opened the file may already be gone.
void close_file_async(uv_loop_t* loop, int fd) {
    auto req = std::make_unique<uv_fs_t>();
    const int rc = uv_fs_close(loop, req.get(), fd, [](uv_fs_t* r) {
        std::unique_ptr<uv_fs_t> owned(r);
        uv_fs_req_cleanup(r);
    });
    if (rc < 0) {
        ::close(fd);
        return;
    }
    req.release();   // owned by libuv until the callback
}

void set_cork(int fd, bool on) {
    const int value = on ? 1 : 0;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value);
}

}  // namespace

// ---------------------------------------------------------------------------
// One client connection. It owns itself: it is deleted once its TCP handle's
// close callback has run and no work of it is left in the pool, never before
// (an fs or sendfile request in the pool points at it).
//
// Sending a body. Debian's libuv 1.44 uv_fs_sendfile() does not fit: towards
// a socket it tries copy_file_range(), gets EINVAL and falls back to an 8 KiB
// read/write loop that, when the socket is full, blocks its worker in
// poll(-1) — one slow reader would hold a pool thread, and four would stall
// every upload. So we queue sendfile(2) itself with uv_queue_work: one call
// per chunk on the non-blocking socket, which sends what fits in the socket
// buffer and returns (or fails with EAGAIN) at once. When it sent less than
// asked, the socket is full, and we wait for it to become writable with a
// uv_poll on a dup() of the socket (a second watcher on the same fd number
// would clash with the stream's own watcher in libuv; a dup is a separate
// epoll entry), then issue the next chunk. So no worker ever waits on a
// client, and a connection has at most one request in the pool.
//
// The pool always uses the dup (sock_fd_), which lives as long as this
// object: closing the TCP handle while sendfile runs therefore cannot let the
// fd number be reused under the worker's feet.
class UploadServer::Connection {
public:
    // `sniff`: the connection was accepted, so its first bytes may be a
    // connect-back preface (proto/reverse.hpp) instead of an HTTP request.
    Connection(UploadServer& server, std::uint64_t id, uv_tcp_t* tcp, int sock_fd, bool sniff)
        : server_(&server), loop_(server.loop_), id_(id), tcp_(tcp), sock_fd_(sock_fd),
          timer_(server.loop_), sniffing_(sniff) {
        tcp_->data = this;
        timer_.get()->data = this;
        sockaddr_storage addr{};
        int len = sizeof addr;
        if (uv_tcp_getpeername(tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            remote_ = common::ip_to_string(addr);
        }
    }

    ~Connection() {
        release_file();
        if (sock_fd_ >= 0) ::close(sock_fd_);
        if (server_) server_->forget(id_);
    }

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start() {
        start_reading();
        pump();
    }

    // The server is going away: no more calls into it.
    void detach() { server_ = nullptr; }

    // Closes at once (pending output is dropped). Safe to call repeatedly.
    void close_now(std::string_view reason) {
        if (phase_ == Phase::closed) return;
        phase_ = Phase::closed;
        if (server_ && server_->log_.enabled(common::LogLevel::debug)) {
            server_->log_.debug("upload connection from " + remote_ + " closed: " + std::string(reason));
        }
        timer_.close();
        if (poll_) {
            poll_->data = nullptr;
            uv_close(reinterpret_cast<uv_handle_t*>(poll_),
                     [](uv_handle_t* h) { std::unique_ptr<uv_poll_t> owned(reinterpret_cast<uv_poll_t*>(h)); });
            poll_ = nullptr;
        }
        release_slot();
        reading_ = false;
        // Pending writes and the shutdown complete with UV_ECANCELED before the close callback.
        uv_close(reinterpret_cast<uv_handle_t*>(tcp_), on_tcp_closed);
        if (in_pool_) uv_cancel(in_pool_);   // only succeeds if it has not started
    }

    // The rate limiter has tokens for us.
    void on_tokens() {
        if (phase_ != Phase::open || !waiting_tokens_) return;
        waiting_tokens_ = false;
        arm_stall_deadline();
        send_more();
    }

private:
    enum class Phase { open, lingering, closed };
    enum class AfterWrite { finish, body };

    struct SendJob {
        uv_work_t req{};
        int sock = -1;
        int file = -1;
        off_t offset = 0;
        std::size_t length = 0;
        ssize_t result = 0;   // bytes sent, or a negative errno
    };

    struct FileResponse {
        std::string id;
        std::string path;
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
        std::uint64_t first = 0;
        std::uint64_t length = 0;
        bool partial = false;
        bool holding = false;   // a transfer's partial file: it grows, its mtime moves
    };

    uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(tcp_); }

    // ---- input ------------------------------------------------------------

    void start_reading() {
        if (reading_ || peer_eof_ || phase_ == Phase::closed) return;
        const int rc = uv_read_start(stream(), common::Loop::alloc_read_buffer, on_read);
        if (rc < 0) return close_now("cannot read: " + common::uv_error(rc));
        reading_ = true;
    }

    void stop_reading() {
        if (!reading_) return;
        uv_read_stop(stream());
        reading_ = false;
    }

    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<Connection*>(stream->data);
        if (!self || self->phase_ == Phase::closed) return;
        if (nread > 0) {
            if (self->phase_ == Phase::lingering) return;   // draining before the close
            self->feed(buf->base, static_cast<std::size_t>(nread));
            self->pump();
        } else if (nread == UV_EOF) {
            self->reading_ = false;
            self->peer_eof_ = true;
            if (self->phase_ == Phase::lingering) return self->close_now("closed after the last response");
            self->pump();   // answer what was asked, then close
        } else if (nread < 0) {
            self->close_now("read failed: " + common::uv_error(static_cast<int>(nread)));
        }
    }

    // Parsing is proto::HttpRequestReader's; here only what to do with its
    // verdict: bytes it cannot take yet (kMaxPipelinedRequests are queued)
    // wait in stash_ with reading stopped; after an error (or an upgrade) no
    // more input is read.
    void feed(const char* data, std::size_t size) {
        if (input_done_) return;
        if (sniffing_) return sniff(data, size);
        const std::size_t taken = reader_.feed({data, size});
        if (reader_.error_status()) {
            input_done_ = true;
            stop_reading();
        } else if (taken < size) {   // the request queue is full: keep the rest for later
            stash_.assign(data + taken, size - taken);
            paused_ = true;
            stop_reading();
        }
    }

    // The first bytes of an accepted connection: an HTTP request (most), or
    // a connect-back preface, whose socket goes to the connect-back handler.
    // At most kReversePrefaceBytes + 1 bytes are kept meanwhile; the request
    // deadline (armed in pump) bounds the wait for them.
    void sniff(const char* data, std::size_t size) {
        const std::size_t before = sniffed_.size();
        sniffed_.append(data, std::min(size, proto::kReversePrefaceBytes + 1 - before));
        const auto scan = proto::scan_preface(sniffed_);
        switch (scan.kind) {
        case proto::PrefaceScan::Kind::incomplete:
            return;   // every byte was kept: a preface is shorter than the cap
        case proto::PrefaceScan::Kind::http: {
            sniffing_ = false;
            std::string all = sniffed_.substr(0, before);
            all.append(data, size);
            sniffed_ = std::string();
            return feed(all.data(), all.size());
        }
        case proto::PrefaceScan::Kind::bad:
            return refuse_connect_back("a malformed connect-back preface");
        case proto::PrefaceScan::Kind::preface:
            // The holder speaks only when asked: bytes after the preface are not a holder's.
            if (sniffed_.size() > scan.used) return refuse_connect_back("bytes after the connect-back preface");
            return hand_over(scan.token);
        }
    }

    void refuse_connect_back(const std::string& why) {
        sniffing_ = false;
        if (server_) server_->count_connect_back(false, remote_, why);
        close_now(why);
    }

    // The socket leaves the server: the handler owns our duplicate of it, the
    // TCP handle (the other descriptor) is closed, this object is freed.
    void hand_over(const std::string& token) {
        sniffing_ = false;
        stop_reading();
        UploadServer* server = server_;
        common::UniqueFd fd(std::exchange(sock_fd_, -1));
        const std::string remote = remote_;
        close_now("handed over as a connect-back");
        if (!server) return;
        std::string why = "no fetch expects it";
        const bool taken = server->connect_back_ && server->connect_back_(token, std::move(fd), remote, why);
        server->count_connect_back(taken, remote, why);
    }

    void resume_parsing() {
        paused_ = false;
        const std::string rest = std::move(stash_);
        stash_.clear();
        feed(rest.data(), rest.size());
        if (!paused_ && !input_done_) start_reading();
    }

    // ---- requests, one at a time, in order -----------------------------------

    void pump() {
        while (phase_ == Phase::open && !busy_) {
            if (auto next = reader_.pop()) {
                serve(std::move(*next));
            } else if (paused_) {
                resume_parsing();
            } else if (const int status = reader_.error_status(); status && !error_answered_) {
                error_answered_ = true;
                answer_parse_error(status);
            } else if (input_done_ || peer_eof_) {
                close_gracefully();
            } else {
                // Armed once per wait: bytes that arrive do not push the deadline back.
                if (!awaiting_request_) arm_timer(server_ ? server_->limits_.request_timeout_ms : 0);
                awaiting_request_ = true;
                return;
            }
        }
    }

    void begin_response(bool keep_alive, std::string target) {
        stop_timer();
        awaiting_request_ = false;
        busy_ = true;
        head_ = false;
        close_after_ = !keep_alive;
        status_ = 0;
        url_ = std::move(target);
    }

    // The reader gave up (after answering what came before): say why, then close.
    void answer_parse_error(int status) {
        begin_response(false, "(unreadable request)");
        respond_text(status, status == 431   ? "request headers are too large\n"
                             : status == 505 ? "only HTTP/1.0 and HTTP/1.1 are spoken here\n"
                                             : "malformed request\n");
    }

    void serve(proto::HttpRequest req) {
        begin_response(req.keep_alive, std::move(req.target));
        if (!server_) return close_now("server stopped");
        if (req.method != "GET" && req.method != "HEAD") {
            return respond_text(405, "only GET and HEAD are served here\n", "Allow: GET, HEAD\r\n");
        }
        head_ = req.method == "HEAD";
        if (auto nonce = proto::parse_reach_target(req.path); nonce && !server_->reach_key_.empty()) {
            return respond(200, "text/plain", proto::reach_proof(server_->reach_key_, *nonce) + "\n");
        }
        const auto target = proto::parse_file_target(req.path);
        // A publication, else the verified pieces of a transfer (a partial holding).
        const Publication* pub = target ? server_->catalog_.holding(target->id) : nullptr;
        if (!pub || pub->id != open_id_) release_file();   // not kept for what is not served
        if (!pub) return respond_text(404, "no published file here\n");
        if (target->pieces) {
            return respond(200, "application/json", pub->piece_list().to_json().dump());
        }
        if (target->have) return serve_have(req, *pub);
        serve_file(req, *pub);
    }

    // The verified-piece bitfield (BEP 3 bit order), all ones for a
    // publication; its ETag answers If-None-Match with 304.
    void serve_have(const proto::HttpRequest& req, const Publication& pub) {
        proto::Bitfield have = pub.have;
        if (have.size() == 0) {
            have = proto::Bitfield(pub.pieces.size());
            for (std::uint64_t i = 0; i < have.size(); ++i) have.set(i);
        }
        const auto etag = proto::have_etag(have);
        const auto extra = "ETag: " + etag + "\r\nCache-Control: no-cache\r\n";
        if (!req.if_none_match.empty() && proto::if_none_match_hits(req.if_none_match, etag)) {
            status_ = 304;
            out_ = response_head(304, std::nullopt, "", close_after_, extra);   // no body, no length
            return write_out(AfterWrite::finish);
        }
        const auto& bytes = have.bytes();
        respond(200, "application/octet-stream", std::string(bytes.begin(), bytes.end()), extra);
    }

    void serve_file(const proto::HttpRequest& req, const Publication& pub) {
        file_ = FileResponse{pub.id, pub.path, pub.size, pub.mtime_ns, 0, pub.size, false, pub.have.size() > 0};
        // Our ETag is the content id: an If-Range naming anything else asks for the whole file.
        const bool range_applies = !req.range.empty() &&
                                   (req.if_range.empty() || req.if_range == "\"" + pub.id + "\"");
        if (range_applies) {
            const auto r = proto::parse_range(req.range, pub.size);
            if (r.kind == proto::RangeKind::unsatisfiable) {
                return respond_text(416, "the range is outside the file\n",
                                    "Accept-Ranges: bytes\r\nContent-Range: bytes */" +
                                        std::to_string(pub.size) + "\r\n");
            }
            if (r.kind == proto::RangeKind::partial) {
                file_.first = r.range.first;
                file_.length = r.range.length();
                file_.partial = true;
            }
        }
        if (file_.holding && file_.length > 0) {
            // Never a byte of a piece not verified here (docs/protocol.md §11.8).
            const auto missing = proto::first_missing_piece(pub.have, pub.piece_size,
                                                            {file_.first, file_.first + file_.length - 1});
            if (missing) {
                return respond_text(503, "piece " + std::to_string(*missing) + " is not here yet\n",
                                    "Retry-After: 1\r\n" + std::string(proto::kNotHereYetHeader) + ": " +
                                        std::to_string(*missing) + "\r\n");
            }
        }
        if (!head_ && file_.length > 0) {
            if (!server_->take_slot()) {
                return respond_text(503, "all upload slots are busy; retry shortly\n", "Retry-After: 1\r\n");
            }
            has_slot_ = true;
        }
        // Checked before anything is promised: a changed file is never served.
        if (file_fd_ >= 0 && open_id_ == file_.id && open_path_ == file_.path) {
            return stat_open_file(true);
        }
        open_file();
    }

    void open_file() {
        release_file();
        fs_req_.data = this;
        const int rc = uv_fs_open(loop_, &fs_req_, file_.path.c_str(), O_RDONLY | O_CLOEXEC, 0, on_opened);
        if (rc < 0) {
            uv_fs_req_cleanup(&fs_req_);
            return file_unavailable(rc);
        }
        in_pool_ = reinterpret_cast<uv_req_t*>(&fs_req_);
    }

    // fstat in the pool: even on an open descriptor it may wait on the
    // network (NFS, FUSE). `cached`: the descriptor is kept from an earlier
    // request of this keep-alive connection (a fetch asks for piece after
    // piece), which saves the open and close; if it no longer passes, the
    // path is opened afresh and that verdict decides (a file replaced by an
    // identical copy, `cp -p` then `mv`, is still served).
    void stat_open_file(bool cached) {
        checking_cached_ = cached;
        fs_req_.data = this;
        const int rc = uv_fs_fstat(loop_, &fs_req_, file_fd_, on_stat);
        if (rc < 0) {
            uv_fs_req_cleanup(&fs_req_);
            return cached ? open_file() : file_unavailable(rc);
        }
        in_pool_ = reinterpret_cast<uv_req_t*>(&fs_req_);
    }

    static void on_opened(uv_fs_t* req) {
        auto* self = static_cast<Connection*>(req->data);
        const auto result = req->result;
        uv_fs_req_cleanup(req);
        self->in_pool_ = nullptr;
        if (self->phase_ == Phase::closed || !self->server_) {
            if (result >= 0) close_file_async(self->loop_, static_cast<int>(result));
            if (self->phase_ != Phase::closed) self->close_now("server stopped");
            return self->delete_if_done();
        }
        if (result < 0) return self->file_unavailable(static_cast<int>(result));
        self->file_fd_ = static_cast<int>(result);
        self->open_id_ = self->file_.id;
        self->open_path_ = self->file_.path;
        self->stat_open_file(false);
    }

    static void on_stat(uv_fs_t* req) {
        auto* self = static_cast<Connection*>(req->data);
        const auto result = req->result;
        const uv_stat_t st = req->statbuf;
        uv_fs_req_cleanup(req);
        self->in_pool_ = nullptr;
        if (self->phase_ == Phase::closed || !self->server_) {
            if (self->phase_ != Phase::closed) self->close_now("server stopped");
            return self->delete_if_done();
        }
        const bool cached = std::exchange(self->checking_cached_, false);
        auto problem = result < 0 ? std::optional<std::string>("") : self->stat_problem(st);
        if (!problem) return self->send_file_head();
        if (cached) return self->open_file();
        if (result < 0) return self->file_unavailable(static_cast<int>(result));
        self->file_changed(*problem);
    }

    // Why the open file is not the one that was hashed, if it is not.
    std::optional<std::string> stat_problem(const uv_stat_t& st) const {
        if ((st.st_mode & S_IFMT) != S_IFREG) return "it is no longer a regular file";
        if (st.st_nlink == 0) return "it was deleted";
        if (st.st_size != file_.size) {
            return "its size is " + std::to_string(st.st_size) + " bytes, was " + std::to_string(file_.size);
        }
        if (file_.holding) return std::nullopt;   // written as pieces arrive; each was verified
        if (mtime_ns(st) != file_.mtime_ns) return "it was modified";
        return std::nullopt;
    }

    void send_file_head() {
        std::string extra = "Accept-Ranges: bytes\r\nETag: \"" + file_.id + "\"\r\n";
        if (file_.partial) {
            extra += "Content-Range: " +
                     proto::content_range({file_.first, file_.first + file_.length - 1}, file_.size) + "\r\n";
        }
        status_ = file_.partial ? 206 : 200;
        out_ = response_head(status_, file_.length, "application/octet-stream", close_after_, extra);
        const bool body = !head_ && file_.length > 0;
        // Corked, the head leaves in the same segment as the first body bytes.
        if (body) set_cork(sock_fd_, true);
        write_out(body ? AfterWrite::body : AfterWrite::finish);
    }

    void file_unavailable(int err) {
        release_file();
        release_slot();
        if (file_.holding && err == UV_ENOENT) {
            // A transfer's partial file is renamed into place when it is done, a
            // moment before its holding gives way to the file in place: not a
            // 404, which would make the asker drop this peer for good.
            server_->log_.info("not serving the partial file " + file_.path + ": it is gone (done or cancelled)");
            return respond_text(503, "this holding is changing; retry shortly\n", "Retry-After: 1\r\n");
        }
        if (err == UV_ENOENT || err == UV_ENOTDIR) return file_changed("it is gone");
        if (err == UV_EMFILE || err == UV_ENFILE) {
            server_->log_.warning("cannot open " + file_.path + ": " + common::uv_error(err));
            return respond_text(503, "too many open files; retry shortly\n", "Retry-After: 1\r\n");
        }
        server_->log_.error("cannot serve " + file_.path + ": " + common::uv_error(err));
        respond_text(500, "the file cannot be read\n");
    }

    void file_changed(const std::string& why) {
        release_file();
        release_slot();
        mark_stale(why);
        respond_text(404, "the published file changed on disk\n");
    }

    // Tells the catalog (and the log) that the file differs from what was
    // hashed. Only the record we checked against is marked: a re-hash may
    // have replaced it meanwhile.
    void mark_stale(const std::string& why) {
        if (file_.holding) {   // a transfer's partial file: its transfer owns it
            return server_->log_.info("not serving the partial file " + file_.path + ": " + why);
        }
        Catalog& catalog = server_->catalog_;
        const Publication* now = catalog.by_id(file_.id);
        if (now && now->path == file_.path && now->size == file_.size && now->mtime_ns == file_.mtime_ns) {
            catalog.mark_changed(file_.path);
        }
        server_->log_.info("not serving " + file_.path + " (" + file_.id.substr(0, 12) + "): " + why +
                           " since it was published; publish it again to re-hash it");
    }

    void respond_text(int status, std::string_view body, std::string_view extra = {}) {
        respond(status, "text/plain; charset=utf-8", std::string(body), extra);
    }

    void respond(int status, std::string_view type, std::string body, std::string_view extra = {}) {
        status_ = status;
        out_ = response_head(status, body.size(), type, close_after_, extra);
        if (!head_) out_ += body;
        write_out(AfterWrite::finish);
    }

    void write_out(AfterWrite then) {
        after_write_ = then;
        write_req_.data = this;
        const uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        const int rc = uv_write(&write_req_, stream(), &buf, 1, on_written);
        if (rc < 0) close_now("write failed: " + common::uv_error(rc));
    }

    static void on_written(uv_write_t* req, int status) {
        auto* self = static_cast<Connection*>(req->data);
        if (self->phase_ == Phase::closed) return;
        if (status < 0) return self->close_now("write failed: " + common::uv_error(status));
        self->out_ = std::string();   // a piece list may be large; do not keep it
        if (self->after_write_ == AfterWrite::body) return self->start_body();
        self->finish_response();
    }

    void finish_response() {
        if (server_ && server_->log_.enabled(common::LogLevel::debug)) {
            server_->log_.debug(remote_ + " \"" + url_ + "\" " + std::to_string(status_) +
                                (status_ == 200 || status_ == 206 ? " " + std::to_string(sent_) + " bytes" : ""));
        }
        release_slot();   // the file stays open for the next request on this connection
        sent_ = 0;
        busy_ = false;
        if (close_after_) return close_gracefully();
        pump();
    }

    // ---- file bodies ----------------------------------------------------------

    void start_body() {
        offset_ = file_.first;
        remaining_ = file_.length;
        arm_stall_deadline();
        send_more();
    }

    void send_more() {
        if (!server_) return close_now("server stopped");
        const std::uint64_t chunk = server_->grant(std::min(remaining_, kSendfileChunk));
        if (chunk == 0) {
            // Waiting on the global rate is not the client's fault: no stall timeout meanwhile.
            stop_timer();
            waiting_tokens_ = true;
            server_->wait_for_tokens(id_);
            return;
        }
        job_ = SendJob{};
        job_.req.data = this;
        job_.sock = sock_fd_;
        job_.file = file_fd_;
        job_.offset = static_cast<off_t>(offset_);
        job_.length = static_cast<std::size_t>(chunk);
        const int rc = uv_queue_work(loop_, &job_.req, do_sendfile, after_sendfile);
        if (rc < 0) {
            server_->refund(chunk);
            return close_now("cannot queue sendfile: " + common::uv_error(rc));
        }
        in_pool_ = reinterpret_cast<uv_req_t*>(&job_.req);
    }

    // In a worker thread: touches only the job.
    static void do_sendfile(uv_work_t* req) {
        auto* job = reinterpret_cast<SendJob*>(req);
        off_t offset = job->offset;
        ssize_t n;
        do {
            n = ::sendfile(job->sock, job->file, &offset, job->length);
        } while (n < 0 && errno == EINTR);
        job->result = n < 0 ? -errno : n;
    }

    static void after_sendfile(uv_work_t* req, int status) {
        auto* self = static_cast<Connection*>(req->data);
        self->in_pool_ = nullptr;
        const std::uint64_t asked = self->job_.length;
        const ssize_t result = status < 0 ? status : self->job_.result;
        const std::uint64_t sent = result > 0 ? static_cast<std::uint64_t>(result) : 0;
        if (self->server_) self->server_->refund(asked - sent);
        if (self->phase_ == Phase::closed) return self->delete_if_done();
        if (result == UV_EAGAIN) return self->wait_writable();
        if (result < 0) return self->close_now("send failed: " + common::uv_error(static_cast<int>(result)));
        if (result == 0) {   // the file ends before its published size: it shrank under us
            if (self->server_) self->mark_stale("it shrank while being sent");
            return self->close_now("the file shrank");
        }
        self->offset_ += sent;
        self->remaining_ -= sent;
        self->sent_ += sent;
        if (self->server_) self->server_->bytes_uploaded_ += sent;
        self->unacknowledged_ += sent;
        if (self->unacknowledged_ >= kStallProgressBytes) self->arm_stall_deadline();   // enough progress
        if (self->remaining_ == 0) {
            set_cork(self->sock_fd_, false);   // flush the tail now
            return self->finish_response();
        }
        if (sent < asked) return self->wait_writable();   // the socket buffer is full
        self->send_more();
    }

    void wait_writable() {
        if (!poll_) {
            auto poll = std::make_unique<uv_poll_t>();
            const int rc = uv_poll_init_socket(loop_, poll.get(), sock_fd_);
            if (rc < 0) return close_now("cannot poll the socket: " + common::uv_error(rc));
            poll_ = poll.release();
            poll_->data = this;
        }
        const int rc = uv_poll_start(poll_, UV_WRITABLE, on_writable);
        if (rc < 0) close_now("cannot poll the socket: " + common::uv_error(rc));
    }

    static void on_writable(uv_poll_t* poll, int status, int) {
        auto* self = static_cast<Connection*>(poll->data);
        if (!self || self->phase_ == Phase::closed) return;
        uv_poll_stop(poll);
        if (status < 0) return self->close_now("socket error: " + common::uv_error(status));
        self->send_more();   // an error on the socket shows up there
    }

    void release_file() {
        if (file_fd_ < 0) return;
        close_file_async(loop_, file_fd_);
        file_fd_ = -1;
        open_id_.clear();
        open_path_.clear();
    }

    void release_slot() {
        if (!has_slot_) return;
        has_slot_ = false;
        if (server_) server_->release_slot();
    }

    // ---- closing ----------------------------------------------------------------

    // After the last response: send FIN once the output is flushed, then read
    // (and drop) what the client still sends until it closes or kLingerMs
    // pass. Closing with unread input would send a RST that may destroy the
    // response before the client reads it.
    void close_gracefully() {
        if (phase_ != Phase::open) return;
        phase_ = Phase::lingering;
        stop_timer();
        shutdown_req_.data = this;
        const int rc = uv_shutdown(&shutdown_req_, stream(), on_shutdown);
        if (rc < 0) close_now("shutdown failed: " + common::uv_error(rc));
    }

    static void on_shutdown(uv_shutdown_t* req, int status) {
        auto* self = static_cast<Connection*>(req->data);
        if (self->phase_ == Phase::closed) return;
        if (status < 0 || self->peer_eof_) return self->close_now("done");
        self->arm_timer(kLingerMs);
        self->start_reading();
    }

    static void on_tcp_closed(uv_handle_t* handle) {
        auto* self = static_cast<Connection*>(handle->data);
        std::unique_ptr<uv_tcp_t> owned(reinterpret_cast<uv_tcp_t*>(handle));
        self->tcp_ = nullptr;
        self->delete_if_done();
    }

    void delete_if_done() {
        if (phase_ == Phase::closed && !tcp_ && !in_pool_) delete this;
    }

    void arm_timer(std::uint64_t ms) {
        if (!timer_.get()) return;
        uv_timer_start(
            timer_.get(),
            [](uv_timer_t* t) {
                if (auto* self = static_cast<Connection*>(t->data)) self->close_now("timed out");
            },
            ms, 0);
    }

    // The next kStallProgressBytes of the body must leave within the request timeout.
    void arm_stall_deadline() {
        unacknowledged_ = 0;
        arm_timer(server_ ? server_->limits_.request_timeout_ms : 0);
    }

    void stop_timer() {
        if (timer_.get()) uv_timer_stop(timer_.get());
    }

    UploadServer* server_;   // null once the server has stopped
    uv_loop_t* loop_;
    const std::uint64_t id_;
    uv_tcp_t* tcp_;          // freed in on_tcp_closed
    int sock_fd_;            // a dup of the socket, for the pool and the poll; closed with this object
    common::Timer timer_;    // request deadline, send stall or linger, one at a time
    bool awaiting_request_ = false;   // timer_ is the deadline of the request waited for
    uv_poll_t* poll_ = nullptr;
    std::string remote_;
    Phase phase_ = Phase::open;

    proto::HttpRequestReader reader_{{kMaxRequestHeaderBytes, 0, kMaxPipelinedRequests, false}};
    std::string stash_;        // input after a pause, at most one read buffer
    bool reading_ = false;
    bool paused_ = false;      // the queue was full; stash_ holds the rest
    bool input_done_ = false;  // a parse error or an upgrade: no more requests
    bool error_answered_ = false;   // the reader's error_status() has been answered
    bool peer_eof_ = false;
    bool sniffing_ = false;    // looking for a connect-back preface (accepted connections)
    std::string sniffed_;      // the first bytes, at most kReversePrefaceBytes + 1

    bool busy_ = false;        // a response is in progress
    bool head_ = false;
    bool close_after_ = false;
    int status_ = 0;
    std::string url_;
    std::string out_;          // head (and small body) being written
    AfterWrite after_write_ = AfterWrite::finish;
    uv_write_t write_req_{};
    uv_shutdown_t shutdown_req_{};

    FileResponse file_;
    bool has_slot_ = false;
    int file_fd_ = -1;          // open from an earlier request, or for this one
    std::string open_id_;       // the publication file_fd_ was opened and checked for
    std::string open_path_;
    bool checking_cached_ = false;   // the fstat in the pool is of a kept descriptor
    uv_fs_t fs_req_{};
    SendJob job_;
    uv_req_t* in_pool_ = nullptr;   // the fs or sendfile request in the pool, if any
    std::uint64_t offset_ = 0;
    std::uint64_t remaining_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t unacknowledged_ = 0;   // body bytes sent since the stall deadline was armed
    bool waiting_tokens_ = false;
};

// ---------------------------------------------------------------------------

UploadServer::UploadServer(uv_loop_t* loop, Catalog& catalog, const common::Log& log, UploadLimits limits)
    : loop_(loop),
      catalog_(catalog),
      log_(log),
      limits_(limits),
      rate_timer_(loop),
      bucket_(limits.max_rate, uv_hrtime) {
    rate_timer_.get()->data = this;
    assert(limits.max_connections >= 1);
}

UploadServer::~UploadServer() { stop(); }

proto::Result<bool> UploadServer::start(const common::Endpoint& listen) {
    // sendfile(2) cannot take MSG_NOSIGNAL: without this, a client that goes
    // away mid-body would kill the daemon. Left alone if someone installed a handler.
    struct sigaction current{};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
        std::signal(SIGPIPE, SIG_IGN);
    }
    auto listener = common::listen_tcp(loop_, listen, on_connection, this);
    if (!listener) return listener.error();
    listener_ = std::make_unique<common::Tcp>(std::move(*listener));
    return true;
}

void UploadServer::stop() {
    listener_.reset();
    if (rate_timer_.get()) uv_timer_stop(rate_timer_.get());
    token_waiters_.clear();
    auto connections = std::move(connections_);
    connections_.clear();
    for (auto& [id, connection] : connections) {
        connection->detach();
        connection->close_now("the upload server is stopping");
    }
    slots_in_use_ = 0;
}

std::uint16_t UploadServer::port() const { return listener_ ? common::bound_port(*listener_) : 0; }

std::size_t UploadServer::active_uploads() const { return slots_in_use_; }

void UploadServer::set_limits(UploadLimits limits) {
    assert(limits.max_connections >= 1);
    limits_ = limits;
    bucket_.set_rate(limits.max_rate);
    if (!token_waiters_.empty()) serve_token_waiters();   // a higher (or no) rate may free them now
}

void UploadServer::on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<UploadServer*>(listener->data);
    if (!self) return;
    if (status < 0) {
        self->log_.warning("accept failed: " + common::uv_error(status));
        return;
    }
    self->accept_one();
}

void UploadServer::accept_one() {
    common::Tcp client(loop_);
    if (uv_accept(listener_->stream(), client.stream()) != 0) return;
    serve_on(std::move(client), true);
}

bool UploadServer::adopt(common::UniqueFd connected) {
    common::Tcp tcp(loop_);
    if (const int rc = uv_tcp_open(tcp.get(), connected.get()); rc < 0) {
        log_.warning("cannot serve a connection we dialled: " + common::uv_error(rc));
        return false;
    }
    connected.release();   // the uv_tcp_t owns it now
    serve_on(std::move(tcp), false);
    return true;
}

void UploadServer::count_connect_back(bool taken, const std::string& remote, const std::string& why) {
    if (taken) {
        ++connect_backs_taken_;
        log_.info("connect-back from " + remote + " handed to its fetch");
    } else {
        ++connect_backs_refused_;
        log_.info("connect-back from " + remote + " refused: " + why);
    }
}

// Accepted and adopted connections alike count against the cap.
void UploadServer::serve_on(common::Tcp client, bool sniff) {
    if (connections_.size() >= limits_.max_connections) {
        // Closed at once (`client` closes it): left in the backlog it would
        // wait there, and each one served costs descriptors.
        if (connections_refused_++ == 0 || connections_refused_ % 1000 == 0) {
            log_.warning("upload connections at the cap (" + std::to_string(limits_.max_connections) +
                         ", --max-connections): closing new ones at once; " +
                         std::to_string(connections_refused_) + " so far");
        }
        return;
    }
    uv_os_fd_t fd = -1;
    uv_fileno(client.handle(), &fd);
    const int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        log_.warning(std::string("refusing an upload connection: ") + std::strerror(errno));
        return;   // `client` closes it
    }
    // Small responses leave at once; bodies are corked (see send_file_head).
    uv_tcp_nodelay(client.get(), 1);
    const auto id = next_connection_++;
    auto* connection = new Connection(*this, id, client.release(), dup_fd, sniff);
    connections_.emplace(id, connection);
    connection->start();
}

void UploadServer::forget(std::uint64_t connection_id) { connections_.erase(connection_id); }

bool UploadServer::take_slot() {
    if (slots_in_use_ >= limits_.max_uploads) return false;
    ++slots_in_use_;
    return true;
}

void UploadServer::release_slot() {
    assert(slots_in_use_ > 0);   // a connection gives back only the slot it took (has_slot_)
    --slots_in_use_;
}

// A waiting upload is woken once the smallest rate-limited sendfile
// (kMinRateGrant) can go, so sendfile(2) calls stay large.
bool UploadServer::grant_ready() const { return bucket_.wait_ns(kMinRateGrant) == 0; }

std::uint64_t UploadServer::grant(std::uint64_t want) {
    if (bucket_.rate() == 0) return want;
    if (!token_waiters_.empty() && !serving_waiters_) return 0;   // first come, first served
    if (bucket_.wait_ns(std::min(want, kMinRateGrant)) > 0) return 0;
    return bucket_.take(want);
}

void UploadServer::refund(std::uint64_t unused) { bucket_.give_back(unused); }

void UploadServer::wait_for_tokens(std::uint64_t connection_id) {
    if (metrics_) ++metrics_->upload_rate_limit_waits;
    token_waiters_.push_back(connection_id);
    if (!uv_is_active(rate_timer_.handle())) {
        uv_timer_start(
            rate_timer_.get(),
            [](uv_timer_t* t) {
                if (auto* self = static_cast<UploadServer*>(t->data)) self->serve_token_waiters();
            },
            kRateTickMs, kRateTickMs);
    }
}

// Each waiter gets at most one grant per pass; one that needs more queues
// again at the back, so uploads share the rate in turn.
void UploadServer::serve_token_waiters() {
    serving_waiters_ = true;
    for (std::size_t turns = token_waiters_.size(); turns > 0 && !token_waiters_.empty(); --turns) {
        if (!grant_ready()) break;
        const auto id = token_waiters_.front();
        token_waiters_.pop_front();
        if (auto it = connections_.find(id); it != connections_.end()) it->second->on_tokens();
    }
    serving_waiters_ = false;
    if (token_waiters_.empty()) uv_timer_stop(rate_timer_.get());
}

}  // namespace peershare::peerd
