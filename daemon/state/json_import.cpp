// daemon/state/json_import.cpp — see json_import.hpp.
#include "daemon/state/json_import.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "daemon/state/move_aside.hpp"
#include "proto/content.hpp"
#include "proto/fields.hpp"
#include "proto/messages.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;
using proto::json;

namespace {

constexpr const char* kKeyFile = "peer.key";
constexpr const char* kPublicationsFile = "publications.json";

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// One entry of publications.json, checked as the JSON store checked it.
proto::Result<Publication> parse_publication(const json& item) {
    auto info = proto::FileInfo::from_json(item);
    if (!info) return info.error();
    proto::FieldReader r(item);
    Publication p;
    p.path = r.text("path", 4096);
    p.mtime_ns = static_cast<std::int64_t>(r.number("mtime_ns", 0, std::uint64_t{1} << 62));
    if (r.error()) return Error{ErrorCode::bad_request, "path or mtime_ns missing or invalid"};
    if (p.path.empty() || p.path.front() != '/') return Error{ErrorCode::bad_request, "path is not absolute"};
    auto pieces = proto::PieceList::from_json(item, info->id);
    if (!pieces) return pieces.error();
    p.name = info->name;
    p.size = info->size;
    p.id = info->id;
    p.piece_size = info->piece_size;
    p.published_at = info->published_at;
    p.pieces = std::move(pieces->pieces);
    return p;
}

}  // namespace

proto::Result<std::vector<std::string>> import_json_state(const std::string& dir, StateDb& db) {
    std::vector<std::string> lines;
    const std::string key_path = dir + "/" + kKeyFile;
    const std::string pubs_path = dir + "/" + kPublicationsFile;
    const auto key_text = read_file(key_path);
    const auto pubs_text = read_file(pubs_path);
    if (!key_text && !pubs_text) return lines;

    if (key_text) {
        std::string key = *key_text;
        while (!key.empty() && (key.back() == '\n' || key.back() == ' ')) key.pop_back();
        if (auto why = proto::check_peer_key(key)) {
            lines.push_back(key_path + ": not a peer key (" + *why + "); not imported");
        } else {
            auto kept = db.adopt_peer_key(key);
            if (!kept) return kept.error();
            if (*kept != key) lines.push_back(key_path + ": the database already has another peer key; kept that one");
        }
        auto moved = move_aside(key_path, ".imported");
        if (!moved) return moved.error();
        lines.push_back("imported the peer key from " + key_path + " (kept as " + *moved + ")");
    }
    if (pubs_text) {
        const json doc = json::parse(*pubs_text, nullptr, false);
        if (doc.is_discarded() || !doc.is_object() || !doc.contains("publications") ||
            !doc["publications"].is_array()) {
            auto moved = move_aside(pubs_path, ".broken-" + std::to_string(std::time(nullptr)));
            if (!moved) return moved.error();
            lines.push_back(pubs_path + " is not valid state: imported nothing, moved it aside to " + *moved);
            return lines;
        }
        std::vector<StateWrite> writes;
        for (const auto& item : doc["publications"]) {
            auto p = parse_publication(item);
            if (!p) {
                const auto name = item.is_object() && item.contains("name") && item["name"].is_string()
                                      ? item["name"].get<std::string>()
                                      : std::string("?");
                lines.push_back(pubs_path + ": publication '" + name + "' skipped: " + p.error().message);
                continue;
            }
            writes.push_back(PutPublication{std::move(*p)});
        }
        if (auto ok = db.apply(writes); !ok) return ok.error();
        auto moved = move_aside(pubs_path, ".imported");
        if (!moved) return moved.error();
        lines.push_back("imported " + std::to_string(writes.size()) + " publications from " + pubs_path +
                        " into " + db.path() + " (kept as " + *moved + ")");
    }
    return lines;
}

}  // namespace peershare::peerd
