// tests/unit/test_prometheus.cpp — the text exposition and the histogram
// (proto/prometheus.hpp); promtool checks the daemons' whole pages in the
// integration tests.
#include <doctest/doctest.h>

#include <string>

#include "proto/prometheus.hpp"

using namespace peershare::proto;

TEST_CASE("a histogram's buckets are cumulative with +Inf, _sum and _count") {
    Histogram h({0.25, 1});
    h.observe(0.125);
    h.observe(0.25);   // on a bound: counted in it (le)
    h.observe(0.5);
    h.observe(7);
    Exposition out;
    out.histogram("x_seconds", "time", h);
    CHECK(out.text() ==
          "# HELP x_seconds time\n# TYPE x_seconds histogram\n"
          "x_seconds_bucket{le=\"0.25\"} 2\nx_seconds_bucket{le=\"1\"} 3\nx_seconds_bucket{le=\"+Inf\"} 4\n"
          "x_seconds_sum 7.875\nx_seconds_count 4\n");
}

TEST_CASE("label values and help text are escaped") {
    Exposition out;
    out.family("y_total", "counter", "a \\ b\nc");
    out.sample("y_total", 3, {{"reason", "say \"hi\"\\\n"}});
    CHECK(out.text() == "# HELP y_total a \\\\ b\\nc\n# TYPE y_total counter\ny_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 3\n");
}

TEST_CASE("values print as integers, shortest decimals, +Inf and NaN") {
    CHECK(metric_value(42) == "42");
    CHECK(metric_value(0.25) == "0.25");
    CHECK(metric_value(1e-05) == "1e-05");
    CHECK(metric_value(0.1 + 0.2) == "0.30000000000000004");
    CHECK(metric_value(1.0 / 0.0) == "+Inf");
    CHECK(metric_value(0.0 / 0.0) == "NaN");
}
