// proto/names.hpp — validation of every identifier that enters from outside:
// file and peer names (docs/design.md, "Integrity and names"), content ids,
// peer keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace peershare::proto {

// Each returns nullopt when the value is acceptable, else why it is not.
std::optional<std::string> check_name(std::string_view name);
std::optional<std::string> check_content_id(std::string_view id);
std::optional<std::string> check_peer_key(std::string_view key);
// A host name or IP literal a peer advertises: letters, digits, '.', '-', ':'.
std::optional<std::string> check_host(std::string_view host);
bool is_valid_utf8(std::string_view text);
// The longest prefix of `text` of at most `max_bytes` that ends on a character boundary.
std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes);

}  // namespace peershare::proto
