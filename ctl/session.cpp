// ctl/session.cpp — connecting a CLI to its daemon.
#include "ctl/session.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <optional>

#include "proto/names.hpp"

namespace peershare::ctl {

namespace {

// Set when this user may not use the socket (or reach it through its
// directory): then the daemon may well be running, and what helps is access.
std::optional<std::string> access_hint(const std::string& socket_path) {
    if (::access(socket_path.c_str(), R_OK | W_OK) == 0 || errno != EACCES) return std::nullopt;
    // The socket, or the directory that hides it, and the group it admits.
    std::string path = socket_path;
    struct stat st {};
    while (::stat(path.c_str(), &st) != 0) {
        const auto slash = path.rfind('/');
        if (slash == std::string::npos || slash == 0) return "permission denied";
        path.resize(slash);
    }
    const group* g = ::getgrgid(st.st_gid);
    const std::string group = g ? g->gr_name : std::to_string(st.st_gid);
    return "permission denied: " + path + " admits the group " + group +
           "; run this as a member of it (sudo usermod -aG " + group +
           " $USER, then log in again) or as its owner";
}

}  // namespace

Session::Session(const std::string& socket_path, const std::string& how_to_start) {
    auto client = common::Client::connect_unix(socket_path, common::Millis{5000});
    if (!client) {
        if (auto denied = access_hint(socket_path)) {
            throw Failure{kUnreachable, "cannot use the daemon at " + socket_path + ": " + *denied};
        }
        throw Failure{kUnreachable, "cannot reach the daemon at " + socket_path + " (" +
                                        client.error().message + "): " + how_to_start};
    }
    client_ = std::move(*client);
    proto::Hello hello;
    hello.role = "admin";
    auto welcome = client_->request<proto::Welcome>(hello, kRequestTimeout);
    if (!welcome) throw failure(welcome.error());
}

void Session::check_utf8(const nlohmann::json& message) {
    if (message.is_string()) {
        const auto& text = message.get_ref<const std::string&>();
        if (!proto::is_valid_utf8(text)) {
            throw Failure{kUsage, "'" + printable(text) + "' is not valid UTF-8; the daemon takes UTF-8 text only"};
        }
    } else if (message.is_structured()) {
        for (const auto& item : message) check_utf8(item);
    }
}

Failure Session::failure(const proto::Error& error) {
    const bool gone = error.code == proto::ErrorCode::unavailable && error.message.starts_with("connection closed");
    return Failure{gone ? kUnreachable : kFailed, error.message};
}

}  // namespace peershare::ctl
