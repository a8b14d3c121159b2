// ctl/output.cpp — rendering for people.
#include "ctl/output.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "proto/documents.hpp"
#include "proto/names.hpp"
#include "proto/content.hpp"

namespace peershare::ctl {
namespace {

// Display width: count UTF-8 lead bytes, so names in other scripts line up.
std::size_t width(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    }));
}

// Bytes in a UTF-8 sequence that starts with `lead`; 0 if none starts so.
std::size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xc2 && lead <= 0xdf) return 2;
    if (lead >= 0xe0 && lead <= 0xef) return 3;
    if (lead >= 0xf0 && lead <= 0xf4) return 4;
    return 0;
}

}  // namespace

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    char escaped[16];
    for (std::size_t i = 0; i < text.size();) {
        const auto u = static_cast<unsigned char>(text[i]);
        const std::size_t n = sequence_length(u);
        const bool valid = n > 0 && i + n <= text.size() && proto::is_valid_utf8(text.substr(i, n));
        if (!valid || u < 0x20 || u == 0x7f) {
            std::snprintf(escaped, sizeof escaped, "\\x%02x", u);
            out += escaped;
            ++i;
            continue;
        }
        const auto next = n == 2 ? static_cast<unsigned char>(text[i + 1]) : 0;
        if (u == 0xc2 && next < 0xa0) {   // U+0080..U+009F
            std::snprintf(escaped, sizeof escaped, "\\u%04x", next);
            out += escaped;
        } else {
            out.append(text.substr(i, n));
        }
        i += n;
    }
    return out;
}

std::string Table::render() const {
    std::vector<std::vector<std::string>> shown;
    shown.reserve(rows_.size());
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
        auto& cells = shown.emplace_back();
        for (const auto& cell : row) cells.push_back(printable(cell));
        widths.resize(std::max(widths.size(), cells.size()));
        for (std::size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], width(cells[i]));
    }
    std::string out;
    for (const auto& row : shown) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - width(row[i]) + 2, ' ');
        }
        out += line + "\n";
    }
    return out;
}

std::string human_size(std::uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(kUnits)) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    if (unit == 0) {
        std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    } else {
        std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
    }
    return text;
}

std::string local_time(std::int64_t epoch_seconds) {
    const std::time_t t = static_cast<std::time_t>(epoch_seconds);
    std::tm tm{};
    localtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    return text;
}

std::string short_id(std::string_view id) { return std::string(id.substr(0, 12)); }

std::string duration_text(std::uint64_t s) {
    char text[32];
    if (s >= 3600) std::snprintf(text, sizeof text, "%lluh%02llum", static_cast<unsigned long long>(s / 3600), static_cast<unsigned long long>(s / 60 % 60));
    else std::snprintf(text, sizeof text, "%llum%02llus", static_cast<unsigned long long>(s / 60), static_cast<unsigned long long>(s % 60));
    return text;
}

void print_json(const nlohmann::json& document) { std::cout << document.dump(2) << "\n"; }

std::string holds(const proto::FileInfo& f) {
    if (!f.pieces_held) return "complete";
    const auto pieces = proto::piece_count(f.size, f.piece_size);
    return "partial " + std::to_string(*f.pieces_held * 100 / pieces) + "% (" + std::to_string(*f.pieces_held) +
           "/" + std::to_string(pieces) + " pieces)";
}

void print_index(const proto::IndexReply& reply, bool json, std::string_view when_empty) {
    if (json) {
        return print_json(proto::index_document(reply));
    }
    Table t({"NAME", "SIZE", "ID", "COMPLETE", "PARTIAL", "HOLDERS"});
    for (const auto& e : reply.entries) {
        std::string holders;
        for (const auto& h : e.holders) holders += (holders.empty() ? "" : ",") + h;
        t.add({e.name, human_size(e.size), short_id(e.id), std::to_string(e.holder_count - e.partial_count),
               std::to_string(e.partial_count), holders});
    }
    if (t.empty()) {
        std::cout << when_empty;
    } else {
        std::cout << t.render();
    }
    if (reply.truncated) std::cout << "(more not shown: narrow with TEXT)\n";
}

}  // namespace peershare::ctl
