// tests/unit/test_config.cpp — config files checked line by line before CLI11
// reads them, the --config lookup, and the reload summary (common/config.hpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "common/config.hpp"

using namespace peershare::common;

namespace {

struct Options {
    std::string listen = "0.0.0.0:9999";
    unsigned heartbeat = 10;
    std::string level = "info";
};

void declare(CLI::App& app, Options& o) {
    app.add_option("--listen", o.listen);
    app.add_option("--heartbeat", o.heartbeat)->check(CLI::Range(1u, 3600u));
    app.add_option("--log-level", o.level)->check(CLI::IsMember({"info", "debug"}));
    app.set_config("--config", "/nonexistent/default.conf");
}

// A file in the temp dir, removed when the test ends.
struct TempFile {
    explicit TempFile(const std::string& text) {
        char name[] = "/tmp/peershare-config-XXXXXX";
        const int fd = mkstemp(name);
        REQUIRE(fd >= 0);
        close(fd);
        path = name;
        std::ofstream(path) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
    std::string path;
};

std::optional<std::string> check(const std::string& text) {
    TempFile file(text);
    Options scratch;
    auto problem = check_config_file({file.path, true}, [&](CLI::App& a) { declare(a, scratch); });
    if (problem) {   // drop the temp path so cases read plainly
        REQUIRE(problem->starts_with(file.path + ":"));
        problem->erase(0, file.path.size() + 1);
    }
    return problem;
}

}  // namespace

TEST_CASE("a config file of comments, blanks and known keys passes") {
    CHECK_FALSE(check(""));
    CHECK_FALSE(check("# all defaults\n\n; old-style comment\n"));
    CHECK_FALSE(check("listen = \"127.0.0.1:1\"\nheartbeat = 5  # seconds\nlog-level = 'debug'\n"));
    CHECK_FALSE(check("  heartbeat=5\r\n"));
}

TEST_CASE("each mistake in a config file is reported with its line") {
    CHECK(check("heartbeat = 5\nbogus = 1\n")
              .value_or("")
              .starts_with("2: unknown option 'bogus' (known: "));
    CHECK(check("\n\nheartbeat = 0\n") == "3: heartbeat = 0: Value 0 not in range 1 to 3600");
    CHECK(check("log-level = \"loud\"\n").value_or("").starts_with("1: log-level = loud: "));
    CHECK(check("heartbeat\n") == "1: expected key = value, got 'heartbeat'");
    CHECK(check("[tracker]\n").value_or("").starts_with("1: sections like '[tracker]' are"));
    CHECK(check("heartbeat = 1\nheartbeat = 2\n") ==
          "2: 'heartbeat' is set twice (first on line 1)");
    CHECK(check("heartbeat =\n") == "1: heartbeat: no value after '='");
    CHECK(check("listen = [\"a\"]\n") == "1: listen: lists are not used here; give one value");
    CHECK(check("listen = \"a#b\"\n").value_or("").starts_with("1: listen: unterminated"));
    CHECK(check("listen = a b\n").value_or("").starts_with("1: listen: put text with spaces"));
    CHECK(check("help = true\n").value_or("").starts_with("1: unknown option 'help'"));
    CHECK(check("config = \"/x\"\n").value_or("").starts_with("1: unknown option 'config'"));
}

// Found by tests/fuzz/config (corpus/config/regression-nul-in-value): the
// check handed the value to CLI11 through argv, where a NUL ends it, so
// "name=x\0..." passed as "x" and CLI11 then read the whole value.
TEST_CASE("a config line with a NUL or another control byte is refused, naming the line and byte") {
    using namespace std::string_literals;
    CHECK(check("heartbeat = 5\nlisten = \"127.0.0.1:1\0\0\"\n"s) ==
          "2: control character (byte 0x00) in the line; a config file is text");
    CHECK(check("log-level = info\x1b[2J\n").value_or("").starts_with("1: control character (byte 0x1b)"));
    CHECK(check("heartbeat = 5\x7f\n").value_or("").starts_with("1: control character (byte 0x7f)"));
    CHECK_FALSE(check("heartbeat =\t5\r\n"));   // tabs and a CRLF ending are fine
    CHECK_FALSE(check("# a comment may hold anything: \x01\n"));
}

TEST_CASE("check_config_text checks text from a stream and names it as told") {
    std::istringstream in("heartbeat = 5\nbogus = 1\n");
    Options scratch;
    auto problem = check_config_text(in, "NAME", [&](CLI::App& a) { declare(a, scratch); });
    CHECK(problem.value_or("").starts_with("NAME:2: unknown option 'bogus'"));
}

TEST_CASE("a missing config file is an error only when the command line names it") {
    Options scratch;
    auto declare_scratch = [&](CLI::App& a) { declare(a, scratch); };
    CHECK_FALSE(check_config_file({"/nonexistent/peershare.conf", false}, declare_scratch));
    CHECK(check_config_file({"/nonexistent/peershare.conf", true}, declare_scratch) ==
          "/nonexistent/peershare.conf: cannot read: No such file or directory");
}

TEST_CASE("the config file is the one --config names, else the default") {
    const char* none[] = {"d", "--heartbeat", "5"};
    CHECK(config_file_of(3, none, "/etc/d.conf").path == "/etc/d.conf");
    CHECK_FALSE(config_file_of(3, none, "/etc/d.conf").named);
    const char* split[] = {"d", "--config", "/x.conf"};
    CHECK(config_file_of(3, split, "/etc/d.conf").path == "/x.conf");
    CHECK(config_file_of(3, split, "/etc/d.conf").named);
    const char* joined[] = {"d", "--config=/y.conf"};
    CHECK(config_file_of(2, joined, "/etc/d.conf").path == "/y.conf");
}

TEST_CASE("the command line wins over the file, and a bad file stops the parse") {
    TempFile file("heartbeat = 7\nlisten = \"127.0.0.1:5\"\n");
    Options o, scratch;
    CLI::App app;
    declare(app, o);
    const char* argv[] = {"d", "--config", file.path.c_str(), "--listen", "[::1]:6"};
    std::string error;
    CHECK_FALSE(parse_command_line(app, 5, argv, [&](CLI::App& a) { declare(a, scratch); }, error));
    CHECK(o.heartbeat == 7);
    CHECK(o.listen == "[::1]:6");

    TempFile bad("heartbeat = 7\nheartbeat = 8\n");
    Options o2;
    CLI::App app2;
    declare(app2, o2);
    const char* argv2[] = {"d", "--config", bad.path.c_str()};
    auto declare_scratch = [&](CLI::App& a) { declare(a, scratch); };
    CHECK(parse_command_line(app2, 3, argv2, declare_scratch, error) == 2);
    CHECK(error == bad.path + ":2: 'heartbeat' is set twice (first on line 1)");
}

TEST_CASE("a reload's summary lists what changed, in order") {
    Changes none;
    CHECK(none.summary() == "nothing changed");
    Changes some;
    CHECK_FALSE(some.note("max-peers", 5, 5));
    CHECK(some.note("max-peers", 5, 6));
    CHECK(some.note("log-level", std::string("info"), std::string("debug")));
    CHECK(some.summary() == "max-peers 5 -> 6, log-level info -> debug");
}
