// tests/unit/test_control_limits.cpp — the control messages of the rate
// limits (get_limits, limits, set_limits): their JSON, and what is refused
// where the fields enter.
#include <doctest/doctest.h>

#include "proto/control.hpp"
#include "proto/limits.hpp"

using namespace peershare::proto;

TEST_CASE("limits messages: the documented JSON, both ways") {
    CHECK(GetLimits{}.to_json() == json::object());
    CHECK(GetLimits::from_json(json::object()).ok());

    const Limits limits{5'000'000, 2'500'000};
    CHECK(limits.to_json() == json{{"upload_rate", 5'000'000}, {"download_rate", 2'500'000}});
    auto back = Limits::from_json(limits.to_json());
    REQUIRE(back.ok());
    CHECK(back->upload_rate == 5'000'000);
    CHECK(back->download_rate == 2'500'000);

    SetLimits only_up;
    only_up.upload_rate = 0;
    CHECK(only_up.to_json() == json{{"upload_rate", 0}});
    auto parsed = SetLimits::from_json(json{{"download_rate", kMaxRate}});
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->upload_rate.has_value());
    CHECK(parsed->download_rate == kMaxRate);
    parsed = SetLimits::from_json(json{{"upload_rate", 1}, {"download_rate", 0}});
    REQUIRE(parsed.ok());
    CHECK(parsed->upload_rate == 1);
    CHECK(parsed->download_rate == 0);
}

TEST_CASE("limits messages: bad rates are refused where they enter") {
    const auto refused = [](const json& j) {
        auto m = SetLimits::from_json(j);
        CHECK_FALSE(m.ok());
        return m.ok() ? std::string() : m.error().message;
    };
    const auto npos = std::string::npos;
    CHECK(refused(json::object()).find("needs upload_rate, download_rate or both") != npos);
    CHECK(refused(json{{"upload_rate", -1}}).find("non-negative integer") != npos);
    CHECK(refused(json{{"upload_rate", kMaxRate + 1}}).find("between 0 and") != npos);
    CHECK(refused(json{{"download_rate", "20M"}}).find("non-negative integer") != npos);
    CHECK(refused(json{{"download_rate", 1.5}}).find("non-negative integer") != npos);
    CHECK(refused(json{{"upload_rate", 1}, {"download_rate", nullptr}}) != "");

    CHECK_FALSE(Limits::from_json(json{{"upload_rate", 1}}).ok());   // both are always sent
    CHECK_FALSE(Limits::from_json(json{{"upload_rate", kMaxRate + 1}, {"download_rate", 0}}).ok());
}
