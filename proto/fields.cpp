// proto/fields.cpp — validated field access.
#include "proto/fields.hpp"

#include "proto/limits.hpp"
#include "proto/names.hpp"

namespace peershare::proto {
namespace {
const json kEmptyObject = json::object();
}

FieldReader::FieldReader(const json& object) : object_(object) {
    if (!object_.is_object()) fail("expected a JSON object");
}

void FieldReader::fail(std::string message) {
    if (!error_) error_ = Error{ErrorCode::bad_request, std::move(message)};
}

const json* FieldReader::field(const char* key, bool required) {
    if (error_) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end()) {
        if (required) fail(std::string("missing field '") + key + "'");
        return nullptr;
    }
    return &*it;
}

std::string FieldReader::text(const char* key, std::size_t max_bytes) {
    const json* v = field(key, true);
    if (!v) return {};
    if (!v->is_string()) {
        fail(std::string("field '") + key + "' must be a string");
        return {};
    }
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
        fail(std::string("field '") + key + "' is over " + std::to_string(max_bytes) + " bytes");
        return {};
    }
    if (!is_valid_utf8(s)) {
        fail(std::string("field '") + key + "' is not valid UTF-8");
        return {};
    }
    return s;
}

std::string FieldReader::optional_text(const char* key, std::size_t max_bytes) {
    if (error_ || !object_.contains(key)) return {};
    return text(key, max_bytes);
}

std::string FieldReader::name(const char* key) {
    auto s = text(key, kMaxNameBytes + 1);
    if (error_) return {};
    if (auto why = check_name(s)) fail(std::string("field '") + key + "': " + *why);
    return s;
}

std::string FieldReader::content_id(const char* key) {
    auto s = text(key, kContentIdHexLen + 1);
    if (error_) return {};
    if (auto why = check_content_id(s)) fail(std::string("field '") + key + "': " + *why);
    return s;
}

std::string FieldReader::peer_key(const char* key) {
    auto s = text(key, kPeerKeyHexLen + 1);
    if (error_) return {};
    if (auto why = check_peer_key(s)) fail(std::string("field '") + key + "': " + *why);
    return s;
}

std::uint64_t FieldReader::number(const char* key, std::uint64_t min, std::uint64_t max) {
    const json* v = field(key, true);
    if (!v) return min;
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<std::int64_t>() >= 0)) {
        fail(std::string("field '") + key + "' must be a non-negative integer");
        return min;
    }
    const auto n = v->get<std::uint64_t>();
    if (n < min || n > max) {
        fail(std::string("field '") + key + "' must be between " + std::to_string(min) +
             " and " + std::to_string(max));
        return min;
    }
    return n;
}

std::uint64_t FieldReader::optional_number(const char* key, std::uint64_t fallback,
                                           std::uint64_t max) {
    if (error_ || !object_.contains(key)) return fallback;
    return number(key, 0, max);
}

std::int64_t FieldReader::timestamp(const char* key) {
    if (error_ || !object_.contains(key)) return 0;
    return static_cast<std::int64_t>(number(key, 0, std::uint64_t{1} << 40));
}

double FieldReader::real(const char* key, double min, double max) {
    const json* v = field(key, true);
    if (!v) return min;
    if (!v->is_number()) {
        fail(std::string("field '") + key + "' must be a number");
        return min;
    }
    const double d = v->get<double>();
    if (!(d >= min && d <= max)) {
        fail(std::string("field '") + key + "' is out of range");
        return min;
    }
    return d;
}

bool FieldReader::flag(const char* key, bool fallback) {
    const json* v = field(key, false);
    if (!v) return fallback;
    if (!v->is_boolean()) {
        fail(std::string("field '") + key + "' must be true or false");
        return fallback;
    }
    return v->get<bool>();
}

const json& FieldReader::object(const char* key) {
    const json* v = field(key, true);
    if (!v) return kEmptyObject;
    if (!v->is_object()) {
        fail(std::string("field '") + key + "' must be an object");
        return kEmptyObject;
    }
    return *v;
}

const json* FieldReader::array(const char* key, std::size_t max_items) {
    const json* v = field(key, true);
    if (!v) return nullptr;
    if (!v->is_array()) {
        fail(std::string("field '") + key + "' must be an array");
        return nullptr;
    }
    if (v->size() > max_items) {
        fail(std::string("field '") + key + "' has over " + std::to_string(max_items) + " items");
        return nullptr;
    }
    return v;
}

std::vector<std::string> FieldReader::name_list(const char* key, std::size_t max_items) {
    std::vector<std::string> out;
    const json* items = array(key, max_items);
    if (!items) return out;
    for (const auto& item : *items) {
        if (!item.is_string() || check_name(item.get_ref<const std::string&>())) {
            fail(std::string("field '") + key + "' must hold valid names");
            return {};
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

}  // namespace peershare::proto
