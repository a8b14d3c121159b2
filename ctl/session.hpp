// ctl/session.hpp — a CLI's session with its daemon: connect to the Unix
// socket, say hello, send requests; unreachable → exit 3 with what to do.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/client.hpp"
#include "ctl/output.hpp"

namespace peershare::ctl {

inline constexpr common::Millis kRequestTimeout{10'000};

class Session {
public:
    // Connects and greets; throws Failure{kUnreachable} naming the socket and
    // `how_to_start` when nobody listens there.
    Session(const std::string& socket_path, const std::string& how_to_start);

    // A request and its reply; an error reply becomes Failure{kFailed} (or
    // kUnreachable if the daemon went away).
    template <class Reply, class M>
    Reply request(const M& message, common::Millis timeout = kRequestTimeout) {
        check_utf8(message.to_json());
        auto reply = client_->request<Reply>(message, timeout);
        if (!reply) throw failure(reply.error());
        return std::move(*reply);
    }

    // Sends a request without waiting for its reply; returns its id.
    template <class M>
    std::uint64_t send(const M& message) {
        check_utf8(message.to_json());
        return client_->send(message);
    }

    // Throws Failure{kUsage} naming the first string of `message` that is not
    // UTF-8 (RFC 3629). JSON carries UTF-8 only and the frame encoder would put
    // U+FFFD in place of such bytes, so the daemon would act on text the user
    // did not type (docs/robustness.md, fault 3): refused before it is sent.
    static void check_utf8(const nlohmann::json& message);

    common::Client& client() { return *client_; }
    static Failure failure(const proto::Error& error);

private:
    std::unique_ptr<common::Client> client_;
};

}  // namespace peershare::ctl
