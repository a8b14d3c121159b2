// common/rate.cpp — parsing and formatting of rates (see rate.hpp for the
// grammar). The number is read as exact decimal digits, never through a
// floating-point parse, so "0.1M" is exactly 100,000 and no locale applies.
#include "common/rate.hpp"

#include <cctype>
#include <cstdio>

#include "proto/limits.hpp"

namespace peershare::common {
namespace {

using Wide = unsigned __int128;
constexpr std::size_t kMaxDigits = 18;   // < 10^18 fits 64 bits, times 1024^3 fits 128

// What differs between a rate and a size.
struct Quantity {
    const char* what;       // "rate", "size"
    const char* examples;   // the grammar, by example
    bool per_second;        // takes "/s" and "bit"
    std::uint64_t max;
    const char* max_text;
};

constexpr Quantity kRate{"rate",
                         "a rate is a number with an optional unit, e.g. 500k, 20M, 1G (bytes/s, powers of 1000), "
                         "4Mi (powers of 1024), 20Mbit (bits/s); 0 = unlimited",
                         true, proto::kMaxRate, "over the largest rate, 1000G (1 TB/s)"};
constexpr Quantity kSize{"size",
                         "a size is a number of bytes with an optional unit, e.g. 64Mi, 1Gi (powers of 1024), "
                         "500M (powers of 1000)",
                         false, std::uint64_t{1} << 40, "over the largest size, 1024Gi (1 TiB)"};

proto::Error bad(const Quantity& q, std::string_view text, const std::string& why) {
    return {proto::ErrorCode::bad_request, "bad " + std::string(q.what) + " '" + std::string(text) + "': " + why};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool equals_lower(std::string_view text, std::string_view lower_word) {
    if (text.size() != lower_word.size()) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (lower(text[i]) != lower_word[i]) return false;
    }
    return true;
}

// The multiplier of a prefix at the front of `rest` (consumed), 1 if none.
std::uint64_t take_prefix(std::string_view& rest) {
    if (rest.empty()) return 1;
    int power = 0;
    switch (lower(rest.front())) {
        case 'k': power = 1; break;
        case 'm': power = 2; break;
        case 'g': power = 3; break;
        default: return 1;
    }
    rest.remove_prefix(1);
    std::uint64_t base = 1000;
    if (!rest.empty() && rest.front() == 'i') {
        base = 1024;
        rest.remove_prefix(1);
    }
    std::uint64_t scale = 1;
    for (int i = 0; i < power; ++i) scale *= base;
    return scale;
}

proto::Result<std::uint64_t> parse(const Quantity& q, std::string_view text) {
    if (text.empty()) return bad(q, text, std::string("empty; ") + q.examples);
    if (text.front() == '-') return bad(q, text, "cannot be negative");
    std::string_view rest = text;
    std::uint64_t mantissa = 0;
    std::size_t digits = 0, decimals = 0;
    bool point = false;
    for (; !rest.empty(); rest.remove_prefix(1)) {
        const char c = rest.front();
        if (c == '.' && !point) {
            point = true;
        } else if (is_digit(c)) {
            if (++digits > kMaxDigits) return bad(q, text, "more than 18 digits");
            mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
            if (point) ++decimals;
        } else {
            break;
        }
    }
    if (digits == 0) return bad(q, text, std::string("no number; ") + q.examples);

    if (q.per_second && rest.size() >= 2 && rest.substr(rest.size() - 2) == "/s") rest.remove_suffix(2);
    const std::uint64_t scale = take_prefix(rest);
    std::uint64_t bits_per_unit = 8;   // bytes
    if (q.per_second && equals_lower(rest, "bit")) {
        bits_per_unit = 1;
    } else if (q.per_second && rest == "b") {
        return bad(q, text, "'b' is ambiguous: write B for bytes/s or bit for bits/s (20MB, 20Mbit)");
    } else if (!rest.empty() && rest != "B") {
        return bad(q, text, "unknown unit '" + std::string(rest) + "'; " + q.examples);
    }

    Wide divisor = bits_per_unit == 1 ? 8 : 1;
    for (std::size_t i = 0; i < decimals; ++i) divisor *= 10;
    const Wide bytes = Wide{mantissa} * scale / divisor;
    if (bytes > q.max) return bad(q, text, q.max_text);
    if (bytes == 0 && mantissa != 0) return bad(q, text, q.per_second ? "less than 1 byte/s; 0 = unlimited" : "less than 1 byte");
    return static_cast<std::uint64_t>(bytes);
}

}  // namespace

proto::Result<std::uint64_t> parse_rate(std::string_view text) { return parse(kRate, text); }

proto::Result<std::uint64_t> parse_size(std::string_view text) { return parse(kSize, text); }


std::string format_rate(std::uint64_t bytes_per_s) {
    if (bytes_per_s == 0) return "unlimited";
    static constexpr const char* kUnits[] = {"B/s", "kB/s", "MB/s", "GB/s", "TB/s"};
    if (bytes_per_s < 1000) return std::to_string(bytes_per_s) + " B/s";
    double x = static_cast<double>(bytes_per_s);
    std::size_t unit = 0;
    // 999,999 B/s is "1 MB/s", not "1000 kB/s".
    while (x >= 999.5 && unit + 1 < std::size(kUnits)) {
        x /= 1000;
        ++unit;
    }
    char number[32];
    std::snprintf(number, sizeof number, x >= 99.95 ? "%.0f" : x >= 9.995 ? "%.1f" : "%.2f", x);
    std::string out = number;
    if (out.find('.') != std::string::npos) {
        while (out.back() == '0') out.pop_back();
        if (out.back() == '.') out.pop_back();
    }
    return out + " " + kUnits[unit];
}

}  // namespace peershare::common
