// common/log.hpp — one line per event on stderr, for the journal. When stderr
// is the journal (JOURNAL_STREAM), each line carries its syslog level as
// "<N>" so journald files it at the right priority.
#pragma once

#include <string_view>

namespace peershare::common {

enum class LogLevel { error = 3, warning = 4, info = 6, debug = 7 };

class Log {
public:
    explicit Log(std::string_view program, LogLevel level = LogLevel::info);
    void set_level(LogLevel level) { level_ = level; }
    std::string_view program() const { return program_; }
    bool enabled(LogLevel level) const { return static_cast<int>(level) <= static_cast<int>(level_); }

    void error(std::string_view message) const { write(LogLevel::error, message); }
    void warning(std::string_view message) const { write(LogLevel::warning, message); }
    void info(std::string_view message) const { write(LogLevel::info, message); }
    void debug(std::string_view message) const { write(LogLevel::debug, message); }
    void write(LogLevel level, std::string_view message) const;

private:
    std::string_view program_;
    LogLevel level_;
    bool journal_;
};

}  // namespace peershare::common
