// daemon/reverse/connect_back.cpp — dial, preface, hand over to the upload server.
#include "daemon/reverse/connect_back.hpp"

#include <utility>

#include "daemon/upload_server.hpp"
#include "proto/reverse.hpp"

namespace peershare::peerd {

ConnectBackDialer::ConnectBackDialer(uv_loop_t* loop, const common::Log& log, UploadServer& server)
    : log_(log), server_(server), dialer_(loop, "", DialLimits{kConnectBackDeadlineMs, kMaxConnectBackDials, 0}) {}

proto::Result<bool> ConnectBackDialer::dial(const common::Endpoint& to, const std::string& token, DoneFn done) {
    if (!proto::valid_reverse_token(token)) {
        return proto::Error{proto::ErrorCode::bad_request, "a connect-back token is 32 lowercase hex digits"};
    }
    const auto where = common::to_string(to);
    // `this` outlives the call: dialer_ goes with it and calls nothing back then.
    return dialer_.dial(to, proto::reverse_preface(token), {},
                        [this, where, done = std::move(done)](common::UniqueFd socket, const std::string& why) {
        const bool ok = socket && server_.adopt(std::move(socket));
        if (ok) {
            log_.debug("connect-back dialled to " + where);   // the caller says what it was for
        } else {
            log_.debug("cannot connect back: " + why);
        }
        if (done) done(ok, ok ? "" : why.empty() ? "the upload server could not take the connection" : why);
    });
}

}  // namespace peershare::peerd
