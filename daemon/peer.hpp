// daemon/peer.hpp — the peer engine: what peerctl's commands do. Owns the
// catalog, the state database's writer (daemon/state/), the tracker link, the
// upload server and the transfers (daemon/transfers/); everything lives on
// the loop thread. The control server and main are thin layers over it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/log.hpp"
#include "common/net.hpp"
#include "common/token_bucket.hpp"
#include "daemon/catalog.hpp"
#include "daemon/fetch/engine.hpp"
#include "daemon/hasher.hpp"
#include "daemon/metrics.hpp"
#include "daemon/partial_holdings.hpp"
#include "daemon/reverse/reverse_connections.hpp"
#include "daemon/reverse/relay_dialer.hpp"
#include "daemon/state/state_writer.hpp"
#include "daemon/tracker_link.hpp"
#include "daemon/transfers/registry.hpp"
#include "daemon/upload_server.hpp"
#include "proto/control.hpp"

namespace peershare::peerd {

inline constexpr std::uint64_t kDefaultFetchMemory = 256ull << 20;
inline constexpr std::uint64_t kMinFetchMemory = 16ull << 20;  // the largest piece

struct PeerConfig {
    std::string name;
    common::Endpoint tracker{"127.0.0.1", 9999};
    common::Endpoint listen{"0.0.0.0", 0};
    std::string advertise;
    std::string state_dir;
    unsigned workers = 4;
    unsigned max_active_fetches = 4;   // transfers downloading at once
    unsigned max_sources = 0;          // holders per transfer, 0 = all
    UploadLimits uploads;
    std::uint64_t download_rate = 0;   // bytes/s for all transfers together, 0 = unlimited
    std::uint64_t fetch_memory = kDefaultFetchMemory;  // bytes of piece buffers, all fetches
    bool share_fetched = true;         // publish fetched files once done, unless a fetch says otherwise
    RequestDeadlines deadlines;        // of every request to a holder (--holder-deadline)
};

class Peer {
public:
    using PublishDone = std::function<void(proto::Result<proto::Published>)>;
    using SearchDone = std::function<void(proto::Result<proto::IndexReply>)>;
    using ListDone = std::function<void(proto::Publications)>;
    Peer(uv_loop_t* loop, const common::Log& log, PeerConfig config);
    ~Peer();

    proto::Result<bool> start();
    // SIGTERM's first step: running transfers make their verified pieces
    // durable and stop (kept for the next start); `drained` is called on the
    // loop when they have, or after `deadline_ms`. Then call stop().
    void drain(std::uint64_t deadline_ms, std::function<void()> drained);
    void stop();   // stops serving and fetching, flushes state

    void publish(const std::string& path, const std::string& name, PublishDone done);
    proto::Result<bool> unpublish(const std::string& name);
    // Every publication, after a stat of each file in the worker pool (so the
    // list tells the truth about changed files without the loop waiting on
    // the disk).
    void list(ListDone done);
    void search(const std::string& text, SearchDone done);
    proto::Status status() const;
    // Has the tracker check our reachability again now (peerctl reach-check).
    void check_reach(std::function<void(proto::Result<proto::Reachability>)> done);
    // The downloads: fetch, pause, resume, cancel, list (valid after start()).
    TransferRegistry& transfers() { return *transfers_; }
    // For /metrics (--metrics-listen): the counters, and the gauges as of now.
    const PeerMetrics& metrics() const { return metrics_; }
    PeerGauges gauges() const;

    std::uint16_t upload_port() const { return uploads_.port(); }
    // New limits for the upload server (SIGHUP); requests already served keep going.
    void set_upload_limits(UploadLimits limits);
    // A new budget for the fetches' piece buffers (SIGHUP); buffers out stay out.
    void set_fetch_memory(std::uint64_t bytes);

    // Rate limits (bytes/s, 0 = unlimited) as they are now, and a change from
    // peerctl (validated by proto::SetLimits), logged in one line; returns the
    // limits after it. A later SIGHUP sets them from the config file again.
    proto::Limits limits() const;
    proto::Limits set_limits(const proto::SetLimits& change);
    void set_download_rate(std::uint64_t bytes_per_s);   // SIGHUP
    // The one bucket every transfer receives through (loop thread only).
    common::TokenBucket& download_bucket() { return download_bucket_; }

private:
    proto::Publications publications() const;

    class TransferRows;

    void restore_publications(std::vector<Publication> stored);
    void start_transfers(std::vector<TransferRecord> stored);
    void finish_publish(proto::Result<Publication> hashed, const std::string& name, const PublishDone& done);
    // Takes back publication `p` (still the catalog's under its name) and
    // restores `renamed`, the publications it had renamed: after the tracker
    // refused it or its row could not be saved.
    void undo_publish(const Publication& p, const std::vector<Publication>& renamed);
    // Publishes a done transfer's file under its name (daemon/share_fetched.hpp).
    void share_fetched(const TransferRecord& done);
    // A transfer's verified pieces: served, and announced as a partial holding.
    void hold_partial(const TransferRecord& r, bool serve);

    uv_loop_t* loop_;
    const common::Log& log_;
    PeerConfig config_;
    PeerMetrics metrics_;   // before uploads_ and the fetches, which count into it
    Catalog catalog_;
    // Every change to the catalog is written through it, one row each, from
    // the worker pool; null until start().
    std::unique_ptr<StateWriter> state_;
    UploadServer uploads_;
    // Dials the relay for relay_offers (serving through it) and for relay
    // sources' asks (fetching through it: make_relay_ask with it and link_,
    // daemon/reverse/relay_peer.hpp); after uploads_, which its dials hand
    // sockets to.
    RelayDialer relay_dialer_;
    common::TokenBucket download_bucket_;
    std::unique_ptr<TrackerLink> link_;
    // Reverse connections, both sides (holder: dials connect_backs; fetcher:
    // expects them); after link_ and uploads_, which it uses. Null until start().
    std::unique_ptr<ReverseConnections> reverse_;
    // A source for a holder the tracker found unreachable (RegistryHooks::hidden_source).
    Source hidden_source(const proto::Holder& holder, HiddenRoute route);
    std::map<std::uint64_t, std::shared_ptr<HashJob>> hashing_;
    // Expires when the Peer stops: a list still in the pool then (it may
    // finish after the Peer and the control server are gone) answers nobody.
    std::shared_ptr<bool> serving_ = std::make_shared<bool>(true);
    std::uint64_t next_hash_ = 1;
    // Every fetch's piece buffers, within config_.fetch_memory; shared with
    // the engines, which may outlive the Peer by a work item.
    std::shared_ptr<BufferPool> buffers_;
    std::unique_ptr<TransferRows> transfer_rows_;       // the registry's view of state_
    std::unique_ptr<TransferRegistry> transfers_;
    // The transfers holding verified pieces, as one holding per content,
    // and what of them the tracker was told.
    PartialHoldings partials_;
};

}  // namespace peershare::peerd
