// proto/fields.hpp — reads the fields of a JSON object with validation. The
// first failure is remembered and later reads return neutral values, so a
// message parser reads straight through and checks error() once at the end
// (finish). list_json is the other direction: a list of messages as an array.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/errors.hpp"

namespace peershare::proto {

using nlohmann::json;

class FieldReader {
public:
    explicit FieldReader(const json& object);

    // A file or peer name (docs/design.md, "Integrity and names").
    std::string name(const char* key);
    std::string content_id(const char* key);
    std::string peer_key(const char* key);
    std::string text(const char* key, std::size_t max_bytes);   // any UTF-8, bounded
    std::string optional_text(const char* key, std::size_t max_bytes);
    std::uint64_t number(const char* key, std::uint64_t min, std::uint64_t max);
    std::uint64_t optional_number(const char* key, std::uint64_t fallback, std::uint64_t max);
    std::int64_t timestamp(const char* key);  // seconds since the epoch, may be absent
    double real(const char* key, double min, double max);
    bool flag(const char* key, bool fallback);
    const json& object(const char* key);

    template <class T>
    std::vector<T> list(const char* key, std::size_t max_items) {
        std::vector<T> out;
        const json* items = array(key, max_items);
        if (!items) return out;
        out.reserve(items->size());
        for (const auto& item : *items) {
            auto parsed = T::from_json(item);
            if (!parsed) {
                fail(std::string(key) + ": " + parsed.error().message);
                return {};
            }
            out.push_back(std::move(*parsed));
        }
        return out;
    }

    std::vector<std::string> name_list(const char* key, std::size_t max_items);

    const std::optional<Error>& error() const { return error_; }
    void fail(std::string message);

private:
    const json* field(const char* key, bool required);
    const json* array(const char* key, std::size_t max_items);

    const json& object_;
    std::optional<Error> error_;
};

// The end of a from_json: the value read, or the reader's first failure.
template <class T>
Result<T> finish(const FieldReader& r, T value) {
    if (r.error()) return *r.error();
    return value;
}

// A JSON array of each item's to_json().
template <class T>
json list_json(const std::vector<T>& items) {
    json list = json::array();
    list.get_ref<json::array_t&>().reserve(items.size());
    for (const auto& item : items) list.push_back(item.to_json());
    return list;
}

}  // namespace peershare::proto
