// tests/unit/state_fixtures.hpp — what the state database's tests share: a
// temporary directory, valid publications and transfer records, raw SQL on
// the database file behind StateDb's back (to plant bad rows), file bytes.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "daemon/catalog.hpp"
#include "daemon/transfer_record.hpp"
#include "proto/content.hpp"

namespace peershare::test_state {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    TempDir() {
        char pattern[] = "/tmp/peershare-state-XXXXXX";
        if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// `count` pieces of made-up digests (seeded) with a consistent size and content id.
inline std::vector<proto::Digest> digests(std::size_t count, std::uint8_t seed) {
    std::vector<proto::Digest> out(count);
    for (std::size_t i = 0; i < count; ++i) out[i].fill(static_cast<std::uint8_t>(seed + i));
    return out;
}

inline peerd::Publication publication(const std::string& name, std::size_t pieces = 3, std::uint8_t seed = 1) {
    peerd::Publication p;
    p.name = name;
    p.path = "/srv/files/" + name;
    p.piece_size = 256 * 1024;
    p.size = pieces * p.piece_size - 5;
    p.mtime_ns = 1'700'000'000'123'456'789;
    p.pieces = digests(pieces, seed);
    p.id = proto::to_hex(proto::PieceList{p.size, p.piece_size, p.pieces}.content_id());
    p.published_at = 1'700'000'000;
    return p;
}

inline peerd::TransferRecord transfer(std::uint64_t id, std::size_t pieces = 10) {
    const auto p = publication("t" + std::to_string(id), pieces, static_cast<std::uint8_t>(id));
    peerd::TransferRecord r;
    r.id = id;
    r.name = p.name;
    r.content_id = p.id;
    r.size = p.size;
    r.piece_size = p.piece_size;
    r.pieces = p.pieces;
    r.have = proto::Bitfield(pieces);
    r.have.set(0);
    r.have.set(pieces - 1);
    r.destination = "/home/u/" + p.name;
    r.partial_path = "/home/u/." + p.name + ".peershare-part";
    r.sources = {{"alpha", "127.0.0.1", 7070}, {"beta", "host1.lan", 7071}};
    r.from = "alpha";
    r.id_prefix = p.id.substr(0, 4);
    r.force = true;
    r.state = peerd::TransferState::paused;
    r.error = "";
    r.created_at = 1'700'000'001;
    r.updated_at = 1'700'000'002;
    return r;
}

// Runs `sql` on the database file directly; throws with SQLite's message.
inline void raw_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    if (rc != SQLITE_OK) throw std::runtime_error(message);
}

inline std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace peershare::test_state
