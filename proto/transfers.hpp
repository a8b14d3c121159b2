// proto/transfers.hpp — the control messages about transfers (downloads
// owned by peerd): listing, pausing, resuming and cancelling them, and the
// reply that accepts a fetch. Same framing and validation as every control
// message (proto/control.hpp); documented in docs/protocol.md §10.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/control.hpp"

namespace peershare::proto {

inline constexpr std::size_t kMaxTransfersListed = 4096;

// First reply to `fetch` once a content is chosen: the transfer exists (new,
// or the one already going to that destination, resumed). A detached fetch
// ends here; a following one then gets progress and fetched_file or error.
struct TransferAccepted {
    static constexpr std::string_view kType = "transfer_accepted";
    std::uint64_t transfer = 0;  // the transfer's id (> 0)
    std::string name;
    std::string destination;     // absolute path
    bool resumed = false;        // an existing transfer to that destination continues
    std::uint64_t done = 0;      // verified bytes already held
    std::uint64_t total = 0;
    json to_json() const;
    static Result<TransferAccepted> from_json(const json& j);
};

// One transfer as `peerctl transfers` shows it.
struct TransferInfo {
    static constexpr std::string_view kType = "transfer";
    std::uint64_t id = 0;
    std::string name;
    std::string content_id;      // hex; empty until chosen
    std::string state;           // queued | running | waiting | paused | failed | done
    std::string error;           // why failed, or the last problem while waiting
    std::uint64_t done = 0;      // verified bytes
    std::uint64_t total = 0;     // file size
    double rate = 0;             // verified bytes/s, recent
    std::int64_t eta_s = -1;     // seconds to completion at the recent rate; -1 unknown (absent on the wire)
    std::string destination;     // absolute final path
    std::vector<SourceStatus> sources;
    std::int64_t created_at = 0;
    json to_json() const;
    static Result<TransferInfo> from_json(const json& j);
};

// A partial file beside a known destination that no transfer owns (left by an
// older peerd or a lost state database); a fetch to that destination adopts it.
struct Leftover {
    std::string path;
    std::uint64_t size = 0;
    json to_json() const;
    static Result<Leftover> from_json(const json& j);
};

struct ListTransfers {           // → TransferList
    static constexpr std::string_view kType = "list_transfers";
    json to_json() const { return json::object(); }
    static Result<ListTransfers> from_json(const json& j);
};

struct TransferList {
    static constexpr std::string_view kType = "transfer_list";
    std::vector<TransferInfo> transfers;   // oldest first
    std::vector<Leftover> leftovers;
    bool truncated = false;                // rows left off so the reply fits in one frame
    json to_json() const;
    static Result<TransferList> from_json(const json& j);
};

// pause_transfer / resume_transfer → TransferInfo; cancel_transfer → Ok.
struct PauseTransfer {
    static constexpr std::string_view kType = "pause_transfer";
    std::uint64_t transfer = 0;
    json to_json() const { return {{"transfer", transfer}}; }
    static Result<PauseTransfer> from_json(const json& j);
};

struct ResumeTransfer {
    static constexpr std::string_view kType = "resume_transfer";
    std::uint64_t transfer = 0;
    json to_json() const { return {{"transfer", transfer}}; }
    static Result<ResumeTransfer> from_json(const json& j);
};

// Stops the transfer, removes its partial file and forgets it. On a done
// transfer it only forgets the record: the fetched file is never removed.
struct CancelTransfer {
    static constexpr std::string_view kType = "cancel_transfer";
    std::uint64_t transfer = 0;
    json to_json() const { return {{"transfer", transfer}}; }
    static Result<CancelTransfer> from_json(const json& j);
};

}  // namespace peershare::proto
