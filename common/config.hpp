// common/config.hpp — the daemons' TOML config files (docs/design.md,
// "Command line and configuration"). CLI11 reads them, but it skips lines it
// does not understand and never says which line holds a bad value;
// check_config_file reads the file first and names the line of the first
// mistake. It checks lines and keys only; each value is checked by the same
// CLI11 declaration that checks it on the command line.
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace CLI {
class App;
}

namespace peershare::common {

// Declares a program's options on an App, as its main does.
using DeclareOptions = std::function<void(CLI::App&)>;

struct ConfigFile {
    std::string path;
    bool named = false;   // given with --config: then it must exist
};

// The file `--config FILE` or `--config=FILE` names, else `fallback`.
ConfigFile config_file_of(int argc, const char* const* argv, std::string fallback);

// Null when every line of the file is blank, a comment, or `key = value` where
// key is a long option of the program (set once) and value one it accepts
// (quoted text, a number or true/false); else "PATH:LINE: what is wrong". A
// missing file is fine unless it was named on the command line.
std::optional<std::string> check_config_file(const ConfigFile& file, const DeclareOptions& declare);
// The same checks over the text of a file read from `in` (pure: no file is
// opened); errors say "NAME:LINE: what is wrong".
std::optional<std::string> check_config_text(std::istream& in, const std::string& name,
                                             const DeclareOptions& declare);

// Parses argv into the options declared on `app` (its set_config naming the
// default file), after check_config_file has passed the file it will read;
// declare_scratch declares the same options bound to throwaway storage, for
// those checks. Null when parsed; else the exit code: 0 after --help or
// --version (CLI11 printed them), 2 with `error` saying what is wrong.
std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv,
                                      const DeclareOptions& declare_scratch, std::string& error);

// What a reload changed, for its one log line: "max-peers 20000 -> 100, log-level info -> debug".
class Changes {
public:
    template <class T>
    bool note(std::string_view key, const T& before, const T& after) {
        if (before == after) return false;
        items_.push_back(std::string(key) + " " + text(before) + " -> " + text(after));
        return true;
    }
    bool empty() const { return items_.empty(); }
    std::string summary() const;   // "nothing changed" when empty

private:
    template <class T>
    static std::string text(const T& value) {
        if constexpr (std::is_arithmetic_v<T>) {
            return std::to_string(value);
        } else {
            return std::string(value);
        }
    }
    std::vector<std::string> items_;
};

}  // namespace peershare::common
