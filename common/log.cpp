// common/log.cpp — stderr lines, with journald priorities when under systemd.
#include "common/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace peershare::common {

Log::Log(std::string_view program, LogLevel level)
    : program_(program), level_(level), journal_(std::getenv("JOURNAL_STREAM") != nullptr) {}

void Log::write(LogLevel level, std::string_view message) const {
    if (!enabled(level)) return;
    std::string line;
    if (journal_) {
        line = "<" + std::to_string(static_cast<int>(level)) + ">";
    } else {
        line.append(program_).append(": ");
    }
    line.append(message).push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace peershare::common
