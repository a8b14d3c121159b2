// proto/prometheus.cpp — writing the text exposition.
#include "proto/prometheus.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace peershare::proto {
namespace {

void append_escaped(std::string& out, std::string_view text, bool quote_too) {
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote_too) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), per_bucket_(bounds_.size() + 1, 0) {
    assert(!bounds_.empty() && std::is_sorted(bounds_.begin(), bounds_.end()));
}

void Histogram::observe(double value) {
    const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    ++per_bucket_[static_cast<std::size_t>(at)];
    ++count_;
    sum_ += value;
}

std::vector<std::uint64_t> Histogram::cumulative() const {
    std::vector<std::uint64_t> out(bounds_.size());
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < bounds_.size(); ++i) out[i] = running += per_bucket_[i];
    return out;
}

std::vector<double> latency_buckets() {
    return {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
            0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1,     2.5};
}

std::string metric_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char text[40];
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(text, sizeof text, "%.0f", value);
    } else {
        std::snprintf(text, sizeof text, "%.15g", value);
        if (std::strtod(text, nullptr) != value) std::snprintf(text, sizeof text, "%.17g", value);
    }
    return text;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    append_escaped(text_, help, false);
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
}

void Exposition::write_sample(std::string_view name, double value, const Label* labels, std::size_t count) {
    text_ += name;
    if (count) {
        text_ += '{';
        for (std::size_t i = 0; i < count; ++i) {
            if (i) text_ += ',';
            text_ += labels[i].name;
            text_ += "=\"";
            append_escaped(text_, labels[i].value, true);
            text_ += '"';
        }
        text_ += '}';
    }
    text_ += ' ';
    text_ += metric_value(value);
    text_ += '\n';
}

void Exposition::sample(std::string_view name, double value, std::initializer_list<Label> labels) {
    write_sample(name, value, labels.begin(), labels.size());
}

void Exposition::sample(std::string_view name, double value, const std::vector<Label>& labels) {
    write_sample(name, value, labels.data(), labels.size());
}

void Exposition::counter(std::string_view name, std::string_view help, double value) {
    assert(name.ends_with("_total"));
    family(name, "counter", help);
    sample(name, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
    family(name, "gauge", help);
    sample(name, value);
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram& h) {
    family(name, "histogram", help);
    const std::string base(name);
    const auto counts = h.cumulative();
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const std::string le = metric_value(h.bounds()[i]);
        sample(base + "_bucket", static_cast<double>(counts[i]), {{"le", le}});
    }
    sample(base + "_bucket", static_cast<double>(h.count()), {{"le", "+Inf"}});
    sample(base + "_sum", h.sum());
    sample(base + "_count", static_cast<double>(h.count()));
}

}  // namespace peershare::proto
