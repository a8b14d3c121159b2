// ctl/session.cpp — connecting a CLI to its daemon.
#include "ctl/session.hpp"

namespace peershare::ctl {

Session::Session(const std::string& socket_path, const std::string& how_to_start) {
    auto client = common::Client::connect_unix(socket_path, common::Millis{5000});
    if (!client) {
        throw Failure{kUnreachable, "cannot reach the daemon at " + socket_path + " (" +
                                        client.error().message + "): " + how_to_start};
    }
    client_ = std::move(*client);
    proto::Hello hello;
    hello.role = "admin";
    auto welcome = client_->request<proto::Welcome>(hello, kRequestTimeout);
    if (!welcome) throw failure(welcome.error());
}

Failure Session::failure(const proto::Error& error) {
    const bool gone = error.code == proto::ErrorCode::unavailable && error.message.starts_with("connection closed");
    return Failure{gone ? kUnreachable : kFailed, error.message};
}

}  // namespace peershare::ctl
