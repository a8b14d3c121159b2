// daemon/transfer_record.cpp — see transfer_record.hpp.
#include "daemon/transfer_record.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

#include "proto/content.hpp"
#include "proto/names.hpp"

namespace peershare::peerd {

namespace {
constexpr std::array<std::pair<TransferState, std::string_view>, 6> kNames{{
    {TransferState::queued, "queued"},
    {TransferState::running, "running"},
    {TransferState::waiting, "waiting"},
    {TransferState::paused, "paused"},
    {TransferState::failed, "failed"},
    {TransferState::done, "done"},
}};
}  // namespace

std::string_view to_string(TransferState s) {
    for (const auto& [state, name] : kNames)
        if (state == s) return name;
    return "unknown";
}

bool parse_transfer_state(std::string_view text, TransferState& out) {
    for (const auto& [state, name] : kNames)
        if (name == text) {
            out = state;
            return true;
        }
    return false;
}

namespace {

std::string sources_json(const std::vector<TransferSource>& sources) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : sources) out.push_back({{"peer", s.peer}, {"host", s.host}, {"port", s.port}});
    return out.dump();
}

std::optional<std::string> read_sources(const std::string& text, std::vector<TransferSource>& out) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_array()) return "its sources are not a JSON array";
    for (const auto& s : j) {
        if (!s.is_object() || !s.contains("peer") || !s["peer"].is_string() || !s.contains("host") ||
            !s["host"].is_string() || !s.contains("port") || !s["port"].is_number_unsigned() ||
            s["port"].get<std::uint64_t>() > 65535) {
            return "a source is not {peer, host, port}";
        }
        TransferSource src{s["peer"].get<std::string>(), s["host"].get<std::string>(),
                           static_cast<std::uint16_t>(s["port"].get<std::uint64_t>())};
        if (auto why = proto::check_name(src.peer)) return "source peer: " + *why;
        if (auto why = proto::check_host(src.host)) return "source host: " + *why;
        out.push_back(std::move(src));
    }
    return std::nullopt;
}

bool absolute_or_empty(const std::string& path) { return path.empty() || path.front() == '/'; }

}  // namespace

std::optional<std::string> check_stored_integer(std::int64_t v, const char* what) {
    if (v < 0 || v > kMaxStoredInteger) return std::string(what) + " is out of range";
    return std::nullopt;
}

TransferRow to_row(const TransferRecord& t) {
    return {static_cast<std::int64_t>(t.id), t.name, t.content_id, static_cast<std::int64_t>(t.size),
            static_cast<std::int64_t>(t.piece_size), proto::pieces_blob(t.pieces), t.have.bytes(),
            t.destination, t.partial_path, sources_json(t.sources), t.from, t.id_prefix,
            std::int64_t{t.force ? 1 : 0}, std::string(to_string(t.state)), t.error, t.created_at,
            t.updated_at, std::int64_t{t.share ? 1 : 0}};
}

std::optional<std::string> read_transfer(const TransferRow& row, TransferRecord& t) {
    t.id = static_cast<std::uint64_t>(row.id);
    t.name = row.name;
    t.content_id = row.content_id;
    if (row.id <= 0) return "its id is not positive";
    if (auto why = proto::check_name(t.name)) return "its name: " + *why;
    if (!t.content_id.empty()) {
        if (auto why = proto::check_content_id(t.content_id)) return "its content id: " + *why;
    }
    for (auto [v, what] : {std::pair{row.size, "its size"}, {row.piece_size, "its piece size"},
                           {row.created_at, "its creation time"}, {row.updated_at, "its update time"}}) {
        if (auto why = check_stored_integer(v, what)) return why;
    }
    t.size = static_cast<std::uint64_t>(row.size);
    t.piece_size = static_cast<std::uint64_t>(row.piece_size);
    t.created_at = row.created_at;
    t.updated_at = row.updated_at;
    if (!row.pieces.empty()) {
        if (t.content_id.empty()) return "it has a piece list but no content id";
        auto pieces = proto::pieces_from_blob(row.pieces, t.size, t.piece_size, t.content_id);
        if (!pieces) return pieces.error().message;
        t.pieces = std::move(*pieces);
    }
    auto bitfield = proto::Bitfield::from_bytes(row.have, t.pieces.size());
    if (!bitfield) return "its bitfield: " + bitfield.error().message;
    t.have = std::move(*bitfield);
    t.destination = row.destination;
    t.partial_path = row.partial_path;
    if (!absolute_or_empty(t.destination)) return "its destination is not absolute";
    if (!absolute_or_empty(t.partial_path)) return "its partial file's path is not absolute";
    if (auto why = read_sources(row.sources, t.sources)) return why;
    t.from = row.from;
    t.id_prefix = row.id_prefix;
    t.force = row.force != 0;
    t.share = row.share != 0;
    if (!parse_transfer_state(row.state, t.state)) return "its state '" + row.state + "' is unknown";
    t.error = row.error;
    return std::nullopt;
}

}  // namespace peershare::peerd
