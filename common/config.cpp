// common/config.cpp — line and key checks of a config file before CLI11 reads
// it. The grammar mirrors what CLI11 2.1's TOML reader accepts for scalars
// (comments from '#' on, surrounding quotes removed); anything it would
// silently skip or turn into a list is an error here.
#include "common/config.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

namespace peershare::common {
namespace {

constexpr std::size_t kMaxQuotedLine = 60;   // of a bad line, in its error

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return std::string(s.substr(first, last - first + 1));
}

std::string quoted_excerpt(const std::string& line) {
    if (line.size() <= kMaxQuotedLine) return "'" + line + "'";
    return "'" + line.substr(0, kMaxQuotedLine) + "...'";
}

bool is_quote(char c) { return c == '"' || c == '\''; }

// The first byte below 0x20 but tab, or 0x7f, as "0x00"; null if none. A NUL
// cut the value check_value checked short of the value CLI11 then read
// (found by tests/fuzz/config); no option takes any of them.
std::optional<std::string> control_byte(std::string_view line) {
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", u);
            return hex;
        }
    }
    return std::nullopt;
}

// The keys a file may set: the long names of the configurable options.
std::vector<std::string> known_keys(CLI::App& app) {
    std::vector<std::string> keys;
    for (const CLI::Option* opt : app.get_options()) {
        if (!opt->get_configurable()) continue;
        for (const auto& name : opt->get_lnames()) {
            if (name != "help" && name != "version" && name != "config") keys.push_back(name);
        }
    }
    return keys;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

// The scalar a value spells, without its quotes; or why it is not one.
std::optional<std::string> unquote(const std::string& value, std::string& why) {
    if (value.empty()) {
        why = "no value after '='";
        return std::nullopt;
    }
    if (value.front() == '[') {
        why = "lists are not used here; give one value";
        return std::nullopt;
    }
    if (is_quote(value.front())) {
        const char q = value.front();
        if (value.size() < 2 || value.back() != q || value.find(q, 1) != value.size() - 1) {
            why = "unterminated or broken quoted text " + quoted_excerpt(value) +
                  " (a '#' starts a comment, even inside quotes)";
            return std::nullopt;
        }
        return value.substr(1, value.size() - 2);
    }
    if (value.find_first_of(" \t") != std::string::npos) {
        why = "put text with spaces in double quotes: \"" + value + "\"";
        return std::nullopt;
    }
    return value;
}

// Null if the option `key` accepts `value`, else CLI11's reason.
std::optional<std::string> check_value(const DeclareOptions& declare, const std::string& key,
                                       const std::string& value) {
    CLI::App app;
    declare(app);
    app.set_config();   // the value alone: no config file read here
    const std::string arg = "--" + key + "=" + value;
    const char* argv[] = {"config-check", arg.c_str()};
    try {
        app.parse(2, argv);
    } catch (const CLI::Error& e) {
        std::string why = e.what();
        if (const std::string prefix = "--" + key + ": "; why.starts_with(prefix)) {
            why.erase(0, prefix.size());
        }
        return why;
    }
    return std::nullopt;
}

}  // namespace

ConfigFile config_file_of(int argc, const char* const* argv, std::string fallback) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--config" && i + 1 < argc) return {argv[i + 1], true};
        if (arg.starts_with("--config=")) return {std::string(arg.substr(9)), true};
    }
    return {std::move(fallback), false};
}

std::optional<std::string> check_config_file(const ConfigFile& file,
                                             const DeclareOptions& declare) {
    errno = 0;
    std::ifstream in(file.path);
    if (!in) {
        if (errno == ENOENT && !file.named) return std::nullopt;
        return file.path + ": cannot read: " + std::strerror(errno);
    }
    if (auto problem = check_config_text(in, file.path, declare)) return problem;
    if (in.bad()) return file.path + ": cannot read: " + std::strerror(errno);
    return std::nullopt;
}

std::optional<std::string> check_config_text(std::istream& in, const std::string& name,
                                             const DeclareOptions& declare) {
    CLI::App probe;
    declare(probe);
    const auto keys = known_keys(probe);

    std::map<std::string, int> first_line_of;
    std::string raw;
    for (int number = 1; std::getline(in, raw); ++number) {
        const std::string where = name + ":" + std::to_string(number) + ": ";
        const std::string line = trim(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (auto bad = control_byte(line)) {
            return where + "control character (byte " + *bad + ") in the line; a config file is text";
        }
        if (line.front() == '[') {
            return where + "sections like " + quoted_excerpt(line) +
                   " are not used; write key = value lines only";
        }
        const auto eq = line.find('=');
        if (eq == std::string::npos) {
            return where + "expected key = value, got " + quoted_excerpt(line);
        }

        std::string key = trim(line.substr(0, eq));
        if (key.size() >= 2 && is_quote(key.front()) && key.back() == key.front()) {
            key = key.substr(1, key.size() - 2);
        }
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            return where + "unknown option '" + key + "' (known: " + join(keys) + ")";
        }
        if (auto [it, fresh] = first_line_of.try_emplace(key, number); !fresh) {
            return where + "'" + key + "' is set twice (first on line " +
                   std::to_string(it->second) + ")";
        }

        std::string value = line.substr(eq + 1);
        if (auto hash = value.find('#'); hash != std::string::npos) value.erase(hash);
        std::string why;
        auto scalar = unquote(trim(value), why);
        if (!scalar) return where + key + ": " + why;
        if (auto bad = check_value(declare, key, *scalar)) {
            return where + key + " = " + *scalar + ": " + *bad;
        }
    }
    return std::nullopt;
}

std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv,
                                      const DeclareOptions& declare_scratch, std::string& error) {
    const CLI::Option* config = app.get_config_ptr();
    const auto file = config_file_of(argc, argv, config ? config->get_default_str() : "");
    if (!file.path.empty()) {
        if (auto bad = check_config_file(file, declare_scratch)) {
            error = *bad;
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
            app.exit(e);   // --help or --version
            return 0;
        }
        error = std::string(e.what()) + "; see --help";
        return 2;
    }
    return std::nullopt;
}

std::string Changes::summary() const {
    return items_.empty() ? "nothing changed" : join(items_);
}

}  // namespace peershare::common
