// daemon/fetch/http_source.cpp — see http_source.hpp.
#include "daemon/fetch/http_source.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <cassert>
#include <cctype>

#include <curl/curl.h>

#include "daemon/fetch/handed_sockets.hpp"
#include "proto/limits.hpp"


namespace peershare::peerd {

namespace {

Verdict strike(std::string why) { return {Verdict::Kind::strike, 0, std::move(why)}; }
Verdict drop(std::string why) { return {Verdict::Kind::drop, 0, std::move(why)}; }

// A transport failure's verdict, or nullopt when there is an answer to judge.
std::optional<Verdict> judge_transport(const Answer& a) {
    if (a.curl_code == CURLE_OK) return std::nullopt;
    // The write callback stopped an error answer's body: the status decides.
    if (a.curl_code == CURLE_WRITE_ERROR && !a.overflow && a.status != 0) return std::nullopt;
    if (a.overflow) {
        return drop(a.listing ? "sent a piece list too long for the file"
                              : "sent more bytes than asked for");
    }
    const std::string what = a.curl_error.empty() ? curl_easy_strerror(static_cast<CURLcode>(a.curl_code))
                                                  : a.curl_error;
    if (a.curl_code == CURLE_COULDNT_CONNECT || a.curl_code == CURLE_COULDNT_RESOLVE_HOST ||
        (a.curl_code == CURLE_OPERATION_TIMEDOUT && !a.connected)) {
        Verdict v = drop("cannot connect: " + what);
        v.unreachable = true;
        return v;
    }
    return strike(what);
}

bool dns_name(const std::string& host) {
    if (host.empty() || host.size() > proto::kMaxHostBytes) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < host.size(); ++i) {
        const char c = host[i];
        if (c == '.') {
            if (label == 0 || host[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        const bool ok = std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0);
        if (!ok || ++label > 63) return false;
    }
    return label > 0 || host.back() == '.';
}

}  // namespace

bool may_readmit(bool readmissible, unsigned readmitted) { return readmissible && readmitted < kMaxReadmissions; }

Verdict judge(const Answer& a) {
    if (a.awaiting_connect_back) {
        if (a.connect_back_problem) return drop(*a.connect_back_problem);
        return {Verdict::Kind::wait, kConnectBackPollMs, "waiting for the holder to connect back"};
    }
    if (auto v = judge_transport(a)) return *v;
    if (a.status == 503 && a.not_here && !a.listing && !a.have) {
        return {Verdict::Kind::not_here, 0, "does not hold piece " + std::to_string(a.piece) + " yet"};
    }
    if (a.status == 503) {
        if (a.busy_before + 1 >= kMaxBusyAnswers)
            return drop("busy (HTTP 503) " + std::to_string(a.busy_before + 1) + " times in a row");
        const std::uint64_t wait =
            a.retry_after_s > 0
                ? std::min<std::uint64_t>(static_cast<std::uint64_t>(a.retry_after_s) * 1000, kMaxRetryAfterMs)
                : kDefaultRetryAfterMs;
        return {Verdict::Kind::retry_after, wait, "busy (HTTP 503)"};
    }
    if (a.status == 404) {
        Verdict v = drop("does not have this file (HTTP 404)");
        v.readmissible = true;
        return v;
    }
    if (a.listing) {
        if (a.status != 200) return strike("answered HTTP " + std::to_string(a.status) + " for the piece list");
        return {};
    }
    if (a.have) {
        if (a.status != 200 && a.status != 304)
            return strike("answered HTTP " + std::to_string(a.status) + " for what it has");
        return {};
    }
    const bool complete = a.received == a.expected;
    if (a.status == 206 && complete) return {};
    if (a.status == 200 && a.whole_file && complete) return {};
    if (a.status == 200 && !a.whole_file) return drop("does not honour Range requests (HTTP 200)");
    if (a.status != 206 && a.status != 200)
        return strike("answered HTTP " + std::to_string(a.status) + " for a piece");
    return strike("sent " + std::to_string(a.received) + " of " + std::to_string(a.expected) +
                  " bytes of piece " + std::to_string(a.piece));
}

proto::Result<proto::PieceList> judge_piece_list(const std::string& body, const std::string& id,
                                                 std::uint64_t size, std::uint64_t piece_size) {
    using proto::Error;
    using proto::ErrorCode;
    const auto j = proto::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Error{ErrorCode::bad_request, "sent a piece list that is not a JSON object"};
    auto list = proto::PieceList::from_json(j, id);
    if (!list) return Error{ErrorCode::bad_request, "sent a bad piece list: " + list.error().message};
    if (list->size != size || list->piece_size != piece_size) {
        return Error{ErrorCode::bad_request, "sent the piece list of another file (size " +
                                                 std::to_string(list->size) + ", piece size " +
                                                 std::to_string(list->piece_size) + ")"};
    }
    return list;
}

std::optional<std::string> base_url(const std::string& address, std::uint16_t port_number) {
    if (port_number == 0) return std::nullopt;
    const std::string port = ":" + std::to_string(port_number);
    const auto pct = address.find('%');
    const std::string ip = address.substr(0, pct);
    unsigned char addr[sizeof(in6_addr)];
    if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
        if (pct != std::string::npos) return std::nullopt;
        return "http://" + ip + port;
    }
    if (inet_pton(AF_INET6, ip.c_str(), addr) != 1) {
        // Not an IP literal: a DNS name, or nothing we contact.
        if (!dns_name(address)) return std::nullopt;
        return "http://" + address + port;
    }
    std::string host = ip;
    if (pct != std::string::npos) {
        const std::string zone = address.substr(pct + 1);
        const bool ok = !zone.empty() && zone.size() <= IF_NAMESIZE &&
                        std::all_of(zone.begin(), zone.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                   c == '-' || c == '_';
                        });
        if (!ok) return std::nullopt;
        host += "%25" + zone;  // a zone is percent-encoded inside a URL
    }
    return "http://[" + host + "]" + port;
}

unsigned initial_request_depth(bool partial) { return partial ? 1 : kRequestsPerSource; }

unsigned next_request_depth(unsigned depth, std::uint64_t piece_ms) {
    assert(depth >= 1 && depth <= kRequestsPerSource);
    if (piece_ms > kSlowPieceMs) return std::max(1U, depth - 1);
    if (piece_ms < kSlowPieceMs / 2) return std::min(kRequestsPerSource, depth + 1);
    return depth;
}

}  // namespace peershare::peerd
