// tests/unit/test_messages.cpp — every message of the session protocol
// (proto/messages.hpp): round trips through the wire, the validation of each
// field, envelopes, and error frames.
#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/control.hpp"
#include "proto/errors.hpp"
#include "proto/frame.hpp"
#include "proto/limits.hpp"
#include "proto/messages.hpp"
#include "proto/names.hpp"

using namespace peershare::proto;

namespace {

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kOtherId = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string kKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::bad_request, ErrorCode::version_mismatch,
    ErrorCode::not_found,   ErrorCode::name_taken,
    ErrorCode::limit,       ErrorCode::busy,
    ErrorCode::timeout,     ErrorCode::unavailable,
    ErrorCode::internal,
};

// JSON for failure messages; never throws on the invalid UTF-8 some tests carry.
std::string show(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

template <class T>
std::string why(const Result<T>& r) {
    return r.ok() ? std::string("ok") : r.error().message;
}

std::span<const char> bytes_of(const std::string& s) { return {s.data(), s.size()}; }

// The one payload the frame bytes carry.
std::string single_payload(const std::string& frame_bytes) {
    FrameDecoder dec;
    auto frames = dec.feed(bytes_of(frame_bytes));
    REQUIRE_FALSE(dec.error());
    REQUIRE(frames.size() == 1);
    return frames[0];
}

Envelope envelope_of(const std::string& frame_bytes) {
    auto env = parse_envelope(single_payload(frame_bytes));
    REQUIRE_MESSAGE(env.ok(), why(env));
    return std::move(*env);
}

// to_json → make_frame → FrameDecoder → parse_envelope → expect<M>.
template <class M>
M over_the_wire(const M& message, std::optional<std::uint64_t> id = 42) {
    const auto env = envelope_of(make_frame(message, id));
    CHECK(env.type == M::kType);
    CHECK(env.id.has_value() == id.has_value());
    if (id && env.id) CHECK(*env.id == *id);
    auto parsed = expect<M>(env);
    REQUIRE_MESSAGE(parsed.ok(), M::kType << ": " << why(parsed));
    CHECK(parsed->to_json() == message.to_json());
    return std::move(*parsed);
}

// A record (not a message on its own) through its JSON text and back.
template <class R>
R through_text(const R& record) {
    const auto text = record.to_json().dump();
    auto parsed = R::from_json(json::parse(text));
    REQUIRE_MESSAGE(parsed.ok(), text << ": " << why(parsed));
    CHECK(parsed->to_json() == record.to_json());
    return std::move(*parsed);
}

template <class M>
Error rejected(const json& j) {
    auto r = M::from_json(j);
    REQUIRE_MESSAGE(!r.ok(), "accepted " << show(j));
    CHECK(r.error().code == ErrorCode::bad_request);
    CHECK_FALSE(r.error().message.empty());
    return r.error();
}

template <class M>
M accepted(const json& j) {
    auto r = M::from_json(j);
    REQUIRE_MESSAGE(r.ok(), show(j) << ": " << why(r));
    return std::move(*r);
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

json with(json j, const char* key, json value) {
    j[key] = std::move(value);
    return j;
}

json without(json j, const char* key) {
    j.erase(key);
    return j;
}

// Each key, taken out of an otherwise valid object, makes it invalid, and the
// error names the key.
template <class M>
void each_is_required(const json& valid, std::initializer_list<const char*> keys) {
    accepted<M>(valid);
    for (const char* key : keys) {
        INFO("without '" << std::string(key) << "'");
        REQUIRE(valid.contains(key));
        const auto err = rejected<M>(without(valid, key));
        CHECK(err.message.find(key) != std::string::npos);
    }
}

// Every value makes an otherwise valid object invalid when put at key.
template <class M>
void each_is_rejected(const json& valid, const char* key, std::initializer_list<json> values) {
    accepted<M>(valid);
    for (const auto& v : values) {
        INFO("'" << std::string(key) << "' = " << show(v));
        rejected<M>(with(valid, key, v));
    }
}

template <class M>
void each_is_accepted(const json& valid, const char* key, std::initializer_list<json> values) {
    for (const auto& v : values) {
        INFO("'" << std::string(key) << "' = " << show(v));
        accepted<M>(with(valid, key, v));
    }
}

// ---- valid objects to mutate ----

json file_json() {
    return {{"name", "song.mp3"},
            {"size", 1234},
            {"id", kId},
            {"piece_size", kMinPieceSize},
            {"published_at", 1'700'000'000}};
}

json holder_json() {
    return {{"peer", "alice"},
            {"address", "10.0.0.5"},
            {"port", 7000},
            {"size", 1234},
            {"id", kId},
            {"piece_size", kMinPieceSize},
            {"published_at", 1'700'000'000}};
}

json peer_info_json() {
    return {{"name", "alice"}, {"address", "10.0.0.5"}, {"port", 7000}, {"files", 3}, {"since", 1}};
}

json index_entry_json() {
    return {{"name", "song.mp3"},
            {"size", 1234},
            {"id", kId},
            {"holders", json::array({"alice", "bob"})}};
}

json event_json() {
    return {{"seq", 1},        {"time", 2},          {"kind", "left"},
            {"peer", "alice"}, {"file", "song.mp3"}, {"detail", "timeout"}};
}

json hello_json() {
    return {{"version", kProtocolVersion},
            {"role", "peer"},
            {"name", "alice"},
            {"port", 7000},
            {"key", kKey}};
}

json welcome_json() {
    return {{"version", kProtocolVersion},
            {"address", "10.0.0.5"},
            {"heartbeat_s", 10},
            {"peer_timeout_s", 30}};
}

json stats_json() {
    return {{"peers", 1},       {"files", 2},    {"names", 3},
            {"connections", 4}, {"uptime_s", 5}, {"requests", {{"lookup", 6u}}}};
}

// ---- sample messages with every field away from its default ----

FileInfo sample_file(std::string name = "song.mp3") {
    FileInfo f;
    f.name = std::move(name);
    f.size = 123'456'789;
    f.id = kId;
    f.piece_size = 1u << 20;
    f.published_at = 1'700'000'000;
    return f;
}

Holder sample_holder(std::string peer = "alice") {
    Holder h;
    h.peer = std::move(peer);
    h.address = "2001:db8::5";
    h.port = 65535;
    h.size = kMaxFileSize;
    h.id = kOtherId;
    h.piece_size = kMaxPieceSize;
    h.published_at = 1'700'000'001;
    return h;
}

PeerInfo sample_peer(std::string name = "alice") {
    PeerInfo p;
    p.name = std::move(name);
    p.address = "192.168.1.20";
    p.port = 7001;
    p.files = 17;
    p.since = 1'600'000'000;
    return p;
}

IndexEntry sample_entry(std::string name = "song.mp3") {
    IndexEntry e;
    e.name = std::move(name);
    e.size = 99;
    e.id = kId;
    e.holders = {"alice", "bob", "carol"};
    e.holder_count = 70;  // more than are listed
    return e;
}

Event sample_event(std::uint64_t seq = 5) {
    Event e;
    e.seq = seq;
    e.time = 1'700'000'002;
    e.kind = "left";
    e.peer = "alice";
    e.file = "song.mp3";
    e.detail = "heartbeat timeout";
    return e;
}

void check_same(const FileInfo& a, const FileInfo& b) {
    CHECK(a.name == b.name);
    CHECK(a.size == b.size);
    CHECK(a.id == b.id);
    CHECK(a.piece_size == b.piece_size);
    CHECK(a.published_at == b.published_at);
    CHECK(a.pieces_held == b.pieces_held);
}

void check_same(const Holder& a, const Holder& b) {
    CHECK(a.peer == b.peer);
    CHECK(a.address == b.address);
    CHECK(a.port == b.port);
    CHECK(a.size == b.size);
    CHECK(a.id == b.id);
    CHECK(a.piece_size == b.piece_size);
    CHECK(a.published_at == b.published_at);
    CHECK(a.pieces_held == b.pieces_held);
}

void check_same(const PeerInfo& a, const PeerInfo& b) {
    CHECK(a.name == b.name);
    CHECK(a.address == b.address);
    CHECK(a.port == b.port);
    CHECK(a.files == b.files);
    CHECK(a.since == b.since);
}

void check_same(const IndexEntry& a, const IndexEntry& b) {
    CHECK(a.name == b.name);
    CHECK(a.size == b.size);
    CHECK(a.id == b.id);
    CHECK(a.holders == b.holders);
    CHECK(a.holder_count == b.holder_count);
    CHECK(a.partial_count == b.partial_count);
}

void check_same(const Event& a, const Event& b) {
    CHECK(a.seq == b.seq);
    CHECK(a.time == b.time);
    CHECK(a.kind == b.kind);
    CHECK(a.peer == b.peer);
    CHECK(a.file == b.file);
    CHECK(a.detail == b.detail);
}

template <class T>
void check_same_lists(const std::vector<T>& a, const std::vector<T>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) check_same(a[i], b[i]);
}

}  // namespace

// ======================= round trips =======================

TEST_CASE("every record survives its JSON text with equal fields") {
    SUBCASE("FileInfo") { check_same(through_text(sample_file()), sample_file()); }
    SUBCASE("Holder") { check_same(through_text(sample_holder()), sample_holder()); }
    SUBCASE("PeerInfo") { check_same(through_text(sample_peer()), sample_peer()); }
    SUBCASE("IndexEntry") { check_same(through_text(sample_entry()), sample_entry()); }
    SUBCASE("Event") { check_same(through_text(sample_event()), sample_event()); }
    SUBCASE("partial holdings (issue 10)") {
        auto f = sample_file();
        CHECK_FALSE(f.to_json().contains("pieces_held"));
        f.pieces_held = 117;   // of 118 pieces
        check_same(through_text(f), f);
        auto h = sample_holder();
        CHECK_FALSE(h.to_json().contains("partial"));
        h.pieces_held = 1;
        CHECK(h.to_json()["partial"] == true);
        check_same(through_text(h), h);
        auto e = sample_entry();
        e.partial_count = 3;
        check_same(through_text(e), e);
        CHECK_FALSE(sample_entry().to_json().contains("partial_count"));
    }
    SUBCASE("pieces_held is 1 to pieces - 1, and partial goes with it") {
        auto j = sample_file().to_json();   // 118 pieces
        for (int bad : {0, 118, 200}) {
            j["pieces_held"] = bad;
            CHECK_FALSE(FileInfo::from_json(j));
        }
        auto h = sample_holder().to_json();
        h["partial"] = true;
        CHECK_FALSE(Holder::from_json(h));
        h["pieces_held"] = 3;
        CHECK(Holder::from_json(h));
        h.erase("partial");
        CHECK_FALSE(Holder::from_json(h));
        auto tiny = sample_file().to_json();
        tiny["size"] = 100;   // one piece: nobody holds part of it
        tiny["pieces_held"] = 1;
        CHECK_FALSE(FileInfo::from_json(tiny));
    }
    SUBCASE("Event without file and detail") {
        Event e = sample_event();
        e.file.clear();
        e.detail.clear();
        CHECK_FALSE(e.to_json().contains("file"));
        CHECK_FALSE(e.to_json().contains("detail"));
        check_same(through_text(e), e);
    }
}

TEST_CASE("every session-opening message round-trips with equal fields") {
    SUBCASE("peer hello") {
        Hello h;
        h.version = 7;
        h.role = "peer";
        h.name = "alice's laptop";
        h.port = 7000;
        h.key = kKey;
        const auto got = over_the_wire(h);
        CHECK(got.version == 7);
        CHECK(got.role == "peer");
        CHECK(got.name == h.name);
        CHECK(got.port == 7000);
        CHECK(got.key == kKey);
        CHECK(got.advertise.empty());
    }
    SUBCASE("peer hello with an advertised address") {
        Hello h;
        h.name = "bob";
        h.port = 1;
        h.key = kKey;
        h.advertise = "bob.example.org";
        const auto got = over_the_wire(h);
        CHECK(got.version == kProtocolVersion);
        CHECK(got.advertise == "bob.example.org");
        CHECK(got.port == 1);
    }
    SUBCASE("admin hello carries no peer fields") {
        Hello h;
        h.role = "admin";
        CHECK_FALSE(h.to_json().contains("name"));
        CHECK_FALSE(h.to_json().contains("key"));
        const auto got = over_the_wire(h);
        CHECK(got.role == "admin");
        CHECK(got.version == kProtocolVersion);
        CHECK(got.name.empty());
        CHECK(got.key.empty());
        CHECK(got.port == 0);
    }
    SUBCASE("welcome") {
        Welcome w;
        w.version = 3;
        w.address = "::ffff:10.0.0.1";
        w.heartbeat_s = 10;
        w.peer_timeout_s = 86400;
        const auto got = over_the_wire(w);
        CHECK(got.version == 3);
        CHECK(got.address == w.address);
        CHECK(got.heartbeat_s == 10);
        CHECK(got.peer_timeout_s == 86400);
    }
}

TEST_CASE("every peer-to-tracker message round-trips with equal fields") {
    SUBCASE("publish") {
        Publish p;
        p.file = sample_file("holiday photos.zip");
        check_same(over_the_wire(p).file, p.file);
    }
    SUBCASE("publish of the largest file with the largest pieces") {
        Publish p;
        p.file = sample_file();
        p.file.size = kMaxFileSize;
        p.file.piece_size = kMaxPieceSize;
        p.file.published_at = 0;
        check_same(over_the_wire(p).file, p.file);
    }
    SUBCASE("unpublish") {
        Unpublish u;
        u.name = "日本語.txt";
        CHECK(over_the_wire(u).name == u.name);
    }
    SUBCASE("lookup") {
        Lookup l;
        l.name = "🎉 party.mp4";
        CHECK(over_the_wire(l).name == l.name);
    }
    SUBCASE("heartbeat") { CHECK(over_the_wire(Heartbeat{}).to_json() == json::object()); }
    SUBCASE("fetched") {
        Fetched f;
        f.name = "song.mp3";
        f.content_id = kOtherId;
        f.sources = {"alice", "bob"};
        const auto got = over_the_wire(f);
        CHECK(got.name == f.name);
        CHECK(got.content_id == f.content_id);
        CHECK(got.sources == f.sources);
    }
    SUBCASE("fetched keeps its content id apart from the request id") {
        Fetched f;
        f.name = "song.mp3";
        f.content_id = kId;
        f.sources = {"alice"};
        CHECK(over_the_wire(f, std::nullopt).content_id == kId);
        const auto env = envelope_of(make_frame(f, 9));
        CHECK(env.id == std::optional<std::uint64_t>(9));
        auto got = expect<Fetched>(env);
        REQUIRE(got.ok());
        CHECK(got->content_id == kId);
    }
    SUBCASE("fetched from no source") {
        Fetched f;
        f.name = "a";
        f.content_id = kId;
        CHECK(over_the_wire(f).sources.empty());
    }
    SUBCASE("search with text") {
        Search s;
        s.text = "[mp3] \"quoted\" {braces}";
        CHECK(over_the_wire(s).text == s.text);
    }
    SUBCASE("search for everything") { CHECK(over_the_wire(Search{}).text.empty()); }
    SUBCASE("ping and pong") {
        CHECK(over_the_wire(Ping{}).to_json() == json::object());
        CHECK(over_the_wire(Pong{}).to_json() == json::object());
    }
}

TEST_CASE("every admin message round-trips with equal fields") {
    SUBCASE("discover") {
        Discover d;
        d.host = "alice";
        CHECK(over_the_wire(d).host == "alice");
    }
    SUBCASE("ping_peer") {
        PingPeer p;
        p.host = "bob";
        p.timeout_ms = kMaxPingTimeoutMs;
        const auto got = over_the_wire(p);
        CHECK(got.host == "bob");
        CHECK(got.timeout_ms == kMaxPingTimeoutMs);
    }
    SUBCASE("list_peers and get_stats") {
        CHECK(over_the_wire(ListPeers{}).to_json() == json::object());
        CHECK(over_the_wire(GetStats{}).to_json() == json::object());
    }
    SUBCASE("list_events") {
        ListEvents l;
        l.follow = true;
        CHECK(over_the_wire(l).follow);
        l.follow = false;
        CHECK_FALSE(over_the_wire(l).follow);
    }
}

TEST_CASE("every reply round-trips with equal fields") {
    SUBCASE("ok") { CHECK(over_the_wire(Ok{}).to_json() == json::object()); }
    SUBCASE("error with every code") {
        for (auto code : kAllCodes) {
            INFO(std::string(to_string(code)));
            ErrorReply e;
            e.code = code;
            e.message = "what happened: " + std::string(to_string(code));
            const auto got = over_the_wire(e);
            CHECK(got.code == code);
            CHECK(got.message == e.message);
        }
    }
    SUBCASE("holders") {
        Holders h;
        h.name = "song.mp3";
        h.holders = {sample_holder("alice"), sample_holder("bob")};
        h.holders[1].port = 1;
        h.holders[1].piece_size = kMinPieceSize;
        h.holders[1].size = 0;
        const auto got = over_the_wire(h);
        CHECK(got.name == h.name);
        check_same_lists(got.holders, h.holders);
    }
    SUBCASE("holders, none") {
        Holders h;
        h.name = "nobody has this";
        CHECK(over_the_wire(h).holders.empty());
    }
    SUBCASE("files") {
        Files f;
        f.host = "alice";
        f.files = {sample_file("a.txt"), sample_file("b.txt")};
        f.files[1].id = kOtherId;
        f.truncated = true;
        const auto got = over_the_wire(f);
        CHECK(got.host == "alice");
        check_same_lists(got.files, f.files);
        CHECK(got.truncated);
    }
    SUBCASE("index") {
        IndexReply r;
        r.entries = {sample_entry("a"), sample_entry("b")};
        r.entries[1].holders.clear();
        r.truncated = true;
        const auto got = over_the_wire(r);
        check_same_lists(got.entries, r.entries);
        CHECK(got.truncated);
    }
    SUBCASE("peers") {
        Peers p;
        p.peers = {sample_peer("alice"), sample_peer("bob")};
        p.truncated = true;
        const auto got = over_the_wire(p);
        check_same_lists(got.peers, p.peers);
        CHECK(got.truncated);
    }
    SUBCASE("ping_result, live") {
        PingResult p;
        p.host = "alice";
        p.live = true;
        p.rtt_ms = 1.25;
        const auto got = over_the_wire(p);
        CHECK(got.host == "alice");
        CHECK(got.live);
        CHECK(got.rtt_ms == doctest::Approx(1.25));
        CHECK(got.reason.empty());
    }
    SUBCASE("ping_result, not live") {
        PingResult p;
        p.host = "bob";
        p.live = false;
        p.reason = "timeout";
        const auto got = over_the_wire(p);
        CHECK_FALSE(got.live);
        CHECK(got.reason == "timeout");
        CHECK(got.rtt_ms == 0);
    }
    SUBCASE("events") {
        Events e;
        e.events = {sample_event(1), sample_event(kU64Max)};
        e.events[0].file.clear();
        check_same_lists(over_the_wire(e).events, e.events);
    }
    SUBCASE("event") {
        EventNotice n;
        n.event = sample_event(9);
        check_same(over_the_wire(n).event, n.event);
    }
    SUBCASE("stats") {
        Stats s;
        s.peers = 1;
        s.files = 2;
        s.names = 3;
        s.connections = 4;
        s.uptime_s = kU64Max;
        s.requests = {{"lookup", 10}, {"publish", 0}, {"hello", kU64Max}};
        const auto got = over_the_wire(s);
        CHECK(got.peers == 1);
        CHECK(got.files == 2);
        CHECK(got.names == 3);
        CHECK(got.connections == 4);
        CHECK(got.uptime_s == kU64Max);
        CHECK(got.requests == s.requests);
    }
}

TEST_CASE("a frame's request id survives the trip, and a frame without one has none") {
    Lookup l;
    l.name = "x";
    SUBCASE("no id") { CHECK_FALSE(envelope_of(make_frame(l)).id.has_value()); }
    SUBCASE("id 0") { CHECK(envelope_of(make_frame(l, 0)).id == std::optional<std::uint64_t>(0)); }
    SUBCASE("the largest id") {
        CHECK(envelope_of(make_frame(l, kU64Max)).id == std::optional<std::uint64_t>(kU64Max));
    }
}

// ======================= rejections =======================

TEST_CASE("a message that is not a JSON object is rejected") {
    for (const json& j : {json::array(), json("text"), json(1), json(nullptr), json(true)}) {
        INFO(show(j));
        rejected<Heartbeat>(j);
        rejected<Ok>(j);
        rejected<Ping>(j);
        rejected<Lookup>(j);
        rejected<FileInfo>(j);
        rejected<Hello>(j);
        rejected<Stats>(j);
    }
}

TEST_CASE("every required field is required") {
    SUBCASE("FileInfo") {
        each_is_required<FileInfo>(file_json(), {"name", "size", "id", "piece_size"});
    }
    SUBCASE("Holder") {
        each_is_required<Holder>(holder_json(),
                                 {"peer", "address", "port", "size", "id", "piece_size"});
    }
    SUBCASE("PeerInfo") {
        each_is_required<PeerInfo>(peer_info_json(), {"name", "address", "port", "files"});
    }
    SUBCASE("IndexEntry") {
        each_is_required<IndexEntry>(index_entry_json(), {"name", "size", "id", "holders"});
    }
    SUBCASE("Event") { each_is_required<Event>(event_json(), {"seq", "kind", "peer"}); }
    SUBCASE("peer Hello") {
        each_is_required<Hello>(hello_json(), {"version", "role", "name", "port", "key"});
    }
    SUBCASE("admin Hello") {
        each_is_required<Hello>({{"version", 1}, {"role", "admin"}}, {"version", "role"});
    }
    SUBCASE("Welcome") {
        each_is_required<Welcome>(welcome_json(),
                                  {"version", "address", "heartbeat_s", "peer_timeout_s"});
    }
    SUBCASE("Publish") { each_is_required<Publish>({{"file", file_json()}}, {"file"}); }
    SUBCASE("Unpublish") { each_is_required<Unpublish>({{"name", "a"}}, {"name"}); }
    SUBCASE("Lookup") { each_is_required<Lookup>({{"name", "a"}}, {"name"}); }
    SUBCASE("Fetched") {
        each_is_required<Fetched>(
            {{"name", "a"}, {"content_id", kId}, {"sources", json::array({"alice"})}},
            {"name", "content_id", "sources"});
    }
    SUBCASE("Discover") { each_is_required<Discover>({{"host", "alice"}}, {"host"}); }
    SUBCASE("PingPeer") {
        each_is_required<PingPeer>({{"host", "alice"}, {"timeout_ms", 5}}, {"host"});
    }
    SUBCASE("ErrorReply") {
        each_is_required<ErrorReply>({{"code", "busy"}, {"message", "m"}}, {"code", "message"});
    }
    SUBCASE("Holders") {
        each_is_required<Holders>({{"name", "a"}, {"holders", json::array({holder_json()})}},
                                  {"name", "holders"});
    }
    SUBCASE("Files") {
        each_is_required<Files>({{"host", "alice"}, {"files", json::array({file_json()})}},
                                {"host", "files"});
    }
    SUBCASE("IndexReply") {
        each_is_required<IndexReply>(
            {{"entries", json::array({index_entry_json()})}, {"truncated", false}}, {"entries"});
    }
    SUBCASE("Peers") {
        each_is_required<Peers>({{"peers", json::array({peer_info_json()})}, {"truncated", false}},
                                {"peers"});
    }
    SUBCASE("PingResult") {
        each_is_required<PingResult>({{"host", "alice"}, {"live", true}, {"rtt_ms", 1.5}},
                                     {"host", "rtt_ms"});
    }
    SUBCASE("Events") {
        each_is_required<Events>({{"events", json::array({event_json()})}}, {"events"});
    }
    SUBCASE("EventNotice") { each_is_required<EventNotice>({{"event", event_json()}}, {"event"}); }
    SUBCASE("Stats") {
        each_is_required<Stats>(stats_json(),
                                {"peers", "files", "names", "connections", "uptime_s", "requests"});
    }
}

TEST_CASE("optional fields may be left out and take their defaults") {
    SUBCASE("FileInfo published_at") {
        CHECK(accepted<FileInfo>(without(file_json(), "published_at")).published_at == 0);
    }
    SUBCASE("Holder published_at") {
        CHECK(accepted<Holder>(without(holder_json(), "published_at")).published_at == 0);
    }
    SUBCASE("PeerInfo since") {
        CHECK(accepted<PeerInfo>(without(peer_info_json(), "since")).since == 0);
    }
    SUBCASE("Event time, file and detail") {
        const auto e = accepted<Event>({{"seq", 1}, {"kind", "joined"}, {"peer", "alice"}});
        CHECK(e.time == 0);
        CHECK(e.file.empty());
        CHECK(e.detail.empty());
    }
    SUBCASE("Hello advertise") { CHECK(accepted<Hello>(hello_json()).advertise.empty()); }
    SUBCASE("PingPeer timeout_ms") {
        CHECK(accepted<PingPeer>({{"host", "alice"}}).timeout_ms == 2000);
    }
    SUBCASE("ListEvents follow") { CHECK_FALSE(accepted<ListEvents>(json::object()).follow); }
    SUBCASE("IndexReply truncated") {
        CHECK_FALSE(accepted<IndexReply>({{"entries", json::array()}}).truncated);
    }
    SUBCASE("Peers truncated") {
        CHECK_FALSE(accepted<Peers>({{"peers", json::array()}}).truncated);
    }
    SUBCASE("PingResult live and reason") {
        const auto p = accepted<PingResult>({{"host", "alice"}, {"rtt_ms", 0}});
        CHECK_FALSE(p.live);
        CHECK(p.reason.empty());
    }
    SUBCASE("Search text") { CHECK(accepted<Search>(json::object()).text.empty()); }
    SUBCASE("Files truncated") {
        CHECK_FALSE(accepted<Files>({{"host", "alice"}, {"files", json::array()}}).truncated);
    }
    SUBCASE("IndexEntry holder_count is the number listed") {
        CHECK(accepted<IndexEntry>(index_entry_json()).holder_count == 2);
    }
}

TEST_CASE("fields of the wrong type are rejected") {
    SUBCASE("FileInfo") {
        each_is_rejected<FileInfo>(file_json(), "name", {5, nullptr, json::array({"a"}), true});
        each_is_rejected<FileInfo>(file_json(), "size",
                                   {"1234", 1.5, true, nullptr, json::object()});
        each_is_rejected<FileInfo>(file_json(), "id", {5, nullptr, json::array({kId})});
        each_is_rejected<FileInfo>(file_json(), "piece_size", {"16384", 16384.0, false});
        each_is_rejected<FileInfo>(file_json(), "published_at", {"now", 1.5, nullptr});
    }
    SUBCASE("Holder") {
        each_is_rejected<Holder>(holder_json(), "peer", {1, nullptr});
        each_is_rejected<Holder>(holder_json(), "address", {1, json::array()});
        each_is_rejected<Holder>(holder_json(), "port", {"7000", 7000.0, true});
    }
    SUBCASE("PeerInfo") {
        each_is_rejected<PeerInfo>(peer_info_json(), "files", {"3", 3.5});
        each_is_rejected<PeerInfo>(peer_info_json(), "since", {"yesterday"});
    }
    SUBCASE("IndexEntry") {
        each_is_rejected<IndexEntry>(index_entry_json(), "holders",
                                     {"alice", json::array({1}), json::object({{"a", "b"}}),
                                      json::array({"alice", nullptr})});
    }
    SUBCASE("Event") {
        each_is_rejected<Event>(event_json(), "seq", {"1", -0.5});
        each_is_rejected<Event>(event_json(), "kind", {5});
        each_is_rejected<Event>(event_json(), "file", {5});
        each_is_rejected<Event>(event_json(), "detail", {false});
    }
    SUBCASE("Hello") {
        each_is_rejected<Hello>(hello_json(), "version", {"1", 1.0, nullptr});
        each_is_rejected<Hello>(hello_json(), "role", {1, nullptr, json::array({"peer"})});
        each_is_rejected<Hello>(hello_json(), "port", {"7000"});
        each_is_rejected<Hello>(hello_json(), "key", {5});
        each_is_rejected<Hello>(hello_json(), "advertise", {5, json::array()});
    }
    SUBCASE("Welcome") {
        each_is_rejected<Welcome>(welcome_json(), "heartbeat_s", {"10"});
        each_is_rejected<Welcome>(welcome_json(), "address", {1});
    }
    SUBCASE("Publish") {
        each_is_rejected<Publish>({{"file", file_json()}}, "file", {"x", json::array(), 1});
    }
    SUBCASE("Fetched") {
        each_is_rejected<Fetched>({{"name", "a"}, {"content_id", kId}, {"sources", json::array()}},
                                  "sources", {"alice", json::array({1})});
    }
    SUBCASE("ListEvents") {
        each_is_rejected<ListEvents>(json::object(), "follow", {"yes", 1, nullptr});
    }
    SUBCASE("IndexReply and Peers") {
        each_is_rejected<IndexReply>({{"entries", json::array()}}, "entries",
                                     {json::object(), "x"});
        each_is_rejected<IndexReply>({{"entries", json::array()}}, "truncated", {"no", 0});
        each_is_rejected<Peers>({{"peers", json::array()}}, "peers", {"x", json::array({1})});
    }
    SUBCASE("PingResult") {
        const json valid = {{"host", "alice"}, {"rtt_ms", 1}};
        each_is_rejected<PingResult>(valid, "live", {"true", 1});
        each_is_rejected<PingResult>(valid, "rtt_ms", {"1", nullptr, true});
        each_is_rejected<PingResult>(valid, "reason", {1});
    }
    SUBCASE("Events and EventNotice") {
        each_is_rejected<Events>({{"events", json::array()}}, "events",
                                 {json::array({1}), json::object()});
        each_is_rejected<EventNotice>({{"event", event_json()}}, "event", {1, json::array()});
    }
    SUBCASE("Stats") {
        each_is_rejected<Stats>(stats_json(), "peers", {"1"});
        each_is_rejected<Stats>(
            stats_json(), "requests",
            {json::array(), json::object({{"lookup", "1"}}), json::object({{"lookup", -1}}),
             json::object({{"lookup", 1.5}}), json::object({{std::string(33, 't'), 1}})});
    }
    SUBCASE("ErrorReply and Search") {
        each_is_rejected<ErrorReply>({{"code", "busy"}, {"message", "m"}}, "code", {1, nullptr});
        each_is_rejected<ErrorReply>({{"code", "busy"}, {"message", "m"}}, "message", {1});
        each_is_rejected<Search>(json::object(), "text", {1, json::array()});
    }
}

TEST_CASE("negative numbers are rejected") {
    const std::initializer_list<json> negatives = {-1, -16384, kI64Min};
    each_is_rejected<FileInfo>(file_json(), "size", negatives);
    each_is_rejected<FileInfo>(file_json(), "piece_size", negatives);
    each_is_rejected<FileInfo>(file_json(), "published_at", negatives);
    each_is_rejected<Holder>(holder_json(), "port", negatives);
    each_is_rejected<Holder>(holder_json(), "size", negatives);
    each_is_rejected<PeerInfo>(peer_info_json(), "port", negatives);
    each_is_rejected<PeerInfo>(peer_info_json(), "files", negatives);
    each_is_rejected<PeerInfo>(peer_info_json(), "since", negatives);
    each_is_rejected<IndexEntry>(index_entry_json(), "size", negatives);
    each_is_rejected<Event>(event_json(), "seq", negatives);
    each_is_rejected<Event>(event_json(), "time", negatives);
    each_is_rejected<Hello>(hello_json(), "version", negatives);
    each_is_rejected<Hello>(hello_json(), "port", negatives);
    each_is_rejected<Welcome>(welcome_json(), "version", negatives);
    each_is_rejected<Welcome>(welcome_json(), "heartbeat_s", negatives);
    each_is_rejected<Welcome>(welcome_json(), "peer_timeout_s", negatives);
    each_is_rejected<PingPeer>({{"host", "alice"}}, "timeout_ms", negatives);
    each_is_rejected<PingResult>({{"host", "alice"}, {"rtt_ms", 1}}, "rtt_ms", {-1, -0.001});
    each_is_rejected<Stats>(stats_json(), "uptime_s", negatives);
}

TEST_CASE("ports must be from 1 to 65535") {
    const std::initializer_list<json> bad = {0, 65536, 70000, (std::uint64_t{1} << 32) + 7000};
    SUBCASE("hello") {
        each_is_rejected<Hello>(hello_json(), "port", bad);
        each_is_accepted<Hello>(hello_json(), "port", {1, 65535});
        CHECK(accepted<Hello>(with(hello_json(), "port", 65535)).port == 65535);
    }
    SUBCASE("holder") {
        each_is_rejected<Holder>(holder_json(), "port", bad);
        each_is_accepted<Holder>(holder_json(), "port", {1, 65535});
    }
    SUBCASE("peer info") {
        each_is_rejected<PeerInfo>(peer_info_json(), "port", {65536, 70000});
        CHECK(accepted<PeerInfo>(with(peer_info_json(), "port", 65535)).port == 65535);
    }
}

TEST_CASE("file sizes are at most kMaxFileSize") {
    const std::initializer_list<json> bad = {kMaxFileSize + 1, kU64Max};
    const std::initializer_list<json> good = {0, 1, kMaxFileSize};
    SUBCASE("FileInfo") {
        each_is_rejected<FileInfo>(file_json(), "size", bad);
        each_is_accepted<FileInfo>(file_json(), "size", good);
    }
    SUBCASE("Holder") {
        each_is_rejected<Holder>(holder_json(), "size", bad);
        each_is_accepted<Holder>(holder_json(), "size", good);
    }
    SUBCASE("IndexEntry") {
        each_is_rejected<IndexEntry>(index_entry_json(), "size", bad);
        each_is_accepted<IndexEntry>(index_entry_json(), "size", good);
    }
    SUBCASE("inside a publish, the error says where") {
        const auto err = rejected<Publish>({{"file", with(file_json(), "size", kMaxFileSize + 1)}});
        CHECK(err.message.find("file") != std::string::npos);
        CHECK(err.message.find("size") != std::string::npos);
    }
}

TEST_CASE("piece sizes are within [kMinPieceSize, kMaxPieceSize]") {
    const std::initializer_list<json> bad = {0, 1, kMinPieceSize - 1, kMaxPieceSize + 1, kU64Max};
    const std::initializer_list<json> good = {kMinPieceSize, kMinPieceSize * 2, kMaxPieceSize};
    SUBCASE("FileInfo") {
        each_is_rejected<FileInfo>(file_json(), "piece_size", bad);
        each_is_accepted<FileInfo>(file_json(), "piece_size", good);
    }
    SUBCASE("Holder") {
        each_is_rejected<Holder>(holder_json(), "piece_size", bad);
        each_is_accepted<Holder>(holder_json(), "piece_size", good);
    }
}

TEST_CASE("other numbers out of their range are rejected") {
    SUBCASE("timestamps past 2^40") {
        each_is_rejected<FileInfo>(file_json(), "published_at", {(std::uint64_t{1} << 40) + 1});
        each_is_accepted<FileInfo>(file_json(), "published_at", {std::uint64_t{1} << 40});
    }
    SUBCASE("hello version past 32 bits") {
        each_is_rejected<Hello>(hello_json(), "version", {std::uint64_t{1} << 32});
    }
    SUBCASE("welcome timers past a day") {
        each_is_rejected<Welcome>(welcome_json(), "heartbeat_s", {86401});
        each_is_rejected<Welcome>(welcome_json(), "peer_timeout_s", {86401});
    }
    SUBCASE("ping timeout past the cap") {
        each_is_rejected<PingPeer>({{"host", "alice"}}, "timeout_ms", {kMaxPingTimeoutMs + 1});
    }
    SUBCASE("files per peer past the cap") {
        each_is_rejected<PeerInfo>(peer_info_json(), "files", {kMaxFilesPerPeer + 1});
    }
    SUBCASE("round-trip times past 1e9 ms") {
        each_is_rejected<PingResult>({{"host", "alice"}, {"rtt_ms", 1}}, "rtt_ms", {1e10});
    }
}

TEST_CASE("texts and lists over their limits are rejected") {
    SUBCASE("search text") {
        each_is_rejected<Search>(json::object(), "text", {std::string(kMaxSearchText + 1, 's')});
        each_is_accepted<Search>(json::object(), "text", {std::string(kMaxSearchText, 's')});
    }
    SUBCASE("error message") {
        each_is_rejected<ErrorReply>({{"code", "busy"}, {"message", ""}}, "message",
                                     {std::string(kMaxMessageText + 1, 'm')});
    }
    SUBCASE("event kind") { each_is_rejected<Event>(event_json(), "kind", {std::string(33, 'k')}); }
    SUBCASE("address") {
        each_is_rejected<Holder>(holder_json(), "address", {std::string(kMaxHostBytes + 1, 'a')});
    }
    SUBCASE("fetched sources") {
        json sources = json::array();
        for (int i = 0; i < 1025; ++i) sources.push_back("p" + std::to_string(i));
        each_is_rejected<Fetched>({{"name", "a"}, {"content_id", kId}, {"sources", json::array()}},
                                  "sources", {sources});
    }
    SUBCASE("holders of an index entry") {
        json holders = json::array();
        for (std::size_t i = 0; i <= kMaxListedHolders; ++i)
            holders.push_back("p" + std::to_string(i));
        each_is_rejected<IndexEntry>(index_entry_json(), "holders", {holders});
        holders.erase(holders.size() - 1);
        each_is_accepted<IndexEntry>(index_entry_json(), "holders", {holders});
    }
    SUBCASE("discovered files") {
        json files = json::array();
        for (std::size_t i = 0; i <= kMaxListedItems; ++i) files.push_back(file_json());
        rejected<Files>({{"host", "alice"}, {"files", files}});
    }
    SUBCASE("event history") {
        json events = json::array();
        for (std::size_t i = 0; i <= kEventHistory; ++i) events.push_back(event_json());
        const auto err = rejected<Events>({{"events", events}});
        CHECK(err.message.find("events") != std::string::npos);
    }
    SUBCASE("listed entries") {
        json entries = json::array();
        for (std::size_t i = 0; i <= kMaxListedItems; ++i) entries.push_back(index_entry_json());
        rejected<IndexReply>({{"entries", entries}});
    }
}

TEST_CASE("free text fields must be valid UTF-8") {
    const std::initializer_list<json> bad = {"\xff", "ok\xc0\xaf", "\xed\xa0\x80", "x\xe4\xb8"};
    each_is_rejected<Search>(json::object(), "text", bad);
    each_is_rejected<ErrorReply>({{"code", "busy"}, {"message", "m"}}, "message", bad);
    each_is_rejected<Event>(event_json(), "peer", bad);
    each_is_rejected<Event>(event_json(), "detail", bad);
    each_is_rejected<Holder>(holder_json(), "address", bad);
    each_is_rejected<PingResult>({{"host", "alice"}, {"rtt_ms", 1}}, "reason", bad);
    each_is_rejected<Welcome>(welcome_json(), "address", bad);
}

TEST_CASE("one bad item in a list rejects the whole list") {
    SUBCASE("holders") {
        const auto err = rejected<Holders>(
            {{"name", "a"},
             {"holders", json::array({holder_json(), with(holder_json(), "port", 0)})}});
        CHECK(err.message.find("holders") != std::string::npos);
    }
    SUBCASE("files") {
        rejected<Files>({{"host", "alice"},
                         {"files", json::array({file_json(), with(file_json(), "id", "x")})}});
    }
    SUBCASE("peers") {
        rejected<Peers>(
            {{"peers", json::array({peer_info_json(), with(peer_info_json(), "name", "")})}});
    }
    SUBCASE("entries") {
        rejected<IndexReply>(
            {{"entries", json::array({with(index_entry_json(), "holders", json::array({"/"}))})}});
    }
    SUBCASE("events") {
        rejected<Events>({{"events", json::array({event_json(), without(event_json(), "kind")})}});
    }
    SUBCASE("the event of a notice") {
        rejected<EventNotice>({{"event", without(event_json(), "peer")}});
    }
}

TEST_CASE("bad content ids are rejected") {
    std::string upper = kId;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::initializer_list<json> bad = {
        upper,                 // uppercase hex
        kId.substr(0, 63),     // one digit short
        kId + "0",             // one digit long
        std::string(64, 'g'),  // not hex
        kId.substr(0, 63) + "z",
        kId.substr(0, 63) + " ",
        "",
        "0x" + kId.substr(2),
    };
    each_is_rejected<FileInfo>(file_json(), "id", bad);
    each_is_rejected<Holder>(holder_json(), "id", bad);
    each_is_rejected<IndexEntry>(index_entry_json(), "id", bad);
    each_is_rejected<Fetched>({{"name", "a"}, {"content_id", kId}, {"sources", json::array()}},
                              "content_id", bad);
    const auto err = rejected<FileInfo>(with(file_json(), "id", upper));
    CHECK(err.message.find("id") != std::string::npos);
}

TEST_CASE("bad peer keys are rejected") {
    std::string upper = kKey;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    each_is_rejected<Hello>(
        hello_json(), "key",
        {upper, kKey.substr(0, 63), kKey + "a", std::string(64, 'x'), "", kKey.substr(1) + "-"});
    const auto err = rejected<Hello>(with(hello_json(), "key", "short"));
    CHECK(err.message.find("key") != std::string::npos);
}

TEST_CASE("bad names are rejected wherever a name is read") {
    const std::initializer_list<json> bad = {
        "",
        std::string(kMaxNameBytes + 1, 'n'),
        std::string(1000, 'n'),
        "/",
        "dir/file",
        ".",
        "..",
        std::string("a\0b", 3),
        "line\nbreak",
        "tab\there",
        "\x1b[31mred",
        "del\x7f",
        "c1\xc2\x85",        // U+0085, a C1 control character
        "bad\xff",           // invalid byte
        "\x80",              // lone continuation byte
        "caf\xc3",           // truncated sequence
        "\xc0\xaf",          // overlong '/'
        "\xc0\x80",          // overlong NUL
        "\xe0\x80\xaf",      // 3-byte overlong
        "\xf0\x80\x80\xaf",  // 4-byte overlong
        "\xed\xa0\x80",      // high surrogate
        "\xed\xbf\xbf",      // low surrogate
        "\xf4\x90\x80\x80",  // past U+10FFFF
    };
    SUBCASE("file name") { each_is_rejected<FileInfo>(file_json(), "name", bad); }
    SUBCASE("holder peer") { each_is_rejected<Holder>(holder_json(), "peer", bad); }
    SUBCASE("peer info name") { each_is_rejected<PeerInfo>(peer_info_json(), "name", bad); }
    SUBCASE("index entry name") { each_is_rejected<IndexEntry>(index_entry_json(), "name", bad); }
    SUBCASE("hello name") { each_is_rejected<Hello>(hello_json(), "name", bad); }
    SUBCASE("unpublish and lookup") {
        each_is_rejected<Unpublish>({{"name", "a"}}, "name", bad);
        each_is_rejected<Lookup>({{"name", "a"}}, "name", bad);
    }
    SUBCASE("fetched name") {
        each_is_rejected<Fetched>({{"name", "a"}, {"content_id", kId}, {"sources", json::array()}},
                                  "name", bad);
    }
    SUBCASE("hosts that are peer names") {
        each_is_rejected<Discover>({{"host", "alice"}}, "host", bad);
        each_is_rejected<PingPeer>({{"host", "alice"}}, "host", bad);
        each_is_rejected<PingResult>({{"host", "alice"}, {"rtt_ms", 1}}, "host", bad);
        each_is_rejected<Files>({{"host", "alice"}, {"files", json::array()}}, "host", bad);
        each_is_rejected<Holders>({{"name", "a"}, {"holders", json::array()}}, "name", bad);
    }
    SUBCASE("names inside lists") {
        for (const auto& name : bad) {
            INFO(show(name));
            rejected<IndexEntry>(with(index_entry_json(), "holders", json::array({"alice", name})));
            rejected<Fetched>(
                {{"name", "a"}, {"content_id", kId}, {"sources", json::array({name})}});
        }
    }
    SUBCASE("the error names the field") {
        const auto err = rejected<Lookup>({{"name", "a/b"}});
        CHECK(err.message.find("name") != std::string::npos);
    }
}

TEST_CASE("names written with JSON escapes are checked after unescaping") {
    for (const char* payload : {
             R"({"type":"lookup","name":"a\u002fb"})",      // '/'
             R"({"type":"lookup","name":"a\u0000b"})",      // NUL
             R"({"type":"lookup","name":"\u001b[0m"})",     // ESC
             R"({"type":"lookup","name":"\u0085"})",        // C1 NEL
             R"({"type":"lookup","name":"\u002e\u002e"})",  // ".."
             R"({"type":"lookup","name":"\ud800"})",        // lone surrogate
         }) {
        INFO(std::string(payload));
        auto env = parse_envelope(payload);
        if (!env) {
            CHECK(env.error().code == ErrorCode::bad_request);
            continue;
        }
        auto lookup = expect<Lookup>(*env);
        REQUIRE_FALSE(lookup.ok());
        CHECK(lookup.error().code == ErrorCode::bad_request);
    }
}

TEST_CASE("valid names of every kind are accepted in messages") {
    each_is_accepted<Lookup>({{"name", "a"}}, "name",
                             {"a", "with spaces.txt", "🎉.mp4", "中文文件名", "...", ".hidden",
                              std::string(kMaxNameBytes, 'n'), "a\\b", "quote\"d"});
}

TEST_CASE("a hello's role must be peer or admin") {
    each_is_rejected<Hello>(hello_json(), "role",
                            {"", "Peer", "ADMIN", "tracker", "peer ", " admin", "administrator",
                             std::string(100, 'r'), std::string("peer\0", 5)});
    each_is_accepted<Hello>(hello_json(), "role", {"peer", "admin"});
    const auto err = rejected<Hello>(with(hello_json(), "role", "tracker"));
    CHECK(err.message.find("role") != std::string::npos);
}

TEST_CASE("an admin hello needs no peer fields") {
    const auto h = accepted<Hello>({{"version", kProtocolVersion}, {"role", "admin"}});
    CHECK(h.role == "admin");
    CHECK(h.name.empty());
    CHECK(h.key.empty());
}

TEST_CASE("a hello's advertised host must be a host name or IP literal") {
    SUBCASE("rejected") {
        each_is_rejected<Hello>(
            hello_json(), "advertise",
            {"bad host", "host/evil", "a_b", "évian.fr", "host;rm", "[::1]", "10.0.0.1:7000/x",
             std::string(kMaxHostBytes + 1, 'h'), std::string("a\0b", 3), "\xff"});
        const auto err = rejected<Hello>(with(hello_json(), "advertise", "bad host"));
        CHECK(err.message.find("advertise") != std::string::npos);
    }
    SUBCASE("accepted") {
        each_is_accepted<Hello>(hello_json(), "advertise",
                                {"peer.example.org", "10.0.0.1", "::1", "fe80::1", "PEER-1",
                                 std::string(kMaxHostBytes, 'h')});
        CHECK(accepted<Hello>(with(hello_json(), "advertise", "10.0.0.1")).advertise == "10.0.0.1");
    }
    SUBCASE("an empty one means none") {
        CHECK(accepted<Hello>(with(hello_json(), "advertise", "")).advertise.empty());
    }
}

// ======================= envelopes =======================

TEST_CASE("parse_envelope rejects what is not a typed JSON object") {
    const std::vector<std::string> bad = {
        "",
        "not json",
        "{",
        R"({"type":"ping"} trailing)",
        R"({"type":"ping",})",
        "[]",
        R"(["type","ping"])",
        R"("ping")",
        "42",
        "null",
        "true",
        "{}",
        R"({"id":1})",
        R"({"type":1})",
        R"({"type":null})",
        R"({"type":["ping"]})",
        R"({"type":{"name":"ping"}})",
        R"({"type":true})",
        R"({"type":"ping","id":-1})",
        R"({"type":"ping","id":-9223372036854775808})",
        R"({"type":"ping","id":"1"})",
        R"({"type":"ping","id":1.5})",
        R"({"type":"ping","id":null})",
        R"({"type":")" + std::string(33, 't') + R"("})",
        std::string("{\"type\":\"ping\",\"x\":\"\xff\"}"),  // invalid UTF-8 inside a string
        std::string("{\"type\":\"pi") + '\0' + "ng\"}",     // raw NUL in a string
    };
    for (const auto& payload : bad) {
        INFO(std::string(payload.substr(0, 80)));
        auto env = parse_envelope(payload);
        REQUIRE_FALSE(env.ok());
        CHECK(env.error().code == ErrorCode::bad_request);
        CHECK_FALSE(env.error().message.empty());
    }
}

TEST_CASE("parse_envelope rejects deep nesting before parsing it") {
    SUBCASE("100 brackets") {
        auto env = parse_envelope(std::string(100, '['));
        REQUIRE_FALSE(env.ok());
        CHECK(env.error().code == ErrorCode::bad_request);
    }
    SUBCASE("a million brackets") { CHECK_FALSE(parse_envelope(std::string(1'000'000, '[')).ok()); }
    SUBCASE("100 balanced arrays inside an object") {
        const auto payload =
            R"({"type":"ping","x":)" + std::string(100, '[') + std::string(100, ']') + "}";
        CHECK_FALSE(parse_envelope(payload).ok());
    }
    SUBCASE("nested objects") {
        std::string payload = R"({"type":"ping","x":)";
        for (int i = 0; i < 20; ++i) payload += R"({"a":)";
        payload += "1" + std::string(20, '}') + "}";
        CHECK_FALSE(parse_envelope(payload).ok());
    }
    SUBCASE("closing brackets inside strings do not make room for more depth") {
        const auto payload = R"({"type":"ping","s":"]]]]]]]]]]]]]]]]","x":)" +
                             std::string(12, '[') + std::string(12, ']') + "}";
        CHECK_FALSE(parse_envelope(payload).ok());
    }
}

TEST_CASE("parse_envelope accepts the nesting real messages use") {
    SUBCASE("brackets inside strings do not count") {
        const auto payload =
            R"({"type":"search","text":")" + std::string(100, '[') + std::string(50, '{') + R"("})";
        auto env = parse_envelope(payload);
        REQUIRE_MESSAGE(env.ok(), why(env));
        auto search = expect<Search>(*env);
        REQUIRE(search.ok());
        CHECK(search->text == std::string(100, '[') + std::string(50, '{'));
    }
    SUBCASE("escaped quotes and backslashes inside strings") {
        // The string holds: \"[[[[...  — the scanner must not think the string ended.
        const auto payload = R"({"type":"search","text":"\\\")" + std::string(40, '[') + R"("})";
        auto env = parse_envelope(payload);
        REQUIRE_MESSAGE(env.ok(), why(env));
        auto search = expect<Search>(*env);
        REQUIRE(search.ok());
        CHECK(search->text == "\\\"" + std::string(40, '['));
    }
    SUBCASE("a string ending in an escaped backslash") {
        const auto payload = R"({"type":"search","text":"a\\","x":[1]})";
        CHECK(parse_envelope(payload).ok());
    }
    SUBCASE("up to the depth limit") {
        // The object is level 1; seven arrays inside make 8.
        const auto payload =
            R"({"type":"ping","x":)" + std::string(7, '[') + std::string(7, ']') + "}";
        CHECK(parse_envelope(payload).ok());
    }
    SUBCASE("the deepest real message") {
        IndexReply r;
        r.entries = {sample_entry()};
        CHECK(parse_envelope(single_payload(make_frame(r))).ok());
    }
    SUBCASE("unknown fields are kept in the body") {
        auto env = parse_envelope(R"({"type":"ping","id":3,"future":{"x":[1,2]}})");
        REQUIRE(env.ok());
        CHECK(env->type == "ping");
        CHECK(env->id == std::optional<std::uint64_t>(3));
        CHECK(env->body["future"]["x"][1] == 2);
        CHECK(expect<Ping>(*env).ok());
    }
}

// ======================= expect and errors =======================

TEST_CASE("expect turns an error frame into an Error with its code and message") {
    for (auto code : kAllCodes) {
        INFO(std::string(to_string(code)));
        const std::string message = "because " + std::string(to_string(code));
        const auto env = envelope_of(make_error_frame(code, message, 77));
        CHECK(env.type == "error");
        CHECK(env.id == std::optional<std::uint64_t>(77));
        auto got = expect<Holders>(env);
        REQUIRE_FALSE(got.ok());
        CHECK(got.error().code == code);
        CHECK(got.error().message == message);
    }
}

TEST_CASE("expect turns a frame of another type into bad_request") {
    Welcome w;
    w.address = "10.0.0.1";
    const auto env = envelope_of(make_frame(w, 1));
    auto got = expect<Holders>(env);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::bad_request);
    CHECK(got.error().message.find("holders") != std::string::npos);
    CHECK(got.error().message.find("welcome") != std::string::npos);
}

TEST_CASE("expect rejects a frame of the right type with a bad body") {
    auto env = parse_envelope(R"({"type":"lookup","name":".."})");
    REQUIRE(env.ok());
    auto got = expect<Lookup>(*env);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::bad_request);
}

TEST_CASE("an error frame with an unknown code maps to internal and keeps its message") {
    auto env = parse_envelope(R"({"type":"error","code":"teapot","message":"short and stout"})");
    REQUIRE(env.ok());
    auto got = expect<Ok>(*env);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::internal);
    CHECK(got.error().message == "short and stout");
    auto reply = expect<ErrorReply>(*env);
    REQUIRE(reply.ok());
    CHECK(reply->code == ErrorCode::internal);
}

TEST_CASE("a malformed error frame is itself a bad_request") {
    for (const char* payload :
         {R"({"type":"error","code":"busy"})", R"({"type":"error","message":"m"})",
          R"({"type":"error","code":5,"message":"m"})"}) {
        INFO(std::string(payload));
        auto env = parse_envelope(payload);
        REQUIRE(env.ok());
        auto got = expect<Ok>(*env);
        REQUIRE_FALSE(got.ok());
        CHECK(got.error().code == ErrorCode::bad_request);
    }
}

TEST_CASE("error codes travel as their documented words") {
    const std::pair<ErrorCode, const char*> words[] = {
        {ErrorCode::bad_request, "bad_request"},
        {ErrorCode::version_mismatch, "version_mismatch"},
        {ErrorCode::not_found, "not_found"},
        {ErrorCode::name_taken, "name_taken"},
        {ErrorCode::limit, "limit"},
        {ErrorCode::busy, "busy"},
        {ErrorCode::timeout, "timeout"},
        {ErrorCode::unavailable, "unavailable"},
        {ErrorCode::internal, "internal"},
    };
    for (const auto& [code, word] : words) {
        INFO(std::string(word));
        CHECK(to_string(code) == word);
        ErrorReply e;
        e.code = code;
        e.message = "m";
        CHECK(e.to_json()["code"] == word);
        const auto payload =
            R"({"type":"error","code":")" + std::string(word) + R"(","message":"m"})";
        auto env = parse_envelope(payload);
        REQUIRE(env.ok());
        auto got = expect<Ok>(*env);
        REQUIRE_FALSE(got.ok());
        CHECK(got.error().code == code);
    }
}

TEST_CASE("error codes are words on the wire and back") {
    for (auto code : kAllCodes) {
        const auto word = to_string(code);
        CHECK_FALSE(word.empty());
        CHECK(error_code_from_string(word) == std::optional<ErrorCode>(code));
    }
    CHECK(to_string(ErrorCode::not_found) == "not_found");
    CHECK_FALSE(error_code_from_string("teapot").has_value());
    CHECK_FALSE(error_code_from_string("").has_value());
    CHECK_FALSE(error_code_from_string("NOT_FOUND").has_value());
}

TEST_CASE("make_error_frame cuts long messages to a size the receiver accepts") {
    std::string message;
    SUBCASE("ASCII") { message = std::string(5000, 'm'); }
    SUBCASE("two-byte characters straddling the cut") {
        message = "a" + [] {
            std::string s;
            for (int i = 0; i < 1000; ++i) s += "é";
            return s;
        }();
    }
    SUBCASE("three-byte characters straddling the cut") {
        message = [] {
            std::string s;
            for (int i = 0; i < 1000; ++i) s += "中";
            return s;
        }();
    }
    SUBCASE("four-byte characters straddling the cut") {
        message = "ab" + [] {
            std::string s;
            for (int i = 0; i < 1000; ++i) s += "🎉";
            return s;
        }();
    }
    const auto env = envelope_of(make_error_frame(ErrorCode::busy, message, 5));
    auto got = expect<Ok>(env);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::busy);
    CHECK(got.error().message.size() <= kMaxMessageText);
    CHECK(got.error().message.size() > kMaxMessageText - 4);
    CHECK(is_valid_utf8(got.error().message));
    CHECK(message.starts_with(got.error().message));
}

TEST_CASE("make_error_frame keeps a short message whole") {
    const auto env = envelope_of(make_error_frame(ErrorCode::not_found, "no file named 'x'"));
    CHECK_FALSE(env.id.has_value());
    auto got = expect<Lookup>(env);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::not_found);
    CHECK(got.error().message == "no file named 'x'");
}

TEST_CASE("make_bounded_frame cuts a listing that would exceed a frame and says so") {
    // peerd's publications: 1,000 files with 1,000-byte paths are ~1.1 MB of JSON.
    Publications all;
    for (int i = 0; i < 1000; ++i) {
        all.files.push_back({"file" + std::to_string(i), 1, std::string(64, 'a'),
                             "/" + std::string(1000, 'p') + std::to_string(i), 1, "ok"});
    }
    REQUIRE(make_frame(all, 3).size() > kMaxFrame + 4);

    const auto frame = make_bounded_frame(all, &Publications::files, 3);
    CHECK(frame.size() <= kMaxFrame + 4);
    auto got = expect<Publications>(envelope_of(frame));
    REQUIRE_MESSAGE(got.ok(), why(got));
    CHECK(got->truncated);
    CHECK(got->files.size() < all.files.size());
    CHECK(got->files.size() > all.files.size() / 2);   // cut by quarters, not emptied
    CHECK(got->files.front().name == "file0");         // the first rows are kept

    SUBCASE("a listing that fits is sent whole") {
        all.files.resize(10);
        auto whole = expect<Publications>(envelope_of(make_bounded_frame(all, &Publications::files, 3)));
        REQUIRE(whole.ok());
        CHECK_FALSE(whole->truncated);
        CHECK(whole->files.size() == 10);
    }
}

TEST_CASE("reverse_request and connect_back round-trip; bad tokens, names, hosts and ports are refused") {
    const std::string token = "0123456789abcdef0123456789abcdef";
    const auto request = over_the_wire(ReverseRequest{"alice", token}, 12);
    CHECK(request.holder == "alice");
    CHECK(request.token == token);
    CHECK(make_frame(ReverseRequest{"alice", token}, 12).substr(4) ==
          R"({"holder":"alice","id":12,"token":")" + token + R"(","type":"reverse_request"})");
    const auto back = over_the_wire(ConnectBack{token, "10.0.0.5", 27011, "bob"}, std::nullopt);
    CHECK(back.token == token);
    CHECK(back.address == "10.0.0.5");
    CHECK(back.port == 27011);
    CHECK(back.peer == "bob");
    CHECK(over_the_wire(ConnectBack{token, "fe80::1", 1, "b"}, std::nullopt).address == "fe80::1");

    const json req = {{"holder", "alice"}, {"token", token}};
    each_is_required<ReverseRequest>(req, {"holder", "token"});
    const json cb = {{"token", token}, {"address", "10.0.0.5"}, {"port", 27011}, {"peer", "bob"}};
    each_is_required<ConnectBack>(cb, {"token", "address", "port", "peer"});
    for (const json& bad : {json(token.substr(1)), json(token + "0"), json("0123456789ABCDEF0123456789abcdef"),
                            json("0123456789abcdef0123456789abcdeg"), json(""), json(7)}) {
        INFO(show(bad));
        CHECK(contains(rejected<ReverseRequest>(with(req, "token", bad)).message, "token"));
        CHECK(contains(rejected<ConnectBack>(with(cb, "token", bad)).message, "token"));
    }
    CHECK(contains(rejected<ReverseRequest>(with(req, "holder", "a/b")).message, "holder"));
    CHECK(contains(rejected<ConnectBack>(with(cb, "peer", "")).message, "peer"));
    CHECK(contains(rejected<ConnectBack>(with(cb, "address", "")).message, "address"));
    CHECK(contains(rejected<ConnectBack>(with(cb, "address", "bad host!")).message, "address"));
    CHECK(contains(rejected<ConnectBack>(with(cb, "port", 0)).message, "port"));
    CHECK(contains(rejected<ConnectBack>(with(cb, "port", 65536)).message, "port"));
}

TEST_CASE("stats carry the reverse counters; a stats without them reads as zeros") {
    Stats s;
    s.reverse = ReverseStats{3, 2};
    const auto got = over_the_wire(s);
    CHECK(got.reverse.forwarded == 3);
    CHECK(got.reverse.refused == 2);
    auto older = s.to_json();
    older.erase("reverse");
    CHECK(accepted<Stats>(older).reverse.forwarded == 0);
    CHECK(contains(rejected<Stats>(with(s.to_json(), "reverse", {{"forwarded", -1}, {"refused", 0}})).message,
                   "reverse"));
}
