// proto/control.cpp — to_json and validating from_json of the control messages.
#include "proto/control.hpp"

#include <limits>

#include "proto/limits.hpp"

namespace peershare::proto {
namespace {

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// An absolute path of bounded length: the daemon never resolves a relative one.
std::string absolute_path(FieldReader& r, const char* key) {
    auto path = r.text(key, kMaxPathBytes);
    if (!r.error() && (path.empty() || path.front() != '/')) r.fail(std::string(key) + " must be an absolute path");
    if (!r.error() && path.find('\0') != std::string::npos) r.fail(std::string(key) + " contains NUL");
    return path;
}

}  // namespace

json PublishFile::to_json() const { return {{"path", path}, {"name", name}}; }
Result<PublishFile> PublishFile::from_json(const json& j) {
    FieldReader r(j);
    PublishFile m;
    m.path = absolute_path(r, "path");
    m.name = r.name("name");
    return finish(r, std::move(m));
}

json Published::to_json() const { return {{"file", file.to_json()}, {"path", path}}; }
Result<Published> Published::from_json(const json& j) {
    FieldReader r(j);
    const json& file = r.object("file");
    if (r.error()) return *r.error();
    auto f = FileInfo::from_json(file);
    if (!f) return f.error();
    Published m{std::move(*f), r.text("path", kMaxPathBytes)};
    return finish(r, std::move(m));
}

json UnpublishFile::to_json() const { return {{"name", name}}; }
Result<UnpublishFile> UnpublishFile::from_json(const json& j) {
    FieldReader r(j);
    UnpublishFile m{r.name("name")};
    return finish(r, std::move(m));
}

Result<ListFiles> ListFiles::from_json(const json& j) { return finish(FieldReader(j), ListFiles{}); }

json PublicationInfo::to_json() const {
    return {{"name", name}, {"size", size}, {"id", id}, {"path", path}, {"published_at", published_at},
            {"state", state}, {"origin", origin}};
}
Result<PublicationInfo> PublicationInfo::from_json(const json& j) {
    FieldReader r(j);
    PublicationInfo m;
    m.name = r.name("name");
    m.size = r.number("size", 0, kMaxFileSize);
    m.id = r.content_id("id");
    m.path = r.text("path", kMaxPathBytes);
    m.published_at = r.timestamp("published_at");
    m.state = r.text("state", 32);
    m.origin = r.optional_text("origin", 32);
    if (m.origin.empty()) m.origin = "published";
    if (!r.error() && m.origin != "published" && m.origin != "fetched")
        r.fail("field 'origin' must be \"published\" or \"fetched\"");
    return finish(r, std::move(m));
}

json Publications::to_json() const {
    return {{"files", list_json(files)}, {"truncated", truncated}};
}
Result<Publications> Publications::from_json(const json& j) {
    FieldReader r(j);
    Publications m{r.list<PublicationInfo>("files", kMaxFilesPerPeer)};
    m.truncated = r.flag("truncated", false);
    return finish(r, std::move(m));
}

Result<GetStatus> GetStatus::from_json(const json& j) { return finish(FieldReader(j), GetStatus{}); }

json Transfer::to_json() const { return {{"name", name}, {"done", done}, {"total", total}}; }
Result<Transfer> Transfer::from_json(const json& j) {
    FieldReader r(j);
    Transfer m;
    m.name = r.name("name");
    m.done = r.number("done", 0, kMaxU64);
    m.total = r.number("total", 0, kMaxU64);
    return finish(r, std::move(m));
}

json Status::to_json() const {
    return {{"name", name}, {"tracker", tracker}, {"connected", connected}, {"tracker_error", tracker_error},
            {"address", address}, {"port", port}, {"published", published}, {"uploads", uploads},
            {"uploaded", uploaded},
            {"transfers", list_json(transfers)}, {"fetch_memory_used", fetch_memory_used},
            {"fetch_memory_limit", fetch_memory_limit}, {"reachable", reachable ? json(*reachable) : json(nullptr)},
            {"reach_reason", reach_reason}};
}
Result<Status> Status::from_json(const json& j) {
    FieldReader r(j);
    Status m;
    m.name = r.name("name");
    m.tracker = r.text("tracker", kMaxHostBytes + 8);
    m.connected = r.flag("connected", false);
    m.tracker_error = r.optional_text("tracker_error", kMaxMessageText);
    m.address = r.optional_text("address", kMaxHostBytes);
    m.port = static_cast<std::uint16_t>(r.number("port", 0, 65535));
    if (j.contains("reachable") && !j["reachable"].is_null()) m.reachable = r.flag("reachable", false);
    m.reach_reason = r.optional_text("reach_reason", kMaxMessageText);
    m.published = r.optional_number("published", 0, kMaxU64);
    m.uploads = r.optional_number("uploads", 0, kMaxU64);
    m.uploaded = r.optional_number("uploaded", 0, kMaxU64);
    m.transfers = r.list<Transfer>("transfers", kMaxListedItems);
    m.fetch_memory_used = r.optional_number("fetch_memory_used", 0, kMaxU64);
    m.fetch_memory_limit = r.optional_number("fetch_memory_limit", 0, kMaxU64);
    return finish(r, std::move(m));
}

json FetchFile::to_json() const {
    json j = {{"name", name}, {"output", output}, {"from", from}, {"id_prefix", id_prefix}, {"force", force},
              {"detach", detach}};
    if (share) j["share"] = *share;
    return j;
}
Result<FetchFile> FetchFile::from_json(const json& j) {
    FieldReader r(j);
    FetchFile m;
    m.name = r.name("name");
    m.output = absolute_path(r, "output");
    m.from = r.optional_text("from", kMaxNameBytes);
    m.id_prefix = r.optional_text("id_prefix", kContentIdHexLen);
    m.force = r.flag("force", false);
    m.detach = r.flag("detach", false);
    if (j.contains("share")) m.share = r.flag("share", true);
    return finish(r, std::move(m));
}

json Choices::to_json() const { return {{"name", name}, {"holders", list_json(holders)}}; }
Result<Choices> Choices::from_json(const json& j) {
    FieldReader r(j);
    Choices m;
    m.name = r.name("name");
    m.holders = r.list<Holder>("holders", kDefaultMaxPeers);
    return finish(r, std::move(m));
}

json SourceStatus::to_json() const {
    json j = {{"peer", peer}, {"bytes", bytes}, {"rate", rate}, {"dropped", dropped}, {"stalled", stalled},
              {"via", via}};
    if (!why.empty()) j["why"] = why;
    return j;
}
Result<SourceStatus> SourceStatus::from_json(const json& j) {
    FieldReader r(j);
    SourceStatus m;
    m.peer = r.name("peer");
    m.bytes = r.number("bytes", 0, kMaxU64);
    m.rate = r.real("rate", 0, 1e15);
    m.dropped = r.flag("dropped", false);
    m.stalled = r.flag("stalled", false);
    m.why = r.optional_text("why", kMaxMessageText);
    m.via = r.optional_text("via", 16);
    if (m.via.empty()) m.via = "direct";
    if (!r.error() && m.via != "direct" && m.via != "reverse" && m.via != "relay")
        r.fail("field 'via' must be direct, reverse or relay");
    return finish(r, std::move(m));
}

json Progress::to_json() const {
    return {{"done", done}, {"total", total}, {"rate", rate}, {"stalled_ms", stalled_ms},
            {"sources", list_json(sources)}};
}
Result<Progress> Progress::from_json(const json& j) {
    FieldReader r(j);
    Progress m;
    m.done = r.number("done", 0, kMaxU64);
    m.total = r.number("total", 0, kMaxU64);
    m.rate = r.real("rate", 0, 1e15);
    m.stalled_ms = r.number("stalled_ms", 0, kMaxU64);
    m.sources = r.list<SourceStatus>("sources", 1024);
    return finish(r, std::move(m));
}

json FetchedFile::to_json() const {
    return {{"name", name}, {"path", path}, {"size", size}, {"content_id", id}, {"seconds", seconds},
            {"sources", sources}};
}
Result<FetchedFile> FetchedFile::from_json(const json& j) {
    FieldReader r(j);
    FetchedFile m;
    m.name = r.name("name");
    m.path = r.text("path", kMaxPathBytes);
    m.size = r.number("size", 0, kMaxFileSize);
    m.id = r.content_id("content_id");
    m.seconds = r.real("seconds", 0, 1e9);
    m.sources = r.name_list("sources", 1024);
    return finish(r, std::move(m));
}

Result<GetLimits> GetLimits::from_json(const json& j) {
    return finish(FieldReader(j), GetLimits{});
}

json Limits::to_json() const {
    return {{"upload_rate", upload_rate}, {"download_rate", download_rate}};
}
Result<Limits> Limits::from_json(const json& j) {
    FieldReader r(j);
    Limits m;
    m.upload_rate = r.number("upload_rate", 0, kMaxRate);
    m.download_rate = r.number("download_rate", 0, kMaxRate);
    return finish(r, std::move(m));
}

json SetLimits::to_json() const {
    json j = json::object();
    if (upload_rate) j["upload_rate"] = *upload_rate;
    if (download_rate) j["download_rate"] = *download_rate;
    return j;
}
Result<SetLimits> SetLimits::from_json(const json& j) {
    FieldReader r(j);
    SetLimits m;
    const auto rate = [&](const char* key) -> std::optional<std::uint64_t> {
        if (!j.is_object() || !j.contains(key)) return std::nullopt;
        return r.number(key, 0, kMaxRate);
    };
    m.upload_rate = rate("upload_rate");
    m.download_rate = rate("download_rate");
    if (!m.upload_rate && !m.download_rate) {
        r.fail("set_limits needs upload_rate, download_rate or both");
    }
    return finish(r, std::move(m));
}

}  // namespace peershare::proto
