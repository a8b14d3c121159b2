// ctl/output.cpp — rendering for people.
#include "ctl/output.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "proto/content.hpp"

namespace peershare::ctl {
namespace {

// Display width: count UTF-8 lead bytes, so names in other scripts line up.
std::size_t width(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    }));
}

}  // namespace

std::string Table::render() const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
    }
    std::string out;
    for (const auto& row : rows_) {
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
        return print_json({{"files", proto::list_json(reply.entries)}, {"truncated", reply.truncated}});
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
