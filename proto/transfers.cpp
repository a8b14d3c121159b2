// proto/transfers.cpp — to_json and validating from_json of the transfer messages.
#include "proto/transfers.hpp"

#include <limits>

#include "proto/limits.hpp"

namespace peershare::proto {
namespace {

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kMaxTransferId = std::uint64_t{1} << 53;   // exact in every JSON reader

std::uint64_t transfer_id(FieldReader& r, const char* key) { return r.number(key, 1, kMaxTransferId); }

template <class M>
Result<M> only_transfer(const json& j) {
    FieldReader r(j);
    M m;
    m.transfer = transfer_id(r, "transfer");
    return finish(r, std::move(m));
}

}  // namespace

json TransferAccepted::to_json() const {
    return {{"transfer", transfer}, {"name", name}, {"destination", destination}, {"resumed", resumed},
            {"done", done}, {"total", total}};
}
Result<TransferAccepted> TransferAccepted::from_json(const json& j) {
    FieldReader r(j);
    TransferAccepted m;
    m.transfer = transfer_id(r, "transfer");
    m.name = r.name("name");
    m.destination = r.text("destination", kMaxPathBytes);
    m.resumed = r.flag("resumed", false);
    m.done = r.optional_number("done", 0, kMaxU64);
    m.total = r.optional_number("total", 0, kMaxU64);
    return finish(r, std::move(m));
}

json TransferInfo::to_json() const {
    json j = {{"id", id}, {"name", name}, {"content_id", content_id}, {"state", state}, {"done", done},
              {"total", total}, {"rate", rate}, {"destination", destination},
              {"sources", list_json(sources)}, {"created_at", created_at}};
    if (!error.empty()) j["error"] = error;
    if (eta_s >= 0) j["eta_s"] = eta_s;
    return j;
}
Result<TransferInfo> TransferInfo::from_json(const json& j) {
    FieldReader r(j);
    TransferInfo m;
    m.id = transfer_id(r, "id");
    m.name = r.name("name");
    m.content_id = r.optional_text("content_id", kContentIdHexLen);
    m.state = r.text("state", 16);
    m.error = r.optional_text("error", kMaxMessageText);
    m.done = r.number("done", 0, kMaxU64);
    m.total = r.number("total", 0, kMaxU64);
    m.rate = r.real("rate", 0, 1e15);
    m.eta_s = j.contains("eta_s") ? static_cast<std::int64_t>(r.number("eta_s", 0, kMaxTransferId)) : -1;
    m.destination = r.text("destination", kMaxPathBytes);
    m.sources = r.list<SourceStatus>("sources", 1024);
    m.created_at = r.timestamp("created_at");
    return finish(r, std::move(m));
}

json Leftover::to_json() const { return {{"path", path}, {"size", size}}; }
Result<Leftover> Leftover::from_json(const json& j) {
    FieldReader r(j);
    Leftover m;
    m.path = r.text("path", kMaxPathBytes);
    m.size = r.number("size", 0, kMaxU64);
    return finish(r, std::move(m));
}

Result<ListTransfers> ListTransfers::from_json(const json& j) { return finish(FieldReader(j), ListTransfers{}); }

json TransferList::to_json() const {
    return {{"transfers", list_json(transfers)}, {"leftovers", list_json(leftovers)}, {"truncated", truncated}};
}
Result<TransferList> TransferList::from_json(const json& j) {
    FieldReader r(j);
    TransferList m;
    m.transfers = r.list<TransferInfo>("transfers", kMaxTransfersListed);
    m.leftovers = r.list<Leftover>("leftovers", kMaxTransfersListed);
    m.truncated = r.flag("truncated", false);
    return finish(r, std::move(m));
}

Result<PauseTransfer> PauseTransfer::from_json(const json& j) { return only_transfer<PauseTransfer>(j); }
Result<ResumeTransfer> ResumeTransfer::from_json(const json& j) { return only_transfer<ResumeTransfer>(j); }
Result<CancelTransfer> CancelTransfer::from_json(const json& j) { return only_transfer<CancelTransfer>(j); }

}  // namespace peershare::proto
