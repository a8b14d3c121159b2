// ctl/progress.hpp — how `peerctl fetch` looks: a live progress bar on a
// terminal (bytes, percent, rate, ETA, each source's rate; "no progress for
// N s" when stuck), the choice between different contents of one name, and
// the one-line summary (or one JSON document).
#pragma once

#include <optional>

#include "ctl/session.hpp"
#include "proto/control.hpp"
#include "proto/transfers.hpp"

namespace peershare::ctl {

class FetchView {
public:
    FetchView(bool json, bool quiet);
    // Runs the fetch to its end (or, detached, until peerd accepts it);
    // throws Failure when it does not succeed. Ctrl-C pauses the transfer.
    void run(Session& session, proto::FetchFile request);

private:
    [[noreturn]] void interrupt(Session& session, const std::optional<proto::TransferAccepted>& transfer,
                                const proto::FetchFile& request);
    void detached(const proto::TransferAccepted& a);
    void draw(const proto::Progress& p);
    void clear_line();
    // Asks on the terminal which content to fetch; returns its id.
    std::string choose(const proto::Choices& choices);
    [[noreturn]] void refuse_ambiguous(const proto::Choices& choices);
    void summarize(const proto::FetchedFile& f);

    bool json_;
    bool bar_;           // stderr is a terminal and not quiet
    bool interactive_;   // stdin and stderr are terminals
    bool drawn_ = false;
};

// Text for a progress line, exposed for tests.
std::string progress_line(const proto::Progress& p, std::size_t width);

}  // namespace peershare::ctl
