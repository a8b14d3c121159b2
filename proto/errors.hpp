// proto/errors.hpp — the fixed set of error codes that travel in `error` frames,
// and the Result<T> every fallible protocol function returns (no exceptions
// cross the loop's C callbacks).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace peershare::proto {

enum class ErrorCode {
    bad_request,       // malformed or invalid frame; the connection closes
    version_mismatch,  // hello with another protocol version; the connection closes
    not_found,         // no such peer, file or name
    name_taken,        // a live peer already holds this name with another key
    limit,             // too many peers, files, or a value over a limit
    busy,              // try again later
    timeout,           // the remote side did not answer in time
    unavailable,       // the remote side is not connected
    internal,          // a bug or an I/O failure on our side
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view text);

struct Error {
    ErrorCode code;
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

}  // namespace peershare::proto
