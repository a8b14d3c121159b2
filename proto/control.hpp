// proto/control.hpp — the control protocol between peerctl and peerd, on
// peerd's Unix socket, in the same framing as every session (hello with role
// "admin" first). Documented in docs/protocol.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/messages.hpp"

namespace peershare::proto {

inline constexpr std::size_t kMaxPathBytes = 4096;

struct PublishFile {             // → Published
    static constexpr std::string_view kType = "publish_file";
    std::string path;            // absolute, as peerctl resolved it
    std::string name;
    json to_json() const;
    static Result<PublishFile> from_json(const json& j);
};

struct Published {
    static constexpr std::string_view kType = "published";
    FileInfo file;
    std::string path;
    json to_json() const;
    static Result<Published> from_json(const json& j);
};

struct UnpublishFile {           // → Ok
    static constexpr std::string_view kType = "unpublish_file";
    std::string name;
    json to_json() const;
    static Result<UnpublishFile> from_json(const json& j);
};

struct ListFiles {               // → Publications
    static constexpr std::string_view kType = "list_files";
    json to_json() const { return json::object(); }
    static Result<ListFiles> from_json(const json& j);
};

struct PublicationInfo {
    std::string name;
    std::uint64_t size = 0;
    std::string id;
    std::string path;
    std::int64_t published_at = 0;
    std::string state;           // "ok", "changed" (not served until published again)
    std::string origin = "published";   // "published" (publish_file) or "fetched" (shared after a fetch)
    json to_json() const;
    static Result<PublicationInfo> from_json(const json& j);
};

struct Publications {
    static constexpr std::string_view kType = "publications";
    std::vector<PublicationInfo> files;
    bool truncated = false;      // rows left off so the reply fits in one frame
    json to_json() const;
    static Result<Publications> from_json(const json& j);
};

struct GetStatus {               // → Status
    static constexpr std::string_view kType = "get_status";
    json to_json() const { return json::object(); }
    static Result<GetStatus> from_json(const json& j);
};

struct Transfer {
    std::string name;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    json to_json() const;
    static Result<Transfer> from_json(const json& j);
};

struct Status {
    static constexpr std::string_view kType = "status";
    std::string name;
    std::string tracker;         // HOST:PORT as configured
    bool connected = false;
    std::string tracker_error;   // why not connected (refused name, unreachable)
    std::string address;         // our address as the tracker sees it (or --advertise)
    std::uint16_t port = 0;      // upload port
    // Whether other peers can reach our upload port, as the tracker last
    // found (docs/protocol.md §7.10); nothing (null) while unknown.
    std::optional<bool> reachable;
    std::string reach_reason;
    std::uint64_t published = 0;
    std::uint64_t uploads = 0;   // active
    std::uint64_t uploaded = 0;  // file bytes served to other peers since peerd started
    std::vector<Transfer> transfers;
    std::uint64_t fetch_memory_used = 0;   // bytes of piece buffers held by fetches now
    std::uint64_t fetch_memory_limit = 0;  // bytes: --fetch-memory
    json to_json() const;
    static Result<Status> from_json(const json& j);
};

// → Choices | error, or TransferAccepted then (unless detach) Progress* and
// FetchedFile | error. A following client that goes away pauses the transfer.
struct FetchFile {
    static constexpr std::string_view kType = "fetch";
    std::string name;
    std::string output;          // absolute destination path
    std::string from;            // only this holder, if set
    std::string id_prefix;       // only contents whose id starts so, if set
    bool force = false;
    bool detach = false;         // answer TransferAccepted and stop; the transfer goes on in peerd
    // Publish the file under `name` once it is complete (docs/protocol.md
    // §10.7); absent = peerd's --share-fetched setting.
    std::optional<bool> share;
    json to_json() const;
    static Result<FetchFile> from_json(const json& j);
};

struct Choices {                 // holders of the name offer different contents
    static constexpr std::string_view kType = "choices";
    std::string name;
    std::vector<Holder> holders;
    json to_json() const;
    static Result<Choices> from_json(const json& j);
};

struct SourceStatus {
    std::string peer;
    std::uint64_t bytes = 0;
    double rate = 0;
    bool dropped = false;
    bool stalled = false;        // sent nothing for 5 s with requests outstanding
    std::string why;
    // How its connections are made (issue 11): "direct" (we dial it),
    // "reverse" (it connects back to our upload port), "relay" (both dial
    // the tracker's relay). Absent = "direct" when parsing.
    std::string via = "direct";
    json to_json() const;
    static Result<SourceStatus> from_json(const json& j);
};

struct Progress {
    static constexpr std::string_view kType = "progress";
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    double rate = 0;             // bytes/s
    std::uint64_t stalled_ms = 0;
    std::vector<SourceStatus> sources;
    json to_json() const;
    static Result<Progress> from_json(const json& j);
};

struct FetchedFile {
    static constexpr std::string_view kType = "fetched_file";
    std::string name;
    std::string path;
    std::uint64_t size = 0;
    std::string id;              // "content_id" on the wire: "id" is the request's
    double seconds = 0;
    std::vector<std::string> sources;
    json to_json() const;
    static Result<FetchedFile> from_json(const json& j);
};

// ---- rate limits (docs/protocol.md §10.9) ------------------------------------
// Rates are bytes per second, 0 = unlimited, at most kMaxRate (proto/limits.hpp).

struct GetLimits {               // → Limits
    static constexpr std::string_view kType = "get_limits";
    json to_json() const { return json::object(); }
    static Result<GetLimits> from_json(const json& j);
};

struct Limits {
    static constexpr std::string_view kType = "limits";
    std::uint64_t upload_rate = 0;     // all uploads together
    std::uint64_t download_rate = 0;   // all transfers together
    json to_json() const;
    static Result<Limits> from_json(const json& j);
};

struct SetLimits {               // → Limits (as they are after the change)
    static constexpr std::string_view kType = "set_limits";
    std::optional<std::uint64_t> upload_rate;     // unchanged if absent
    std::optional<std::uint64_t> download_rate;   // at least one of the two is present
    json to_json() const;
    static Result<SetLimits> from_json(const json& j);
};

}  // namespace peershare::proto
