// tests/unit/test_history.cpp — the dashboard's sample ring (tracker/history.hpp).
#include <doctest/doctest.h>

#include "tracker/history.hpp"

using namespace peershare::tracker;

TEST_CASE("history keeps the newest samples and derives the request rate") {
    History h(3);
    h.add({100, 1, 2, 10});
    h.add({102, 2, 2, 30});
    h.add({104, 2, 3, 30});
    h.add({106, 3, 4, 36});
    REQUIRE(h.samples().size() == 3);
    CHECK(h.samples().front().time_s == 102);
    const auto doc = h.to_json(2);
    CHECK(doc["period_s"] == 2);
    REQUIRE(doc["samples"].size() == 3);
    CHECK(doc["samples"][0]["request_rate"] == 0);   // nothing before it
    CHECK(doc["samples"][1]["request_rate"] == 0);
    CHECK(doc["samples"][2]["request_rate"] == 3);
    CHECK(doc["samples"][2]["peers"] == 3);
}
