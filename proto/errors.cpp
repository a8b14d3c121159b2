// proto/errors.cpp — error codes as the words on the wire.
#include "proto/errors.hpp"

#include <array>

namespace peershare::proto {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 9> kNames{{
    {ErrorCode::bad_request, "bad_request"},
    {ErrorCode::version_mismatch, "version_mismatch"},
    {ErrorCode::not_found, "not_found"},
    {ErrorCode::name_taken, "name_taken"},
    {ErrorCode::limit, "limit"},
    {ErrorCode::busy, "busy"},
    {ErrorCode::timeout, "timeout"},
    {ErrorCode::unavailable, "unavailable"},
    {ErrorCode::internal, "internal"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) {
    for (const auto& [c, name] : kNames) {
        if (c == code) return name;
    }
    return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) {
    for (const auto& [c, name] : kNames) {
        if (name == text) return c;
    }
    return std::nullopt;
}

}  // namespace peershare::proto
