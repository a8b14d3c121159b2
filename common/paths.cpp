// common/paths.cpp — XDG defaults and the host name.
#include "common/paths.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace peershare::common {
namespace {

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::string home() {
    auto h = env_or_empty("HOME");
    return h.empty() ? "/tmp" : h;
}

}  // namespace

std::string default_peerd_socket() {
    if (auto s = env_or_empty("PEERD_SOCKET"); !s.empty()) return s;
    if (auto run = env_or_empty("XDG_RUNTIME_DIR"); !run.empty()) return run + "/peerd.sock";
    return "/tmp/peerd-" + std::to_string(getuid()) + ".sock";
}

std::string default_state_dir() {
    if (auto state = env_or_empty("XDG_STATE_HOME"); !state.empty()) return state + "/peerd";
    return home() + "/.local/state/peerd";
}

std::string default_peerd_config() {
    if (auto config = env_or_empty("XDG_CONFIG_HOME"); !config.empty()) return config + "/peershare/peerd.conf";
    return home() + "/.config/peershare/peerd.conf";
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "peer";
    std::string out(name);
    return out.substr(0, out.find('.'));   // the short name
}

}  // namespace peershare::common
