// proto/prometheus.hpp — the Prometheus text exposition format (version
// 0.0.4, prometheus.io/docs/instrumenting/exposition_formats) and the one
// histogram both daemons keep. Names follow prometheus.io/docs/practices/naming:
// base units (seconds, bytes), counters end in _total. Pure: values in, text out.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace peershare::proto {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct Label {
    std::string_view name;
    std::string_view value;   // escaped when written (\\, \", \n)
};

// Cumulative buckets with fixed upper bounds, plus sum and count.
class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);   // ascending, finite, at least one
    void observe(double value);
    const std::vector<double>& bounds() const { return bounds_; }
    // Observations <= bounds()[i], for each i (cumulative, as exposed).
    std::vector<std::uint64_t> cumulative() const;
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> per_bucket_;   // not cumulative; the last one is +Inf
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

// Latency buckets in seconds: 10 µs to 2.5 s.
std::vector<double> latency_buckets();

class Exposition {
public:
    // "# HELP" and "# TYPE" lines; type is counter, gauge or histogram. Each
    // family is written once, its samples right after it.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, double value, std::initializer_list<Label> labels = {});
    void sample(std::string_view name, double value, const std::vector<Label>& labels);

    // A family with one sample each.
    void counter(std::string_view name, std::string_view help, double value);
    void gauge(std::string_view name, std::string_view help, double value);
    // The family and its _bucket (with le), _sum and _count samples.
    void histogram(std::string_view name, std::string_view help, const Histogram& h);
    // A family with one sample per value of `label`: every value in `known`,
    // in that order, 0 when `counts` (a map from label value to count) lacks
    // it, so that each series exists from the start ("avoid missing metrics",
    // prometheus.io/docs/practices/instrumentation). A key of `counts` not in
    // `known` is a bug (asserted); it is still written, after the known ones.
    template <class Map>
    void labelled(std::string_view name, std::string_view type, std::string_view help, std::string_view label,
                  std::span<const std::string_view> known, const Map& counts) {
        family(name, type, help);
        for (const std::string_view value : known) {
            const auto it = counts.find(std::string(value));
            sample(name, it == counts.end() ? 0.0 : static_cast<double>(it->second), {{label, value}});
        }
        for (const auto& [value, n] : counts) {
            if (std::find(known.begin(), known.end(), value) != known.end()) continue;
            assert(false && "a label value missing from the known ones");
            sample(name, static_cast<double>(n), {{label, value}});
        }
    }

    const std::string& text() const { return text_; }

private:
    void write_sample(std::string_view name, double value, const Label* labels, std::size_t count);
    std::string text_;
};

// A sample value as the format wants it: integers without a fraction,
// "+Inf", "NaN", else the shortest round-tripping decimal.
std::string metric_value(double value);

}  // namespace peershare::proto
