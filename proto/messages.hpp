// proto/messages.hpp — every message of the session protocol (docs/design.md,
// "Protocol layers"; docs/protocol.md) as a struct. Each has kType, to_json()
// and a validating from_json(), so a handler never sees an unchecked field. A
// frame's JSON is the message's fields plus "type" and, for requests and their
// replies, "id".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/errors.hpp"
#include "proto/fields.hpp"
#include "proto/frame.hpp"

namespace peershare::proto {

// ---- records that appear inside messages ----

struct FileInfo {                // a published file
    std::string name;
    std::uint64_t size = 0;
    std::string id;              // content id, 64 hex digits
    std::uint64_t piece_size = 0;
    std::int64_t published_at = 0;  // set by the tracker; seconds since the epoch
    // A partial holding (issue 10): the verified pieces held, 1 … pieces − 1;
    // nothing for a complete file. "pieces_held" on the wire, absent when complete.
    std::optional<std::uint64_t> pieces_held = std::nullopt;
    json to_json() const;
    static Result<FileInfo> from_json(const json& j);
};

struct Holder {                  // one live peer offering a name
    std::string peer;
    std::string address;
    std::uint16_t port = 0;
    std::uint64_t size = 0;
    std::string id;
    std::uint64_t piece_size = 0;
    std::int64_t published_at = 0;
    std::optional<std::uint64_t> pieces_held = std::nullopt;   // a partial holder: "partial": true and "pieces_held"
    // The tracker's last reachability check of this holder; nothing while it
    // runs (or with trackerd --no-reach-check). "reachable" on the wire, absent when unknown.
    std::optional<bool> reachable = std::nullopt;
    bool partial() const { return pieces_held.has_value(); }
    json to_json() const;
    static Result<Holder> from_json(const json& j);
};

struct PeerInfo {
    std::string name;
    std::string address;
    std::uint16_t port = 0;
    std::uint64_t files = 0;
    std::int64_t since = 0;
    // The last reachability check: true, false, or nothing (null on the wire)
    // while it runs or when the tracker does not check; reach_reason in words.
    std::optional<bool> reachable = std::nullopt;
    std::string reach_reason;
    json to_json() const;
    static Result<PeerInfo> from_json(const json& j);
};

struct IndexEntry {              // a name and one content under it, with its holders
    std::string name;
    std::uint64_t size = 0;
    std::string id;
    std::vector<std::string> holders;   // at most kMaxListedHolders of them
    std::uint64_t holder_count = 0;     // all of them
    std::uint64_t partial_count = 0;    // how many of them are partial holders (sent when > 0)
    json to_json() const;
    static Result<IndexEntry> from_json(const json& j);
};

struct Event {
    std::uint64_t seq = 0;
    std::int64_t time = 0;
    std::string kind;            // joined, published, unpublished, looked_up, fetched, left
    std::string peer;
    std::string file;            // empty where no file is concerned
    std::string detail;          // e.g. the reason a peer left
    json to_json() const;
    static Result<Event> from_json(const json& j);
};

// ---- session opening ----

struct Hello {
    static constexpr std::string_view kType = "hello";
    std::uint32_t version = kProtocolVersion;
    std::string role = "peer";   // "peer" on the peer port, "admin" on the admin socket
    std::string name;            // peers only
    std::uint16_t port = 0;      // peers only: the upload port
    std::string key;             // peers only: persisted identity, 64 hex digits
    std::string advertise;       // peers only, optional: address to give out instead
    json to_json() const;
    static Result<Hello> from_json(const json& j);
};

// The version a hello claims, read before anything else so that a peer of
// another version is told so even if the rest of its hello differs from ours.
std::optional<std::uint64_t> hello_version(const json& hello);
std::string version_mismatch_message(const json& hello, std::string_view us, std::string_view them);

struct Welcome {
    static constexpr std::string_view kType = "welcome";
    std::uint32_t version = kProtocolVersion;
    std::string address;         // the peer's address as the tracker sees it
    std::uint32_t heartbeat_s = 0;
    std::uint32_t peer_timeout_s = 0;
    // The tracker dials the peer back and sends a `reachability` message
    // (docs/protocol.md §7.10); false (or absent): it never checks.
    bool reach_check = false;
    // The tracker runs a relay (trackerd --relay-listen; docs/protocol.md
    // §7.11, §15): a relay_request may be answered. False (or absent): none.
    bool relay = false;
    json to_json() const;
    static Result<Welcome> from_json(const json& j);
};

// ---- peer → tracker ----

struct Publish {
    static constexpr std::string_view kType = "publish";
    FileInfo file;
    json to_json() const;
    static Result<Publish> from_json(const json& j);
};

struct Unpublish {
    static constexpr std::string_view kType = "unpublish";
    std::string name;
    json to_json() const;
    static Result<Unpublish> from_json(const json& j);
};

struct Lookup {
    static constexpr std::string_view kType = "lookup";
    std::string name;
    json to_json() const;
    static Result<Lookup> from_json(const json& j);
};

struct Heartbeat {
    static constexpr std::string_view kType = "heartbeat";
    json to_json() const { return json::object(); }
    static Result<Heartbeat> from_json(const json& j);
};

struct Fetched {
    static constexpr std::string_view kType = "fetched";
    std::string name;
    std::string content_id;      // not "id": that key is the request id
    std::vector<std::string> sources;   // peer names the pieces came from
    json to_json() const;
    static Result<Fetched> from_json(const json& j);
};

struct Search {                  // peers and admins: names matching a substring
    static constexpr std::string_view kType = "search";
    std::string text;            // empty matches every name
    json to_json() const;
    static Result<Search> from_json(const json& j);
};

// ---- tracker → peer, and the answer ----

struct Ping {
    static constexpr std::string_view kType = "ping";
    json to_json() const { return json::object(); }
    static Result<Ping> from_json(const json& j);
};

struct Pong {
    static constexpr std::string_view kType = "pong";
    json to_json() const { return json::object(); }
    static Result<Pong> from_json(const json& j);
};

// The outcome of a reachability check (proto/reach.hpp): sent by the tracker
// after each hello (without an id) and as the answer to reach_check.
struct Reachability {
    static constexpr std::string_view kType = "reachability";
    bool reachable = false;
    std::string reason;          // in words: "answered at 1.2.3.4:5000", "connection refused at ..."
    std::string address;         // what was dialled: the address the tracker gives out
    std::uint16_t port = 0;
    json to_json() const;
    static Result<Reachability> from_json(const json& j);
};

// A peer (or peerctl, over the control socket) asks for the check to be run
// again now → Reachability.
struct ReachCheck {
    static constexpr std::string_view kType = "reach_check";
    json to_json() const { return json::object(); }
    static Result<ReachCheck> from_json(const json& j);
};

// A fetcher that cannot reach a holder, and cannot be reached by it, asks
// for a relayed connection (docs/protocol.md §7.11) → RelayTicket; the
// holder is told down its session with a RelayOffer.
struct RelayRequest {
    static constexpr std::string_view kType = "relay_request";
    std::string holder;   // the holder's peer name
    json to_json() const;
    static Result<RelayRequest> from_json(const json& j);
};

// Where the relay is and the one-time token to present there (proto/relay.hpp).
// `peer` is the other side: the holder in a ticket, the fetcher in an offer.
struct RelayTicket {
    static constexpr std::string_view kType = "relay_ticket";
    std::string relay_address;   // an IP literal
    std::uint16_t relay_port = 0;
    std::string token;           // proto::kRelayTokenDigits lowercase hex digits
    std::string peer;
    json to_json() const;
    static Result<RelayTicket> from_json(const json& j);
};

// The holder's side of a pair (tracker → holder, no id): dial the relay,
// present the token, then serve HTTP on that connection as on an accepted one.
struct RelayOffer {
    static constexpr std::string_view kType = "relay_offer";
    RelayTicket ticket;
    json to_json() const { return ticket.to_json(); }
    static Result<RelayOffer> from_json(const json& j);
};

// A fetcher that cannot reach a holder, but can itself be reached, asks the
// tracker to have the holder connect back (docs/protocol.md §7.12) → Ok; the
// holder is told down its session with a ConnectBack. The token is the
// fetcher's own (proto/reverse.hpp): the holder presents it in its preface.
struct ReverseRequest {
    static constexpr std::string_view kType = "reverse_request";
    std::string holder;   // the holder's peer name
    std::string token;    // kReverseTokenDigits lowercase hex digits
    json to_json() const;
    static Result<ReverseRequest> from_json(const json& j);
};

// Tracker → holder, no id: dial the fetcher `peer` at address:port (the
// address the tracker gives out for it, verified by its reachability check,
// and its upload port), write reverse_preface(token), then serve HTTP on
// that connection as on an accepted one.
struct ConnectBack {
    static constexpr std::string_view kType = "connect_back";
    std::string token;     // kReverseTokenDigits lowercase hex digits
    std::string address;   // a host name or IP literal
    std::uint16_t port = 0;
    std::string peer;      // the fetcher's peer name
    json to_json() const;
    static Result<ConnectBack> from_json(const json& j);
};

// ---- admin → tracker ----

struct Discover {
    static constexpr std::string_view kType = "discover";
    std::string host;
    json to_json() const;
    static Result<Discover> from_json(const json& j);
};

struct PingPeer {
    static constexpr std::string_view kType = "ping_peer";
    std::string host;
    std::uint32_t timeout_ms = 2000;
    json to_json() const;
    static Result<PingPeer> from_json(const json& j);
};

struct ListPeers {
    static constexpr std::string_view kType = "list_peers";
    json to_json() const { return json::object(); }
    static Result<ListPeers> from_json(const json& j);
};

struct ListEvents {
    static constexpr std::string_view kType = "list_events";
    bool follow = false;         // keep streaming `event` frames after the history
    json to_json() const;
    static Result<ListEvents> from_json(const json& j);
};

struct GetStats {
    static constexpr std::string_view kType = "get_stats";
    json to_json() const { return json::object(); }
    static Result<GetStats> from_json(const json& j);
};

// ---- replies ----

struct Ok {
    static constexpr std::string_view kType = "ok";
    json to_json() const { return json::object(); }
    static Result<Ok> from_json(const json& j);
};

struct ErrorReply {
    static constexpr std::string_view kType = "error";
    ErrorCode code = ErrorCode::internal;
    std::string message;
    json to_json() const;
    static Result<ErrorReply> from_json(const json& j);
};

struct Holders {                 // answer to lookup
    static constexpr std::string_view kType = "holders";
    std::string name;
    std::vector<Holder> holders;
    json to_json() const;
    static Result<Holders> from_json(const json& j);
};

struct Files {                   // answer to discover
    static constexpr std::string_view kType = "files";
    std::string host;
    std::vector<FileInfo> files;
    bool truncated = false;
    json to_json() const;
    static Result<Files> from_json(const json& j);
};

struct IndexReply {              // answer to search
    static constexpr std::string_view kType = "index";
    std::vector<IndexEntry> entries;
    bool truncated = false;
    json to_json() const;
    static Result<IndexReply> from_json(const json& j);
};

struct Peers {                   // answer to list_peers
    static constexpr std::string_view kType = "peers";
    std::vector<PeerInfo> peers;
    bool truncated = false;
    json to_json() const;
    static Result<Peers> from_json(const json& j);
};

struct PingResult {
    static constexpr std::string_view kType = "ping_result";
    std::string host;
    bool live = false;
    double rtt_ms = 0;
    std::string reason;          // why not live: unknown, timeout, left
    json to_json() const;
    static Result<PingResult> from_json(const json& j);
};

struct Events {                  // answer to list_events: the kept history
    static constexpr std::string_view kType = "events";
    std::vector<Event> events;   // newest first
    bool truncated = false;
    json to_json() const;
    static Result<Events> from_json(const json& j);
};

struct EventNotice {             // one streamed event while following
    static constexpr std::string_view kType = "event";
    Event event;
    json to_json() const;
    static Result<EventNotice> from_json(const json& j);
};

// The relay's counters in `stats` (trackerd --relay-listen; §7.11).
struct RelayStats {
    std::uint64_t circuits_open = 0;      // joined or waiting for the other side
    std::uint64_t circuits_opened = 0;    // joined since start
    std::uint64_t circuits_refused = 0;   // full, bad token, partner never came
    std::uint64_t bytes_relayed = 0;      // both ways
    json to_json() const;
    static Result<RelayStats> from_json(const json& j);
};

// The reverse connections the tracker arranged (§7.12), in `stats`.
struct ReverseStats {
    std::uint64_t forwarded = 0;   // connect_back sent down a holder's session
    std::uint64_t refused = 0;     // reverse_request answered with an error
    json to_json() const;
    static Result<ReverseStats> from_json(const json& j);
};

struct Stats {
    static constexpr std::string_view kType = "stats";
    std::uint64_t peers = 0;
    std::uint64_t files = 0;
    std::uint64_t names = 0;
    std::uint64_t connections = 0;
    std::uint64_t uptime_s = 0;
    std::map<std::string, std::uint64_t> requests;   // by message type
    std::optional<RelayStats> relay;                 // absent: the tracker runs no relay
    ReverseStats reverse;                            // absent on the wire from older trackers: zeros
    json to_json() const;
    static Result<Stats> from_json(const json& j);
};

// ---- envelopes ----

// A decoded frame: its type, its request id if any, and the whole object.
struct Envelope {
    std::string type;
    std::optional<std::uint64_t> id;
    json body;
};

// Parses a frame payload: a JSON object, nested at most a few levels, with a
// string "type" and an optional unsigned "id".
Result<Envelope> parse_envelope(std::string_view payload);

// The frame bytes of a message, with its type and the id of the request it
// answers (or carries).
template <class M>
std::string make_frame(const M& message, std::optional<std::uint64_t> id = std::nullopt) {
    json j = message.to_json();
    j["type"] = M::kType;
    if (id) j["id"] = *id;
    return encode_frame(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// Frames a listing reply that must fit in one frame: while it does not, drops
// the last quarter of `rows` and marks the reply truncated. Escaping can make
// a row several times its raw size, so counting rows alone is not enough.
// fit_to_frame trims `reply` itself (and returns its frame); make_bounded_frame
// works on a copy.
template <class Reply, class Row>
std::string fit_to_frame(Reply& reply, std::vector<Row> Reply::*rows,
                         std::optional<std::uint64_t> id = std::nullopt) {
    for (;;) {
        auto frame = make_frame(reply, id);
        auto& list = reply.*rows;
        if (frame.size() <= kMaxFrame + 4 || list.empty()) return frame;
        list.resize(list.size() * 3 / 4);
        reply.truncated = true;
    }
}

template <class Reply, class Row>
std::string make_bounded_frame(Reply reply, std::vector<Row> Reply::*rows,
                               std::optional<std::uint64_t> id = std::nullopt) {
    return fit_to_frame(reply, rows, id);
}

std::string make_error_frame(ErrorCode code, std::string_view message,
                             std::optional<std::uint64_t> id = std::nullopt);

// The frame of a holders reply written straight to bytes: the same bytes as
// make_frame(reply, id), at a fraction of the cost. Lookups are the tracker's
// hot path and building a json tree per reply halves its rate
// (docs/performance.md); tests/unit/test_holders_frame.cpp holds the two equal.
std::string make_holders_frame(const Holders& reply, std::optional<std::uint64_t> id);

// Parses a message of the expected type from an envelope; another type (an
// error reply, say) is returned as an Error carrying its code and message.
template <class M>
Result<M> expect(const Envelope& env) {
    if (env.type == M::kType) return M::from_json(env.body);
    if (env.type == ErrorReply::kType) {
        auto err = ErrorReply::from_json(env.body);
        if (!err) return err.error();
        return Error{err->code, err->message};
    }
    return Error{ErrorCode::bad_request,
                 "expected a '" + std::string(M::kType) + "' frame, got '" + env.type + "'"};
}

}  // namespace peershare::proto
