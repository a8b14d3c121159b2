// tests/unit/test_http_source.cpp — the verdict on a source's answer
// (daemon/fetch/http_source.hpp): a pure function, fed answers by hand.
#include <curl/curl.h>
#include <doctest/doctest.h>

#include "daemon/fetch/http_source.hpp"
#include "proto/hex.hpp"

using namespace peershare::peerd;
using Kind = Verdict::Kind;

namespace {

Answer piece_answer(long status, std::uint64_t received, std::uint64_t expected = 100) {
    Answer a;
    a.status = status;
    a.connected = true;
    a.piece = 7;
    a.received = received;
    a.expected = expected;
    return a;
}

}  // namespace

TEST_CASE("verdict: a whole piece in a 206 is ok; a short one is a strike") {
    CHECK(judge(piece_answer(206, 100)).kind == Kind::ok);
    const auto v = judge(piece_answer(206, 60));
    CHECK(v.kind == Kind::strike);
    CHECK(v.why == "sent 60 of 100 bytes of piece 7");
}

TEST_CASE("verdict: a 200 is ok only for a range that is the whole file") {
    auto a = piece_answer(200, 100);
    CHECK(judge(a).kind == Kind::drop);
    CHECK(judge(a).why == "does not honour Range requests (HTTP 200)");
    a.whole_file = true;
    CHECK(judge(a).kind == Kind::ok);
}

TEST_CASE("verdict: 404 drops, 500 strikes") {
    CHECK(judge(piece_answer(404, 0)).kind == Kind::drop);
    CHECK(judge(piece_answer(404, 0)).readmissible);
    const auto v = judge(piece_answer(500, 0));
    CHECK(v.kind == Kind::strike);
    CHECK(v.why == "answered HTTP 500 for a piece");
}

TEST_CASE("verdict: 503 waits for Retry-After, clamped, and drops after too many in a row") {
    auto a = piece_answer(503, 0);
    auto v = judge(a);
    CHECK(v.kind == Kind::retry_after);
    CHECK(v.wait_ms == kDefaultRetryAfterMs);
    a.retry_after_s = 3;
    CHECK(judge(a).wait_ms == 3000);
    a.retry_after_s = 3600;
    CHECK(judge(a).wait_ms == kMaxRetryAfterMs);
    a.busy_before = kMaxBusyAnswers - 1;
    v = judge(a);
    CHECK(v.kind == Kind::drop);
    CHECK(v.why == "busy (HTTP 503) 10 times in a row");
}

TEST_CASE("verdict: a 503 'not here yet' from a partial holder is neither busy nor a strike, however often") {
    auto a = piece_answer(503, 0);
    a.not_here = true;
    a.busy_before = kMaxBusyAnswers + 5;
    const auto v = judge(a);
    CHECK(v.kind == Kind::not_here);
    CHECK(v.why == "does not hold piece 7 yet");
}

TEST_CASE("verdict: /have answers 200 or 304; anything else but 404 and 503 is a strike") {
    Answer a;
    a.connected = true;
    a.have = true;
    for (long ok : {200L, 304L}) {
        a.status = ok;
        CHECK(judge(a).kind == Kind::ok);
    }
    a.status = 404;
    CHECK(judge(a).kind == Kind::drop);
    a.status = 503;
    CHECK(judge(a).kind == Kind::retry_after);
    a.status = 500;
    CHECK(judge(a).kind == Kind::strike);
    CHECK(judge(a).why == "answered HTTP 500 for what it has");
}

TEST_CASE("verdict: transport failures") {
    auto a = piece_answer(0, 0);
    a.curl_code = CURLE_COULDNT_CONNECT;
    a.curl_error = "Connection refused";
    a.connected = false;
    CHECK(judge(a).kind == Kind::drop);
    CHECK(judge(a).why == "cannot connect: Connection refused");
    CHECK(judge(a).unreachable);   // another way to the holder may work (FetchRequest::fallback)
    a.curl_code = CURLE_OPERATION_TIMEDOUT;
    CHECK(judge(a).kind == Kind::drop);  // never connected: a connect timeout
    CHECK(judge(a).unreachable);
    a.connected = true;
    CHECK(judge(a).kind == Kind::strike);  // a stall once connected
    CHECK_FALSE(judge(a).unreachable);
    a.curl_code = CURLE_WRITE_ERROR;
    a.overflow = true;
    CHECK(judge(a).why == "sent more bytes than asked for");
    a.listing = true;
    CHECK(judge(a).why == "sent a piece list too long for the file");
    // The write callback stopped an error answer's body: its status decides.
    a.overflow = false;
    a.status = 404;
    CHECK(judge(a).kind == Kind::drop);
    CHECK(judge(a).why == "does not have this file (HTTP 404)");
    CHECK_FALSE(judge(a).unreachable);   // it answered: its address works
}

TEST_CASE("verdict: a piece list must be 200 and match the content") {
    Answer a;
    a.listing = true;
    a.status = 200;
    CHECK(judge(a).kind == Kind::ok);
    a.status = 403;
    CHECK(judge(a).why == "answered HTTP 403 for the piece list");

    peershare::proto::PieceList list{20000, 16384, {}};
    list.pieces.push_back({});
    list.pieces.push_back({});
    const auto id = peershare::proto::to_hex(list.content_id());
    CHECK(judge_piece_list(list.to_json().dump(), id, 20000, 16384).ok());
    CHECK(judge_piece_list("[1,2]", id, 20000, 16384).error().message ==
          "sent a piece list that is not a JSON object");
    CHECK(judge_piece_list(list.to_json().dump(), std::string(64, 'a'), 20000, 16384)
              .error()
              .message.starts_with("sent a bad piece list"));
    CHECK(judge_piece_list(list.to_json().dump(), id, 20000, 32768)
              .error()
              .message.starts_with("sent the piece list of another file"));
}

TEST_CASE("base_url: IP literals and zones, nothing that could change the path") {
    CHECK(base_url("127.0.0.1", 80) == "http://127.0.0.1:80");
    CHECK(base_url("::1", 8080) == "http://[::1]:8080");
    CHECK(base_url("fe80::1%eth0", 1) == "http://[fe80::1%25eth0]:1");
    CHECK_FALSE(base_url("127.0.0.1", 0));
    CHECK_FALSE(base_url("127.0.0.1%eth0", 1));
    CHECK_FALSE(base_url("fe80::1%eth0/x", 1));
    CHECK_FALSE(base_url("example.com/x?", 80));
    CHECK_FALSE(base_url("a b", 80));
}

TEST_CASE("base_url: DNS names of letters, digits and hyphens") {
    CHECK(base_url("localhost", 7070) == "http://localhost:7070");
    CHECK(base_url("host1.lan", 1) == "http://host1.lan:1");
    CHECK(base_url("a-b.example.org.", 1) == "http://a-b.example.org.:1");
    CHECK_FALSE(base_url("-a.lan", 1));
    CHECK_FALSE(base_url("a-.lan", 1));
    CHECK_FALSE(base_url("a..lan", 1));
    CHECK_FALSE(base_url("a_b.lan", 1));
    CHECK_FALSE(base_url("user@host", 1));
    CHECK_FALSE(base_url(std::string(64, 'a') + ".lan", 1));
    CHECK_FALSE(base_url("", 1));
}

TEST_CASE("request depth: the whole file's holder starts deep, a partial one at one; slow pieces make it shallower") {
    CHECK(initial_request_depth(false) == kRequestsPerSource);
    CHECK(initial_request_depth(true) == 1);
    CHECK(next_request_depth(4, kSlowPieceMs + 1) == 3);
    CHECK(next_request_depth(1, 60'000) == 1);   // never below one
    CHECK(next_request_depth(2, kSlowPieceMs) == 2);   // between half and all of it: kept
    CHECK(next_request_depth(2, kSlowPieceMs / 2) == 2);
    CHECK(next_request_depth(2, kSlowPieceMs / 2 - 1) == 3);
    CHECK(next_request_depth(kRequestsPerSource, 0) == kRequestsPerSource);   // never above the cap
    // A partial holder that answers fast reaches full depth in three pieces.
    unsigned d = initial_request_depth(true);
    for (int i = 0; i < 3; ++i) d = next_request_depth(d, 10);
    CHECK(d == kRequestsPerSource);
}

TEST_CASE("readmission: only a source dropped for a 404, and only kMaxReadmissions times") {
    Answer gone = piece_answer(404, 0);
    gone.listing = true;
    CHECK(judge(gone).readmissible);   // the piece list's 404 too: it may publish it later
    // Too many 503s, no connection: never taken back (nor bad bytes or a
    // lying piece list, which the engine drops through strikes and
    // judge_piece_list, never with a readmissible verdict).
    Answer busy = piece_answer(503, 0);
    busy.busy_before = kMaxBusyAnswers - 1;
    CHECK(judge(busy).kind == Kind::drop);
    CHECK_FALSE(judge(busy).readmissible);
    Answer refused;
    refused.curl_code = CURLE_COULDNT_CONNECT;
    CHECK(judge(refused).kind == Kind::drop);
    CHECK_FALSE(judge(refused).readmissible);

    CHECK(may_readmit(true, 0));
    CHECK(may_readmit(true, kMaxReadmissions - 1));
    CHECK_FALSE(may_readmit(true, kMaxReadmissions));
    CHECK_FALSE(may_readmit(false, 0));
}
