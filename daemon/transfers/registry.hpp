// daemon/transfers/registry.hpp — the transfers peerd owns: every download
// is a transfer that is queued, run, paused, resumed, cancelled and listed
// here, independent of any peerctl process, and persisted so that it comes
// back after a stop, SIGKILL or reboot (docs/design.md, "The life of a
// transfer").
//
// States: queued (waiting for one of max_active slots) → running (looking up
// holders, then a Fetch) → done; running → waiting (no live holder: ask the
// tracker again with backoff up to 60 s, continue by itself) → queued; any
// unfinished state → paused (by `peerctl pause`, or Ctrl-C in the peerctl that
// follows it) → queued on resume; running → failed (with the reason; resumable).
// A new transfer that fails before it holds a single verified piece is
// forgotten (record and partial file), as a fetch that never started.
//
// Persistence goes through TransferStore (the state database's writer); the
// registry calls it on the loop thread and never waits for it.
//
// Threads: loop thread only. File-system work (leftover scans, removing a
// partial file) runs in the worker pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "common/uv.hpp"
#include "daemon/fetch/engine.hpp"
#include "daemon/transfer_record.hpp"
#include "daemon/transfers/holder_choice.hpp"
#include "proto/control.hpp"
#include "proto/transfers.hpp"

namespace peershare::peerd {

// Where the registry persists records. Calls return at once; the writes
// happen later, in order.
class TransferStore {
public:
    virtual ~TransferStore() = default;
    // A fresh id, never given before by this database.
    virtual std::uint64_t next_transfer_id() = 0;
    // The whole row (insert or replace).
    virtual void put_transfer(const TransferRecord& record) = 0;
    // The frequent update: the durable bitfield, state and error (coalesced).
    virtual void put_transfer_progress(std::uint64_t id, const proto::Bitfield& have, TransferState state,
                                       const std::string& error) = 0;
    virtual void remove_transfer(std::uint64_t id) = 0;
};

// While a transfer runs, the tracker is asked again this often for holders
// of its content: fetchers of the same file that became partial holders
// join as sources (issue 10).
inline constexpr std::uint64_t kSwarmLookupMs = 2'000;

// A fetch whose holders are all unreachable while the tracker is still
// checking our own reachability waits at most this long for the verdict (the
// check's own deadline, proto::kReachDeadlineMs, plus a margin) before it
// chooses again with what is known.
inline constexpr std::uint64_t kOwnReachWaitMs = 3'000;

struct RegistryConfig {
    std::string self;             // this peer's name
    unsigned max_active = 4;      // transfers running at once (--max-active-fetches)
    unsigned max_sources = 0;     // per transfer, 0 = every holder (--max-sources)
    bool share_fetched = true;    // a fetch that does not say publishes its file once done (--share-fetched)
    RequestDeadlines deadlines;   // of every request to a holder (--holder-deadline)
};

// What the registry needs from the rest of peerd.
struct RegistryHooks {
    // Asks the tracker who holds `name`; `done` gets the holders or an error.
    std::function<void(const std::string& name,
                       std::function<void(proto::Result<std::vector<proto::Holder>>)> done)>
        lookup;
    // A transfer completed: the verified file is at record.destination
    // (record.share: the user wants it published under record.name).
    std::function<void(const TransferRecord& record, const std::vector<std::string>& sources_used)> completed;
    // What a transfer holds changed (`serve`: its verified pieces may be
    // served from its partial file, as its engine re-verified them and the
    // user did not say --no-share), or it no longer holds anything to serve
    // (done, cancelled, replaced, forgotten: `serve` false).
    std::function<void(const TransferRecord& record, bool serve)> holding;
    // How this peer stands for the holders the tracker found unreachable
    // (choose_holders): our reachability, and whether a relay source can be
    // made. Empty: unknown, no relay (such holders are left out).
    std::function<OwnReach()> own_reach;
    // A source for `holder` (reachable == false) reached by `route` (reverse
    // or relay, never none): Source::handed set, `via` saying which; never
    // dialled at its address. Required when own_reach can give a route.
    std::function<Source(const proto::Holder& holder, HiddenRoute route)> hidden_source;
    // Makes the engine for a request (with the daemon's shared buffer pool
    // and download limit); not started.
    std::function<std::unique_ptr<Fetch>(FetchRequest, Fetch::Callbacks)> make_fetch;
};

class TransferRegistry {
public:
    // One client's view of a fetch: exactly one of `choices` and `done` ends
    // it; `accepted` comes first when a transfer exists, then progress (~4/s)
    // unless the request was detached.
    struct Follow {
        std::function<void(proto::Choices)> choices;
        std::function<void(const proto::TransferAccepted&)> accepted;
        std::function<void(const proto::Progress&)> progress;
        std::function<void(proto::Result<proto::FetchedFile>)> done;
    };

    TransferRegistry(uv_loop_t* loop, const common::Log& log, RegistryConfig config, TransferStore& store,
                     RegistryHooks hooks);
    ~TransferRegistry();
    TransferRegistry(const TransferRegistry&) = delete;
    TransferRegistry& operator=(const TransferRegistry&) = delete;

    // At start, before serving: the records of the state database. Unfinished
    // ones (queued, running, waiting) continue by themselves; paused, failed
    // and done ones stay as they are.
    void restore(std::vector<TransferRecord> records);

    // `peerctl fetch`. Returns a follower token for forget_follower.
    std::uint64_t fetch(const proto::FetchFile& request, Follow follow);
    // The client behind `token` went away. If it was following a transfer
    // that is still unfinished, the transfer is paused (Ctrl-C in peerctl).
    void forget_follower(std::uint64_t token);

    // The tracker gave its verdict on our own reachability (TrackerLink::
    // on_reach_verdict): fetches that waited for it (wait_for_own_reach)
    // choose their holders again now.
    void reach_known();

    // The tracker (re)connected: waiting transfers ask it again now instead
    // of at the end of their backoff (at start, the restored ones asked
    // before the link was up).
    void tracker_connected();

    proto::Result<proto::TransferInfo> pause(std::uint64_t id);
    proto::Result<proto::TransferInfo> resume(std::uint64_t id);
    proto::Result<bool> cancel(std::uint64_t id);
    // Every transfer, and the leftover partial files beside their destinations
    // (scanned in the pool).
    void list(std::function<void(proto::TransferList)> done);
    // Unfinished transfers as name/done/total (peerctl status).
    std::vector<proto::Transfer> summary() const;
    // How many transfers are in each state now (peerd's /metrics); states
    // with none are absent. Cancelled transfers on their way out are not
    // counted.
    std::map<TransferState, std::size_t> count_by_state() const;

    // The clean stop's first step (SIGTERM): asks every running Fetch to make
    // what it verified durable and stop (Fetch::cancel), keeps their records
    // `running` so the next start continues them, ends followers with a line
    // saying so, starts nothing new; then calls `drained` once, on the loop,
    // when the last Fetch has reported or after `deadline_ms`, whichever comes
    // first. Call stop() afterwards.
    void drain(std::uint64_t deadline_ms, std::function<void()> drained);
    // Stops every Fetch (keeping partial files; without drain() first, pieces
    // verified in the last second may be fetched again after the restart) and
    // persists each state; the registry answers nothing after this.
    void stop();

private:
    struct Transfer;
    struct Follower {
        std::uint64_t token = 0;
        bool detached = false;
        Follow follow;
    };

    Transfer* find(std::uint64_t id);
    Transfer* by_destination(const std::string& destination);
    void create(const proto::FetchFile& request, std::vector<proto::Holder> holders, bool adopt,
                std::uint64_t token, Follow follow);
    void attach(Transfer& t, const proto::FetchFile& request, std::uint64_t token, Follow follow);
    void pump();
    void run(Transfer& t);
    void start_fetch(Transfer& t, const std::vector<proto::Holder>& holders);
    void on_done(std::uint64_t id, proto::Result<FetchResult> result);
    void enter_waiting(Transfer& t, const std::string& why);
    void lookup_again(std::uint64_t id);
    // Asks the tracker for live holders of t's content. If t is still in
    // `expected` and no other run began meanwhile, `found` gets them (at least
    // one); with none, or when the lookup fails, t waits (enter_waiting).
    using HoldersFound = std::function<void(Transfer&, std::vector<proto::Holder>)>;
    void lookup_holders(Transfer& t, TransferState expected, HoldersFound found);
    // The rest of lookup_holders, once the tracker answered: `may_wait` lets
    // it wait once for our own reachability (after_own_reach).
    void holders_looked_up(std::uint64_t id, std::uint64_t generation, TransferState expected,
                           const HoldersFound& found, proto::Result<std::vector<proto::Holder>> r, bool may_wait);
    // The rest of fetch(), once the tracker answered; `may_wait` as above.
    void fetch_looked_up(const proto::FetchFile& request, std::uint64_t token, Follow follow,
                         proto::Result<std::vector<proto::Holder>> r, bool may_wait);
    // Runs `then` on the loop once the tracker's check of our own
    // reachability has answered (reach_known) or after kOwnReachWaitMs,
    // whichever comes first; logs first that `who` (a transfer's label, or
    // 'NAME') waits.
    void after_own_reach(const std::string& who, std::function<void()> then);
    // A source for the holder behind `direct` by another way, after its
    // direct connect failed (FetchRequest::fallback; fallback_route).
    FetchRequest::Fallback fallback_source(std::uint64_t id, const Source& direct, const std::string& why);
    void look_for_sources(std::uint64_t id);
    OwnReach own_reach() const;
    // The engine's sources for `holders`: direct ones at their address, the
    // ones the tracker found unreachable through hooks_.hidden_source (left
    // out when there is no route to them now).
    std::vector<Source> sources_for(const std::vector<proto::Holder>& holders) const;
    void set_state(Transfer& t, TransferState state, std::string error = {});
    void stop_fetch(Transfer& t);
    void end_followers(Transfer& t, const proto::Result<proto::FetchedFile>& outcome);
    void forget(std::uint64_t id, bool remove_partial);
    proto::TransferInfo info(const Transfer& t) const;
    proto::TransferAccepted accepted(const Transfer& t, bool resumed) const;
    unsigned active() const;
    void check_drained();
    bool fetch_running() const;   // some transfer still has an engine
    static void on_drain_timer(uv_timer_t* timer);

    uv_loop_t* loop_;
    const common::Log& log_;
    RegistryConfig config_;
    TransferStore& store_;
    RegistryHooks hooks_;
    std::map<std::uint64_t, std::unique_ptr<Transfer>> transfers_;   // by id, oldest first
    std::uint64_t next_token_ = 1;
    // Followers that went away while their fetch was still looking up.
    std::set<std::uint64_t> gone_tokens_;
    std::mt19937_64 rng_{std::random_device{}()};
    // Set by drain(): called once no Fetch is left (or at the deadline).
    std::function<void()> drained_;
    std::unique_ptr<common::Timer> drain_deadline_;
    // Fetches waiting for the verdict on our own reachability (after_own_reach),
    // and the deadline of their wait.
    std::vector<std::function<void()>> awaiting_reach_;
    std::unique_ptr<common::Timer> reach_wait_;
    bool draining_ = false;
    // Expires with the registry: callbacks from the pool or the tracker that
    // come back later answer nobody.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace peershare::peerd
