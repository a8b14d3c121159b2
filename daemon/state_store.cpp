// daemon/state_store.cpp — the peer key and the publications on disk.
#include "daemon/state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "proto/names.hpp"

namespace peershare::peerd {

using proto::Error;
using proto::ErrorCode;
using proto::json;

namespace {

constexpr const char* kKeyFile = "peer.key";
constexpr const char* kPublicationsFile = "publications.json";
constexpr int kStateVersion = 1;

Error io_error(const std::string& what) { return Error{ErrorCode::internal, what + ": " + std::strerror(errno)}; }

proto::Result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{ErrorCode::not_found, path + ": " + std::strerror(errno)};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string random_key() {
    std::random_device rd;   // the kernel's CSPRNG on Linux
    std::array<std::uint8_t, 32> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rd());
    return proto::to_hex(bytes);
}

// Creates every missing directory of `dir` with mode 0700.
bool make_dirs(const std::string& dir) {
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            const std::string part = dir.substr(0, i);
            if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
        }
    }
    return true;
}

}  // namespace

proto::Result<bool> write_file_atomically(const std::string& path, const std::string& contents, int mode) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return io_error("cannot write " + tmp);
    std::size_t written = 0;
    while (written < contents.size()) {
        const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            auto e = io_error("cannot write " + tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            return e;
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        auto e = io_error("cannot sync " + tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return e;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        auto e = io_error("cannot rename " + tmp);
        ::unlink(tmp.c_str());
        return e;
    }
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, std::max<std::size_t>(slash, 1));
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);   // make the rename itself durable
        ::close(dfd);
    }
    return true;
}

proto::Result<bool> StateStore::open() {
    if (!make_dirs(dir_)) return io_error("cannot create state directory " + dir_);
    return true;
}

proto::Result<std::string> StateStore::peer_key() {
    const std::string path = dir_ + "/" + kKeyFile;
    if (auto existing = read_file(path)) {
        std::string key = *existing;
        while (!key.empty() && (key.back() == '\n' || key.back() == ' ')) key.pop_back();
        if (!proto::check_peer_key(key)) return key;
        return Error{ErrorCode::internal, path + " is corrupt; remove it to make a new identity"};
    }
    const std::string key = random_key();
    auto ok = write_file_atomically(path, key + "\n", 0600);
    if (!ok) return ok.error();
    return key;
}

std::string StateStore::serialize(const Catalog& catalog) {
    json files = json::array();
    for (const auto& [name, p] : catalog.all()) {
        json pieces = json::array();
        for (const auto& d : p.pieces) pieces.push_back(proto::to_hex(d));
        files.push_back({{"name", p.name}, {"path", p.path}, {"size", p.size}, {"mtime_ns", p.mtime_ns},
                         {"id", p.id}, {"piece_size", p.piece_size}, {"published_at", p.published_at},
                         {"pieces", std::move(pieces)}});
    }
    return json{{"version", kStateVersion}, {"publications", std::move(files)}}.dump() + "\n";
}

proto::Result<bool> StateStore::write_publications(const std::string& contents) const {
    return write_file_atomically(dir_ + "/" + kPublicationsFile, contents, 0600);
}

proto::Result<std::vector<Publication>> StateStore::load_publications() const {
    const std::string path = dir_ + "/" + kPublicationsFile;
    auto text = read_file(path);
    if (!text) return std::vector<Publication>{};   // first start
    const json doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("publications") ||
        !doc["publications"].is_array()) {
        return Error{ErrorCode::internal, path + " is not valid state; move it away to start afresh"};
    }
    std::vector<Publication> out;
    for (const auto& item : doc["publications"]) {
        // Our own file, but still checked: a hand-edited entry must not crash the daemon.
        auto info = proto::FileInfo::from_json(item);
        proto::FieldReader r(item);
        Publication p;
        p.path = r.text("path", 4096);
        p.mtime_ns = static_cast<std::int64_t>(r.number("mtime_ns", 0, std::uint64_t{1} << 62));
        if (!info || r.error()) return Error{ErrorCode::internal, path + ": a publication is invalid"};
        auto pieces = proto::PieceList::from_json(item, info->id);
        if (!pieces) return Error{ErrorCode::internal, path + ": " + info->name + ": " + pieces.error().message};
        p.name = info->name;
        p.size = info->size;
        p.id = info->id;
        p.piece_size = info->piece_size;
        p.published_at = info->published_at;
        p.pieces = std::move(pieces->pieces);
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace peershare::peerd
