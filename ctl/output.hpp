// ctl/output.hpp — what both CLIs share at their edge: exit codes
// (docs/design.md, "Command line and configuration"), one-line errors, tables
// for people, JSON for scripts, human sizes and times, and the views both of
// them print (the index).
#pragma once

#include <cstdint>
#include <ctime>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"

namespace peershare::ctl {

enum Exit : int {
    kDone = 0,          // done
    kFailed = 1,        // not found, offline, refused, verification failed
    kUsage = 2,         // bad command line
    kUnreachable = 3,   // the daemon could not be reached
};

// Thrown from a subcommand to end the program with a message on stderr.
struct Failure {
    Exit code;
    std::string message;
};

class Table {
public:
    explicit Table(std::vector<std::string> headings) : rows_{std::move(headings)} {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    std::string render() const;   // aligned columns, two spaces apart
    bool empty() const { return rows_.size() == 1; }

private:
    std::vector<std::vector<std::string>> rows_;
};

// `text` (a path, an error, anything from a file system, a peer or the
// tracker) as it may reach a terminal on one line: C0 controls (newline, ESC,
// BEL...) and DEL as \xNN, C1 controls (U+0080 to U+009F) as \u00NN, and
// bytes that are not UTF-8 as \xNN. Whatever the input, the output holds no
// control character and cannot drive the terminal (retitle it, move the
// cursor) or split a table row. Table::render applies it to every cell.
std::string printable(std::string_view text);

std::string human_size(std::uint64_t bytes);   // "1.5 MiB"
std::string local_time(std::int64_t epoch_seconds);   // "2026-11-26 16:41:02"
std::string short_id(std::string_view id);   // first 12 hex digits
std::string duration_text(std::uint64_t seconds);   // "4m05s", "2h07m"

// One JSON document on stdout (--json).
void print_json(const nlohmann::json& document);

// An index reply (peerctl search, trackerctl files): with `json` the documented
// {"files": [...], "truncated": ...}; else a table of name, size, id and
// holders, or `when_empty` (a whole line) if there is nothing.
void print_index(const proto::IndexReply& reply, bool json, std::string_view when_empty);
// What a holder of `f` has: "complete", or "partial 40% (12/30 pieces)".
std::string holds(const proto::FileInfo& f);

}  // namespace peershare::ctl
