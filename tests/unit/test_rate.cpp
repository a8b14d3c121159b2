// tests/unit/test_rate.cpp — rates with units: what is accepted and how much
// it is, what is refused and that the error says why, and the display form.
#include <doctest/doctest.h>

#include <string>

#include "common/rate.hpp"

using peershare::common::format_rate;
using peershare::common::parse_rate;

namespace {

std::uint64_t rate_of(const char* text) {
    auto r = parse_rate(text);
    if (!r) FAIL_CHECK(text << ": " << r.error().message);
    return r ? *r : 0;
}

std::string error_of(const char* text) {
    auto r = parse_rate(text);
    if (r) FAIL_CHECK(text << " was accepted as " << *r);
    return r ? std::string() : r.error().message;
}

}  // namespace

TEST_CASE("rate: a plain number is bytes per second and 0 is unlimited") {
    CHECK(rate_of("0") == 0);
    CHECK(rate_of("1500") == 1'500);
    CHECK(rate_of("1") == 1);
    CHECK(rate_of("007") == 7);
    CHECK(rate_of("1000000000000") == 1'000'000'000'000);
}

TEST_CASE("rate: k, M and G are powers of 1000, in either case") {
    CHECK(rate_of("500k") == 500'000);
    CHECK(rate_of("500K") == 500'000);
    CHECK(rate_of("20M") == 20'000'000);
    CHECK(rate_of("20m") == 20'000'000);
    CHECK(rate_of("1G") == 1'000'000'000);
    CHECK(rate_of("1g") == 1'000'000'000);
    CHECK(rate_of("1.5M") == 1'500'000);
    CHECK(rate_of("0.1M") == 100'000);   // exact: no floating point
    CHECK(rate_of(".5k") == 500);
    CHECK(rate_of("20MB") == 20'000'000);
    CHECK(rate_of("20MB/s") == 20'000'000);
    CHECK(rate_of("20M/s") == 20'000'000);
    CHECK(rate_of("300B") == 300);
    CHECK(rate_of("1000G") == 1'000'000'000'000);
}

TEST_CASE("rate: Ki, Mi and Gi are powers of 1024") {
    CHECK(rate_of("4Ki") == 4'096);
    CHECK(rate_of("4Mi") == 4'194'304);
    CHECK(rate_of("4MiB") == 4'194'304);
    CHECK(rate_of("1GiB/s") == 1'073'741'824);
    CHECK(rate_of("1.5Ki") == 1'536);
}

TEST_CASE("rate: bit is bits per second, 8 to the byte") {
    CHECK(rate_of("20Mbit") == 2'500'000);
    CHECK(rate_of("20kbit") == 2'500);
    CHECK(rate_of("20Mbit/s") == 2'500'000);
    CHECK(rate_of("1Gbit") == 125'000'000);
    CHECK(rate_of("20MBit") == 2'500'000);
    CHECK(rate_of("8bit") == 1);
    CHECK(rate_of("12bit") == 1);   // fractions of a byte are dropped
    CHECK(rate_of("1Mibit") == 131'072);
}

TEST_CASE("rate: anything else is refused with one line saying why") {
    CHECK(error_of("").find("empty") != std::string::npos);
    CHECK(error_of("fast").find("no number") != std::string::npos);
    CHECK(error_of("-5M").find("negative") != std::string::npos);
    CHECK(error_of("20Mb").find("ambiguous") != std::string::npos);
    CHECK(error_of("20b").find("ambiguous") != std::string::npos);
    CHECK(error_of("20x").find("unknown unit 'x'") != std::string::npos);
    CHECK(error_of("20 M").find("unknown unit ' M'") != std::string::npos);
    CHECK(error_of("1e6").find("unknown unit") != std::string::npos);
    CHECK(error_of("1.2.3").find("unknown unit") != std::string::npos);
    CHECK(error_of("20T").find("unknown unit") != std::string::npos);
    CHECK(error_of("20Mbits").find("unknown unit") != std::string::npos);
    CHECK(error_of(" 5M").find("no number") != std::string::npos);
    CHECK(error_of("inf").find("no number") != std::string::npos);
    CHECK(error_of("1001G").find("largest") != std::string::npos);
    CHECK(error_of("99999999999999999999").find("digits") != std::string::npos);
    CHECK(error_of("1bit").find("less than 1 byte/s") != std::string::npos);
    CHECK(error_of("0.1").find("less than 1 byte/s") != std::string::npos);
    CHECK(error_of("M").find("no number") != std::string::npos);

    const auto message = error_of("fast");
    CHECK(message.rfind("bad rate 'fast': ", 0) == 0);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.find("20Mbit") != std::string::npos);   // says what a rate looks like
}

TEST_CASE("rate: formatted for people in SI units, three significant digits") {
    CHECK(format_rate(0) == "unlimited");
    CHECK(format_rate(1) == "1 B/s");
    CHECK(format_rate(999) == "999 B/s");
    CHECK(format_rate(1'000) == "1 kB/s");
    CHECK(format_rate(500'000) == "500 kB/s");
    CHECK(format_rate(2'500'000) == "2.5 MB/s");
    CHECK(format_rate(20'000'000) == "20 MB/s");
    CHECK(format_rate(4'194'304) == "4.19 MB/s");
    CHECK(format_rate(999'999) == "1 MB/s");
    CHECK(format_rate(1'234'567'890) == "1.23 GB/s");
    CHECK(format_rate(1'000'000'000'000) == "1 TB/s");
    // What is shown parses back to nearly the same rate.
    CHECK(rate_of("2.5M") == 2'500'000);
}

TEST_CASE("size: the same numbers and prefixes, in bytes; no /s and no bits") {
    using peershare::common::parse_size;
    CHECK(*parse_size("64Mi") == 64ull << 20);
    CHECK(*parse_size("1Gi") == 1ull << 30);
    CHECK(*parse_size("500M") == 500'000'000);
    CHECK(*parse_size("16MiB") == 16ull << 20);
    CHECK(*parse_size("0") == 0);
    CHECK(*parse_size("1024Gi") == 1ull << 40);
    for (const char* bad : {"abc", "1Gbit", "64Mi/s", "-1", "1025Gi", "0.5", "20b", ""}) {
        const auto r = parse_size(bad);
        REQUIRE_MESSAGE(!r, bad << " was accepted");
        CHECK(r.error().message.rfind(std::string("bad size '") + bad + "': ", 0) == 0);
    }
    CHECK(parse_size("abc").error().message.find("64Mi") != std::string::npos);   // says what a size looks like
    CHECK(parse_size("1025Gi").error().message.find("largest") != std::string::npos);
}
