// daemon/peer.hpp — the peer engine: what peerctl's commands do. Owns the
// catalog, the persisted state, the tracker link, the upload server and the
// running fetches; everything lives on the loop thread. The control server
// and main are thin layers over it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/log.hpp"
#include "common/net.hpp"
#include "daemon/catalog.hpp"
#include "daemon/fetch.hpp"
#include "daemon/hasher.hpp"
#include "daemon/metrics.hpp"
#include "daemon/state_store.hpp"
#include "daemon/tracker_link.hpp"
#include "daemon/upload_server.hpp"
#include "proto/control.hpp"

namespace peershare::peerd {

struct PeerConfig {
    std::string name;
    common::Endpoint tracker{"127.0.0.1", 9999};
    common::Endpoint listen{"0.0.0.0", 0};
    std::string advertise;
    std::string state_dir;
    unsigned workers = 4;
    UploadLimits uploads;
};

class Peer {
public:
    using PublishDone = std::function<void(proto::Result<proto::Published>)>;
    using SearchDone = std::function<void(proto::Result<proto::IndexReply>)>;
    using ListDone = std::function<void(proto::Publications)>;
    // A fetch answers with exactly one of: choices, a fetched file, an error.
    struct FetchCallbacks {
        std::function<void(const proto::Progress&)> progress;
        std::function<void(proto::Choices)> choices;
        std::function<void(proto::Result<proto::FetchedFile>)> done;
    };

    Peer(uv_loop_t* loop, const common::Log& log, PeerConfig config);
    ~Peer();

    proto::Result<bool> start();
    void stop();   // stops serving and fetching, flushes state

    void publish(const std::string& path, const std::string& name, PublishDone done);
    proto::Result<bool> unpublish(const std::string& name);
    // Every publication, after a stat of each file in the worker pool (so the
    // list tells the truth about changed files without the loop waiting on
    // the disk).
    void list(ListDone done);
    void search(const std::string& text, SearchDone done);
    proto::Status status() const;
    // For /metrics (--metrics-listen): the counters, and the gauges as of now.
    const PeerMetrics& metrics() const { return metrics_; }
    PeerGauges gauges() const;
    // Returns a transfer id for cancel_fetch.
    std::uint64_t fetch(const proto::FetchFile& request, FetchCallbacks callbacks);
    void cancel_fetch(std::uint64_t transfer);

    std::uint16_t upload_port() const { return uploads_.port(); }
    // New limits for the upload server (SIGHUP); requests already served keep going.
    void set_upload_limits(UploadLimits limits);

private:
    proto::Publications publications() const;

    struct Transfer;

    void restore_publications();
    void finish_publish(proto::Result<Publication> hashed, const std::string& name, const PublishDone& done);
    void save_state();
    void start_transfer(std::uint64_t transfer_id, const proto::FetchFile& request,
                        const std::vector<proto::Holder>& holders);
    void end_transfer(std::uint64_t transfer_id);

    uv_loop_t* loop_;
    const common::Log& log_;
    PeerConfig config_;
    PeerMetrics metrics_;   // before uploads_ and the fetches, which count into it
    Catalog catalog_;
    StateStore store_;
    UploadServer uploads_;
    std::unique_ptr<TrackerLink> link_;
    std::map<std::uint64_t, std::shared_ptr<HashJob>> hashing_;
    // Expires when the Peer stops: a list still in the pool then (it may
    // finish after the Peer and the control server are gone) answers nobody.
    std::shared_ptr<bool> serving_ = std::make_shared<bool>(true);
    std::uint64_t next_hash_ = 1;
    std::map<std::uint64_t, std::unique_ptr<Transfer>> transfers_;
    std::uint64_t next_transfer_ = 1;
};

}  // namespace peershare::peerd
