// proto/messages.cpp — to_json and validating from_json of every message.
#include "proto/messages.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "proto/content.hpp"
#include "proto/hex.hpp"
#include "proto/limits.hpp"
#include "proto/names.hpp"
#include "proto/relay.hpp"
#include "proto/reverse.hpp"

namespace peershare::proto {
namespace {

constexpr std::uint64_t kMaxU16 = std::numeric_limits<std::uint16_t>::max();
constexpr std::uint64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t kMaxJsonDepth = 8;   // our deepest message nests 4 levels

// Rejects deeply nested input before handing it to the JSON parser, so that a
// frame of a million '[' costs a scan, not a deep tree.
bool nesting_within(std::string_view text, std::size_t max_depth) {
    std::size_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

}  // namespace

// ---- records ----

json FileInfo::to_json() const {
    json j = {{"name", name}, {"size", size}, {"id", id}, {"piece_size", piece_size},
              {"published_at", published_at}};
    if (pieces_held) j["pieces_held"] = *pieces_held;
    return j;
}

namespace {

// "pieces_held" of a partial holding: present, 1 … pieces − 1 (all of them is a complete file).
std::optional<std::uint64_t> read_pieces_held(FieldReader& r, const json& j, std::uint64_t size,
                                              std::uint64_t piece_size) {
    if (!j.contains("pieces_held") || r.error()) return std::nullopt;
    const auto pieces = piece_count(size, piece_size);
    if (pieces < 2) {
        r.fail("field 'pieces_held': a file of fewer than 2 pieces has no partial holders");
        return std::nullopt;
    }
    return r.number("pieces_held", 1, pieces - 1);
}

}  // namespace

Result<FileInfo> FileInfo::from_json(const json& j) {
    FieldReader r(j);
    FileInfo f;
    f.name = r.name("name");
    f.size = r.number("size", 0, kMaxFileSize);
    f.id = r.content_id("id");
    f.piece_size = r.number("piece_size", kMinPieceSize, kMaxPieceSize);
    f.published_at = r.timestamp("published_at");
    f.pieces_held = read_pieces_held(r, j, f.size, f.piece_size);
    return finish(r, std::move(f));
}

// Holder and Holders make the lookup reply, the tracker's hottest path: they
// are built field by field, because nlohmann's initializer-list form copies
// every value once more (and a nested list whole); the JSON is the same.
json Holder::to_json() const {
    json j = json::object();
    j["peer"] = peer;
    j["address"] = address;
    j["port"] = port;
    j["size"] = size;
    j["id"] = id;
    j["piece_size"] = piece_size;
    j["published_at"] = published_at;
    if (pieces_held) {
        j["partial"] = true;
        j["pieces_held"] = *pieces_held;
    }
    if (reachable) j["reachable"] = *reachable;
    return j;
}

Result<Holder> Holder::from_json(const json& j) {
    FieldReader r(j);
    Holder h;
    h.peer = r.name("peer");
    h.address = r.text("address", kMaxHostBytes);
    h.port = static_cast<std::uint16_t>(r.number("port", 1, kMaxU16));
    h.size = r.number("size", 0, kMaxFileSize);
    h.id = r.content_id("id");
    h.piece_size = r.number("piece_size", kMinPieceSize, kMaxPieceSize);
    h.published_at = r.timestamp("published_at");
    h.pieces_held = read_pieces_held(r, j, h.size, h.piece_size);
    if (r.flag("partial", false) != h.pieces_held.has_value() && !r.error())
        r.fail("field 'partial' must be true exactly when 'pieces_held' is sent");
    if (j.contains("reachable")) h.reachable = r.flag("reachable", false);
    return finish(r, std::move(h));
}

json PeerInfo::to_json() const {
    return {{"name", name}, {"address", address}, {"port", port}, {"files", files},
            {"since", since}, {"reachable", reachable ? json(*reachable) : json(nullptr)},
            {"reach_reason", reach_reason}};
}

Result<PeerInfo> PeerInfo::from_json(const json& j) {
    FieldReader r(j);
    PeerInfo p;
    p.name = r.name("name");
    p.address = r.text("address", kMaxHostBytes);
    p.port = static_cast<std::uint16_t>(r.number("port", 0, kMaxU16));
    p.files = r.number("files", 0, kMaxFilesPerPeer);
    p.since = r.timestamp("since");
    if (j.contains("reachable") && !j["reachable"].is_null()) p.reachable = r.flag("reachable", false);
    p.reach_reason = r.optional_text("reach_reason", kMaxMessageText);
    return finish(r, std::move(p));
}

json IndexEntry::to_json() const {
    json j = {{"name", name}, {"size", size}, {"id", id}, {"holders", holders}, {"holder_count", holder_count}};
    if (partial_count > 0) j["partial_count"] = partial_count;
    return j;
}

Result<IndexEntry> IndexEntry::from_json(const json& j) {
    FieldReader r(j);
    IndexEntry e;
    e.name = r.name("name");
    e.size = r.number("size", 0, kMaxFileSize);
    e.id = r.content_id("id");
    e.holders = r.name_list("holders", kMaxListedHolders);
    e.holder_count = r.optional_number("holder_count", e.holders.size(), std::numeric_limits<std::uint64_t>::max());
    e.partial_count = r.optional_number("partial_count", 0, e.holder_count);
    return finish(r, std::move(e));
}

json Event::to_json() const {
    json j = {{"seq", seq}, {"time", time}, {"kind", kind}, {"peer", peer}};
    if (!file.empty()) j["file"] = file;
    if (!detail.empty()) j["detail"] = detail;
    return j;
}

Result<Event> Event::from_json(const json& j) {
    FieldReader r(j);
    Event e;
    e.seq = r.number("seq", 0, std::numeric_limits<std::uint64_t>::max());
    e.time = r.timestamp("time");
    e.kind = r.text("kind", 32);
    e.peer = r.text("peer", kMaxNameBytes);
    e.file = r.optional_text("file", kMaxNameBytes);
    e.detail = r.optional_text("detail", kMaxMessageText);
    return finish(r, std::move(e));
}

// ---- session opening ----

json Hello::to_json() const {
    json j = {{"version", version}, {"role", role}};
    if (role == "peer") {
        j["name"] = name;
        j["port"] = port;
        j["key"] = key;
        if (!advertise.empty()) j["advertise"] = advertise;
    }
    return j;
}

Result<Hello> Hello::from_json(const json& j) {
    FieldReader r(j);
    Hello h;
    h.version = static_cast<std::uint32_t>(r.number("version", 0, kMaxU32));
    h.role = r.text("role", 16);
    if (!r.error() && h.role == "peer") {
        h.name = r.name("name");
        h.port = static_cast<std::uint16_t>(r.number("port", 1, kMaxU16));
        h.key = r.peer_key("key");
        h.advertise = r.optional_text("advertise", kMaxHostBytes);
        if (!r.error() && !h.advertise.empty()) {
            if (auto why = check_host(h.advertise)) r.fail("field 'advertise': " + *why);
        }
    } else if (!r.error() && h.role != "admin") {
        r.fail("field 'role' must be 'peer' or 'admin'");
    }
    return finish(r, std::move(h));
}

std::optional<std::uint64_t> hello_version(const json& hello) {
    auto it = hello.find("version");
    if (it == hello.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
}

std::string version_mismatch_message(const json& hello, std::string_view us, std::string_view them) {
    const auto v = hello_version(hello);
    return std::string(us) + " speaks protocol version " + std::to_string(kProtocolVersion) + ", " +
           std::string(them) + (v ? " speaks version " + std::to_string(*v) : std::string(" sent no valid version"));
}

json Welcome::to_json() const {
    return {{"version", version}, {"address", address}, {"heartbeat_s", heartbeat_s},
            {"peer_timeout_s", peer_timeout_s}, {"reach_check", reach_check}, {"relay", relay}};
}

Result<Welcome> Welcome::from_json(const json& j) {
    FieldReader r(j);
    Welcome w;
    w.version = static_cast<std::uint32_t>(r.number("version", 0, kMaxU32));
    w.address = r.text("address", kMaxHostBytes);
    w.heartbeat_s = static_cast<std::uint32_t>(r.number("heartbeat_s", 0, 86400));
    w.peer_timeout_s = static_cast<std::uint32_t>(r.number("peer_timeout_s", 0, 86400));
    w.reach_check = r.flag("reach_check", false);
    w.relay = r.flag("relay", false);
    return finish(r, std::move(w));
}

// ---- peer → tracker ----

json Publish::to_json() const { return {{"file", file.to_json()}}; }

Result<Publish> Publish::from_json(const json& j) {
    FieldReader r(j);
    Publish p;
    const json& file = r.object("file");
    if (r.error()) return *r.error();
    auto f = FileInfo::from_json(file);
    if (!f) return Error{ErrorCode::bad_request, "file: " + f.error().message};
    p.file = std::move(*f);
    return p;
}

json Unpublish::to_json() const { return {{"name", name}}; }

Result<Unpublish> Unpublish::from_json(const json& j) {
    FieldReader r(j);
    Unpublish u;
    u.name = r.name("name");
    return finish(r, std::move(u));
}

json Lookup::to_json() const { return {{"name", name}}; }

Result<Lookup> Lookup::from_json(const json& j) {
    FieldReader r(j);
    Lookup l;
    l.name = r.name("name");
    return finish(r, std::move(l));
}

Result<Heartbeat> Heartbeat::from_json(const json& j) { return finish(FieldReader(j), Heartbeat{}); }

json Fetched::to_json() const {
    return {{"name", name}, {"content_id", content_id}, {"sources", sources}};
}

Result<Fetched> Fetched::from_json(const json& j) {
    FieldReader r(j);
    Fetched f;
    f.name = r.name("name");
    f.content_id = r.content_id("content_id");
    f.sources = r.name_list("sources", 1024);
    return finish(r, std::move(f));
}

json Search::to_json() const { return {{"text", text}}; }

Result<Search> Search::from_json(const json& j) {
    FieldReader r(j);
    Search s;
    s.text = r.optional_text("text", kMaxSearchText);
    return finish(r, std::move(s));
}

Result<Ping> Ping::from_json(const json& j) { return finish(FieldReader(j), Ping{}); }
Result<Pong> Pong::from_json(const json& j) { return finish(FieldReader(j), Pong{}); }
Result<ReachCheck> ReachCheck::from_json(const json& j) { return finish(FieldReader(j), ReachCheck{}); }

json Reachability::to_json() const {
    return {{"reachable", reachable}, {"reason", reason}, {"address", address}, {"port", port}};
}

Result<Reachability> Reachability::from_json(const json& j) {
    FieldReader r(j);
    Reachability m;
    if (!j.contains("reachable")) r.fail("field 'reachable' is missing");
    m.reachable = r.flag("reachable", false);
    m.reason = r.text("reason", kMaxMessageText);
    m.address = r.text("address", kMaxHostBytes);
    m.port = static_cast<std::uint16_t>(r.number("port", 0, kMaxU16));
    return finish(r, std::move(m));
}

namespace {

// A token field: exactly `digits` lowercase hex digits (proto/relay.hpp, proto/reverse.hpp).
std::string token_field(FieldReader& r, std::size_t digits) {
    auto token = r.text("token", digits);
    if (!r.error() && !is_lower_hex(token, digits)) {
        r.fail("field 'token' must be " + std::to_string(digits) + " lowercase hex digits");
    }
    return token;
}

// A host field (§5.4 of docs/protocol.md): a host name or an IP literal.
std::string host_field(FieldReader& r, const char* key) {
    auto host = r.text(key, kMaxHostBytes);
    if (!r.error()) {
        if (auto why = check_host(host)) r.fail("field '" + std::string(key) + "': " + *why);
    }
    return host;
}

}  // namespace

json RelayRequest::to_json() const { return {{"holder", holder}}; }

Result<RelayRequest> RelayRequest::from_json(const json& j) {
    FieldReader r(j);
    RelayRequest m;
    m.holder = r.name("holder");
    return finish(r, std::move(m));
}

json RelayTicket::to_json() const {
    return {{"relay_address", relay_address}, {"relay_port", relay_port}, {"token", token}, {"peer", peer}};
}

Result<RelayTicket> RelayTicket::from_json(const json& j) {
    FieldReader r(j);
    RelayTicket m;
    m.relay_address = host_field(r, "relay_address");
    m.relay_port = static_cast<std::uint16_t>(r.number("relay_port", 1, kMaxU16));
    m.token = token_field(r, kRelayTokenDigits);
    m.peer = r.name("peer");
    return finish(r, std::move(m));
}

json ReverseRequest::to_json() const { return {{"holder", holder}, {"token", token}}; }

Result<ReverseRequest> ReverseRequest::from_json(const json& j) {
    FieldReader r(j);
    ReverseRequest m;
    m.holder = r.name("holder");
    m.token = token_field(r, kReverseTokenDigits);
    return finish(r, std::move(m));
}

json ConnectBack::to_json() const {
    return {{"token", token}, {"address", address}, {"port", port}, {"peer", peer}};
}

Result<ConnectBack> ConnectBack::from_json(const json& j) {
    FieldReader r(j);
    ConnectBack m;
    m.token = token_field(r, kReverseTokenDigits);
    m.address = host_field(r, "address");
    m.port = static_cast<std::uint16_t>(r.number("port", 1, kMaxU16));
    m.peer = r.name("peer");
    return finish(r, std::move(m));
}

Result<RelayOffer> RelayOffer::from_json(const json& j) {
    auto ticket = RelayTicket::from_json(j);
    if (!ticket) return ticket.error();
    return RelayOffer{std::move(*ticket)};
}

// ---- admin → tracker ----

json Discover::to_json() const { return {{"host", host}}; }

Result<Discover> Discover::from_json(const json& j) {
    FieldReader r(j);
    Discover d;
    d.host = r.name("host");
    return finish(r, std::move(d));
}

json PingPeer::to_json() const { return {{"host", host}, {"timeout_ms", timeout_ms}}; }

Result<PingPeer> PingPeer::from_json(const json& j) {
    FieldReader r(j);
    PingPeer p;
    p.host = r.name("host");
    p.timeout_ms = static_cast<std::uint32_t>(r.optional_number("timeout_ms", 2000, kMaxPingTimeoutMs));
    return finish(r, std::move(p));
}

Result<ListPeers> ListPeers::from_json(const json& j) { return finish(FieldReader(j), ListPeers{}); }

json ListEvents::to_json() const { return {{"follow", follow}}; }

Result<ListEvents> ListEvents::from_json(const json& j) {
    FieldReader r(j);
    ListEvents l;
    l.follow = r.flag("follow", false);
    return finish(r, std::move(l));
}

Result<GetStats> GetStats::from_json(const json& j) { return finish(FieldReader(j), GetStats{}); }

// ---- replies ----

Result<Ok> Ok::from_json(const json& j) { return finish(FieldReader(j), Ok{}); }

json ErrorReply::to_json() const { return {{"code", to_string(code)}, {"message", message}}; }

Result<ErrorReply> ErrorReply::from_json(const json& j) {
    FieldReader r(j);
    ErrorReply e;
    const auto code = r.text("code", 32);
    e.message = r.text("message", kMaxMessageText);
    if (r.error()) return *r.error();
    // An unknown code from a newer peer still carries its message.
    e.code = error_code_from_string(code).value_or(ErrorCode::internal);
    return e;
}

json Holders::to_json() const {
    json j = json::object();
    j["name"] = name;
    j["holders"] = list_json(holders);
    return j;
}

Result<Holders> Holders::from_json(const json& j) {
    FieldReader r(j);
    Holders h;
    h.name = r.name("name");
    h.holders = r.list<Holder>("holders", kDefaultMaxPeers);
    return finish(r, std::move(h));
}

json Files::to_json() const {
    return {{"host", host}, {"files", list_json(files)}, {"truncated", truncated}};
}

Result<Files> Files::from_json(const json& j) {
    FieldReader r(j);
    Files f;
    f.host = r.name("host");
    f.files = r.list<FileInfo>("files", kMaxListedItems);
    f.truncated = r.flag("truncated", false);
    return finish(r, std::move(f));
}

json IndexReply::to_json() const {
    return {{"entries", list_json(entries)}, {"truncated", truncated}};
}

Result<IndexReply> IndexReply::from_json(const json& j) {
    FieldReader r(j);
    IndexReply reply;
    reply.entries = r.list<IndexEntry>("entries", kMaxListedItems);
    reply.truncated = r.flag("truncated", false);
    return finish(r, std::move(reply));
}

json Peers::to_json() const {
    return {{"peers", list_json(peers)}, {"truncated", truncated}};
}

Result<Peers> Peers::from_json(const json& j) {
    FieldReader r(j);
    Peers p;
    p.peers = r.list<PeerInfo>("peers", kMaxListedItems);
    p.truncated = r.flag("truncated", false);
    return finish(r, std::move(p));
}

json PingResult::to_json() const {
    json j = {{"host", host}, {"live", live}, {"rtt_ms", rtt_ms}};
    if (!reason.empty()) j["reason"] = reason;
    return j;
}

Result<PingResult> PingResult::from_json(const json& j) {
    FieldReader r(j);
    PingResult p;
    p.host = r.name("host");
    p.live = r.flag("live", false);
    p.rtt_ms = r.real("rtt_ms", 0, 1e9);
    p.reason = r.optional_text("reason", kMaxMessageText);
    return finish(r, std::move(p));
}

json Events::to_json() const {
    return {{"events", list_json(events)}, {"truncated", truncated}};
}

Result<Events> Events::from_json(const json& j) {
    FieldReader r(j);
    Events e;
    e.events = r.list<Event>("events", kEventHistory);
    e.truncated = r.flag("truncated", false);
    return finish(r, std::move(e));
}

json EventNotice::to_json() const { return {{"event", event.to_json()}}; }

Result<EventNotice> EventNotice::from_json(const json& j) {
    FieldReader r(j);
    const json& inner = r.object("event");
    if (r.error()) return *r.error();
    auto e = Event::from_json(inner);
    if (!e) return e.error();
    return EventNotice{std::move(*e)};
}

json RelayStats::to_json() const {
    return {{"circuits_open", circuits_open}, {"circuits_opened", circuits_opened},
            {"circuits_refused", circuits_refused}, {"bytes_relayed", bytes_relayed}};
}

Result<RelayStats> RelayStats::from_json(const json& j) {
    FieldReader r(j);
    RelayStats s;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    s.circuits_open = r.number("circuits_open", 0, kMax);
    s.circuits_opened = r.number("circuits_opened", 0, kMax);
    s.circuits_refused = r.number("circuits_refused", 0, kMax);
    s.bytes_relayed = r.number("bytes_relayed", 0, kMax);
    return finish(r, std::move(s));
}

json ReverseStats::to_json() const { return {{"forwarded", forwarded}, {"refused", refused}}; }

Result<ReverseStats> ReverseStats::from_json(const json& j) {
    FieldReader r(j);
    ReverseStats s;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    s.forwarded = r.number("forwarded", 0, kMax);
    s.refused = r.number("refused", 0, kMax);
    return finish(r, std::move(s));
}

json Stats::to_json() const {
    json j = {{"peers", peers}, {"files", files}, {"names", names}, {"connections", connections},
              {"uptime_s", uptime_s}, {"requests", requests}};
    if (relay) j["relay"] = relay->to_json();
    j["reverse"] = reverse.to_json();
    return j;
}

Result<Stats> Stats::from_json(const json& j) {
    FieldReader r(j);
    Stats s;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    s.peers = r.number("peers", 0, kMax);
    s.files = r.number("files", 0, kMax);
    s.names = r.number("names", 0, kMax);
    s.connections = r.number("connections", 0, kMax);
    s.uptime_s = r.number("uptime_s", 0, kMax);
    const json& requests = r.object("requests");
    if (r.error()) return *r.error();
    for (const auto& [type, count] : requests.items()) {
        if (type.size() > 32 || !count.is_number_unsigned()) {
            return Error{ErrorCode::bad_request, "field 'requests' must map types to counts"};
        }
        s.requests[type] = count.get<std::uint64_t>();
    }
    if (j.contains("relay")) {
        auto relay = RelayStats::from_json(j.at("relay"));
        if (!relay) return Error{ErrorCode::bad_request, "field 'relay': " + relay.error().message};
        s.relay = *relay;
    }
    if (j.contains("reverse")) {
        auto reverse = ReverseStats::from_json(j.at("reverse"));
        if (!reverse) return Error{ErrorCode::bad_request, "field 'reverse': " + reverse.error().message};
        s.reverse = *reverse;
    }
    return s;
}

// ---- envelopes ----

Result<Envelope> parse_envelope(std::string_view payload) {
    if (!nesting_within(payload, kMaxJsonDepth)) {
        return Error{ErrorCode::bad_request, "frame is nested too deeply"};
    }
    json body = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return Error{ErrorCode::bad_request, "frame is not valid JSON"};
    if (!body.is_object()) return Error{ErrorCode::bad_request, "frame is not a JSON object"};
    FieldReader r(body);
    Envelope env;
    env.type = r.text("type", 32);
    if (body.contains("id")) env.id = r.number("id", 0, std::numeric_limits<std::uint64_t>::max());
    if (r.error()) return *r.error();
    env.body = std::move(body);
    return env;
}

std::string make_error_frame(ErrorCode code, std::string_view message,
                             std::optional<std::uint64_t> id) {
    // Cut at a character boundary: a split character would go out as U+FFFD
    // (3 bytes) and push the message over the limit the receiver enforces.
    return make_frame(ErrorReply{code, std::string(truncate_utf8(message, kMaxMessageText))}, id);
}

// ---- the holders reply, written directly ----

namespace {

// Appends `s` as nlohmann's dump writes it (UTF-8 kept, error_handler replace):
// plain ASCII in runs, its escapes for '"', '\\' and control bytes. A string
// with a byte over 0x7f goes through nlohmann itself, which checks the UTF-8
// and repairs it exactly as every other frame does.
void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    const std::size_t start = out.size();
    out.push_back('"');
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            out.resize(start);
            out += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
            return;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\f': out += "\\f"; break;
            case '\r': out += "\\r"; break;
            default:
                out += "\\u00";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xf]);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

template <class N>
void append_number(std::string& out, N n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.append(digits, end);
}

}  // namespace

std::string make_holders_frame(const Holders& reply, std::optional<std::uint64_t> id) {
    constexpr std::size_t kHolderBytes = 224;   // a typical holder object, to size once
    std::string out(4, '\0');                   // the length, filled in at the end
    out.reserve(64 + reply.name.size() + reply.holders.size() * kHolderBytes);
    // Keys in the sorted order nlohmann writes them.
    out += "{\"holders\":[";
    for (std::size_t i = 0; i < reply.holders.size(); ++i) {
        const Holder& h = reply.holders[i];
        out += i == 0 ? "{\"address\":" : ",{\"address\":";
        append_json_string(out, h.address);
        out += ",\"id\":";
        append_json_string(out, h.id);
        if (h.pieces_held) out += ",\"partial\":true";
        out += ",\"peer\":";
        append_json_string(out, h.peer);
        out += ",\"piece_size\":";
        append_number(out, h.piece_size);
        if (h.pieces_held) {
            out += ",\"pieces_held\":";
            append_number(out, *h.pieces_held);
        }
        out += ",\"port\":";
        append_number(out, h.port);
        out += ",\"published_at\":";
        append_number(out, h.published_at);
        if (h.reachable) out += *h.reachable ? ",\"reachable\":true" : ",\"reachable\":false";
        out += ",\"size\":";
        append_number(out, h.size);
        out.push_back('}');
    }
    out += "],";
    if (id) {
        out += "\"id\":";
        append_number(out, *id);
        out.push_back(',');
    }
    out += "\"name\":";
    append_json_string(out, reply.name);
    out += ",\"type\":\"holders\"}";
    const auto n = static_cast<std::uint32_t>(out.size() - 4);
    for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * (3 - i))) & 0xff);
    return out;
}

}  // namespace peershare::proto
