// proto/names.cpp — names are 1–255 bytes of UTF-8, no '/', no NUL, no control
// characters, not "." or "..": safe as a file name on every host.
#include "proto/names.hpp"

#include "proto/limits.hpp"

namespace peershare::proto {
namespace {

bool is_lower_hex(std::string_view text) {
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

// Length of the UTF-8 sequence starting with `lead`, 0 if it cannot start one.
int sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xc2 && lead <= 0xdf) return 2;
    if (lead >= 0xe0 && lead <= 0xef) return 3;
    if (lead >= 0xf0 && lead <= 0xf4) return 4;
    return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const int len = sequence_length(lead);
        if (len == 0 || i + len > text.size()) return false;
        std::uint32_t cp = len == 1 ? lead : lead & (0x7f >> len);
        for (int k = 1; k < len; ++k) {
            const auto c = static_cast<unsigned char>(text[i + k]);
            if ((c & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3f);
        }
        const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) {
    std::size_t cut = std::min(text.size(), max_bytes);
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return text.substr(0, cut);
}

std::optional<std::string> check_name(std::string_view name) {
    if (name.empty()) return "a name cannot be empty";
    if (name.size() > kMaxNameBytes) {
        return "a name is at most " + std::to_string(kMaxNameBytes) + " bytes";
    }
    if (name == "." || name == "..") return "a name cannot be '.' or '..'";
    if (!is_valid_utf8(name)) return "a name must be valid UTF-8";
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto u = static_cast<unsigned char>(name[i]);
        if (u == '/') return "a name cannot contain '/'";
        if (u < 0x20 || u == 0x7f) return "a name cannot contain control characters";
        // C1 controls U+0080-U+009F are C2 80-C2 9F (the UTF-8 is valid by now).
        if (u == 0xc2 && static_cast<unsigned char>(name[i + 1]) < 0xa0) {
            return "a name cannot contain control characters";
        }
    }
    return std::nullopt;
}

std::optional<std::string> check_content_id(std::string_view id) {
    if (id.size() != kContentIdHexLen || !is_lower_hex(id)) {
        return "a content id is 64 lowercase hex digits";
    }
    return std::nullopt;
}

std::optional<std::string> check_peer_key(std::string_view key) {
    if (key.size() != kPeerKeyHexLen || !is_lower_hex(key)) {
        return "a peer key is 64 lowercase hex digits";
    }
    return std::nullopt;
}

std::optional<std::string> check_host(std::string_view host) {
    if (host.empty() || host.size() > kMaxHostBytes) return "a host is 1-253 characters";
    for (char c : host) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '-' || c == ':';
        if (!ok) return "a host has only letters, digits, '.', '-' and ':'";
    }
    return std::nullopt;
}

}  // namespace peershare::proto
