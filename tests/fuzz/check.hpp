// tests/fuzz/check.hpp — what the fuzz targets share: FUZZ_CHECK, an
// invariant that stays on whatever NDEBUG says (it aborts with the condition,
// which libFuzzer reports as a crash and saves the input for), and the input
// as a string_view.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

namespace peershare::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace peershare::fuzz
