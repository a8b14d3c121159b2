// tests/integration/harness.hpp — the fixture library of the integration
// tests: temp directories, real processes started with posix_spawn (their
// output captured in files), CLI runs to completion, polling a condition
// with a deadline (never sleeping to synchronise), and a TrackerFixture that
// starts the real trackerd on 127.0.0.1 with an ephemeral port (or a chosen
// one) and a private admin socket, and a PeerFixture that runs the real peerd
// against it and drives it with peerctl. Every process a test starts is killed by its owner's
// destructor, and by a crash handler if the test binary dies first, so no
// test leaks a process. Binary paths come from compile definitions set by
// tests/CMakeLists.txt.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/client.hpp"
#include "proto/messages.hpp"

namespace peershare::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

inline constexpr Millis kDeadline{10'000};  // for anything that should happen promptly

bool contains(std::string_view text, std::string_view part);

// The one JSON document `text` holds (a CLI's --json output); throws with the
// text if it is not one.
nlohmann::json parse_json(const std::string& text);

// The binaries under test, as built.
fs::path trackerd_binary();
fs::path trackerctl_binary();
fs::path fake_peer_binary();
fs::path peerd_binary();
fs::path peerctl_binary();

// Variables added to (or overriding) the test's own environment.
using Env = std::map<std::string, std::string>;

// Calls `done` every ~20 ms until it returns true or `deadline` has passed;
// returns its last answer. The one way tests wait for something to happen.
bool wait_until(const std::function<bool()>& done, Millis deadline);

// Installs handlers for fatal signals (abort, segfault, SIGTERM from a test
// runner's timeout, ...) that SIGKILL every child still running, then let the
// previous handler run. Call once from main, before the test framework
// installs its own handlers (which then chain to these).
void install_crash_cleanup();

// 64 lowercase hex digits derived from `seed`: peer keys and content ids that
// are stable across runs and differ for different seeds.
std::string hex64(std::string_view seed);

// A TCP port on 127.0.0.1 that nobody listened on when asked (bound to port 0,
// then closed): for a server that must come up later on a known port, or for
// an address where a connection is refused.
std::uint16_t free_port();

// A raw client socket, for what a well-behaved client never sends: TCP to a
// port on 127.0.0.1, or a Unix socket. Throws if it cannot connect.
class RawConnection {
public:
    explicit RawConnection(std::uint16_t port);
    explicit RawConnection(const fs::path& unix_path);
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    // False if the other side is gone; MSG_NOSIGNAL so that is not a SIGPIPE.
    bool send_all(std::string_view bytes);
    // One write per byte: the server sees the frame in as many pieces as the
    // kernel delivers separately.
    bool send_bytewise(std::string_view bytes);

    // The next frame, parsed; nothing if the connection closed or the deadline
    // passed first. Throws if the server sent a malformed frame. The
    // tracker's unasked `reachability` message (sent a moment after the
    // welcome, docs/protocol.md §7.10) is skipped unless keep_reachability(true).
    std::optional<proto::Envelope> read_frame(Millis deadline);
    void keep_reachability(bool on) { keep_reachability_ = on; }

    // True once the other side closed (end of file or reset) within the
    // deadline; whatever arrives before that is discarded.
    bool closed_within(Millis deadline);
    // Everything that arrives until the other side closes or the deadline passes.
    std::string read_until_closed(Millis deadline);
    // Exactly the next n bytes (a raw stream: the relay), or nothing if the
    // other side closed or the deadline passed first.
    std::optional<std::string> read_bytes(std::size_t n, Millis deadline);

private:
    // Reads what arrives before `until` into buffer_; false at end of file,
    // error or the deadline.
    bool fill(Clock::time_point until);

    int fd_;
    std::string buffer_;
    bool eof_ = false;
    bool keep_reachability_ = false;
};

// A fresh directory under $TMPDIR or /tmp (short, so Unix socket paths fit),
// removed with everything in it by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }
    fs::path operator/(std::string_view name) const { return path_ / name; }

private:
    fs::path path_;
};

// A child process: stdin from /dev/null, stdout and stderr into files in
// `log_dir`. The destructor kills (SIGKILL) and reaps it if still running.
class Process {
public:
    Process(fs::path binary, std::vector<std::string> args, const fs::path& log_dir,
            const Env& env = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    // Non-blocking: true once the process has ended (it is reaped then).
    bool exited();
    bool running() { return !exited(); }
    // The exit status, or 128 + signal number if a signal ended it; nothing
    // while it runs.
    std::optional<int> exit_code();
    // Sends a signal (no effect once it has exited).
    void signal(int signo);
    // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit code.
    int stop(Millis grace = 5s);
    // Waits for it to end on its own; the exit code, or nothing at the deadline.
    std::optional<int> wait(Millis deadline);

    std::string output() const;  // everything written to stdout so far
    std::string errors() const;  // everything written to stderr so far
    // A summary for failure messages: the command, exit status and both streams.
    std::string describe();

private:
    fs::path binary_;
    std::vector<std::string> args_;
    fs::path out_path_;
    fs::path err_path_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

struct RunResult {
    int exit_code = -1;  // 128 + signal if killed; -1 if it could not start
    std::string out;
    std::string err;
    bool timed_out = false;  // killed at the timeout
    std::string describe() const;
};

// Runs argv[0] (a path) to completion, capturing stdout and stderr; killed
// (SIGKILL) if still running at `timeout`. It runs in `cwd` if given, else in
// the test's own working directory.
RunResult run(const std::vector<std::string>& argv, const Env& env = {}, Millis timeout = 20s,
              const fs::path& cwd = {});

// The value of the sample written exactly `sample` (a name with its labels,
// `x_total{kind="a"}`) in a Prometheus exposition; -1 if absent.
double metric_sample(const std::string& exposition, const std::string& sample);
// `promtool check metrics` on an exposition (written to a file in `dir`).
RunResult promtool_check(const std::string& exposition, const fs::path& dir);

// The real trackerd, listening on 127.0.0.1 at a port the kernel chose (or
// `Options::port`), with its admin socket in a temp dir of its own.
class TrackerFixture {
public:
    struct Options {
        std::optional<std::uint32_t> heartbeat_s;  // trackerd's default if unset
        std::optional<std::uint32_t> peer_timeout_s;
        std::vector<std::string> extra_args;
        std::uint16_t port = 0;  // 0: the kernel picks one
        std::uint16_t http_port = 0;  // --http-listen 127.0.0.1:PORT; 0: the kernel picks one
    };

    TrackerFixture() : TrackerFixture(Options{}) {}
    explicit TrackerFixture(Options options);  // throws if trackerd does not come up
    ~TrackerFixture();

    std::uint16_t port() const { return port_; }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
    std::uint16_t http_port() const { return http_port_; }   // the dashboard, /metrics, the API
    const fs::path& socket() const { return socket_; }
    TempDir& dir() { return dir_; }
    Process& process() { return *tracker_; }
    bool running() { return tracker_->running(); }
    int stop() { return tracker_->stop(); }
    // Stops trackerd (SIGTERM) and starts a new one on the same port and admin
    // socket, with the same options: an empty index the peers must fill again.
    void restart();

    // trackerctl --socket <ours> ARGS..., run to completion.
    RunResult trackerctl(const std::vector<std::string>& args, Millis timeout = 20s);
    template <class... A>
    requires(std::is_constructible_v<std::string, A>&&...) RunResult trackerctl(A&&... args) {
        return trackerctl(std::vector<std::string>{std::string(std::forward<A>(args))...});
    }
    // trackerctl --socket <ours> ARGS... left running (events --follow).
    std::unique_ptr<Process> start_trackerctl(const std::vector<std::string>& args);

    // fake_peer --tracker <ours> --name NAME ARGS..., not waited for.
    std::unique_ptr<Process> spawn_peer(const std::string& name,
                                        const std::vector<std::string>& args = {});
    // The same, once it has printed `ready`; throws with its stderr if it ends first.
    std::unique_ptr<Process> start_peer(const std::string& name,
                                        const std::vector<std::string>& args = {});

    // An in-process peer session (hello done, welcome received) on a blocking
    // client; it answers pings only while the caller waits on it.
    std::unique_ptr<common::Client> connect_peer(const std::string& name,
                                                 std::uint16_t upload_port = 7000,
                                                 const std::string& key = {});

private:
    void launch(std::uint16_t port);  // throws if trackerd does not come up

    Options options_;
    TempDir dir_;
    fs::path socket_;
    std::unique_ptr<Process> tracker_;
    std::uint16_t port_ = 0;
    std::uint16_t http_port_ = 0;
};

// The real peerd NAME, started with
//   --tracker TRACKER --name NAME --listen LISTEN (127.0.0.1:0) --socket DIR/NAME.sock
//   --state-dir DIR/NAME/state --config /dev/null --workers 2
// (its logs in DIR/NAME), ready once `peerctl status` answers. The tracker
// need not be up: peerd keeps trying. stop() and start() again keep the state
// directory, as a restart of the service does.
class PeerFixture {
public:
    struct Options {
        std::vector<std::string> extra_args;  // appended to peerd's command line
        std::string listen = "127.0.0.1:0";    // its --listen (a fixed port, to be known before it starts)
    };

    // Starts it; throws with its log if it does not answer in time.
    PeerFixture(std::string name, std::string tracker, const fs::path& dir, Options options);
    PeerFixture(std::string name, std::string tracker, const fs::path& dir)
        : PeerFixture(std::move(name), std::move(tracker), dir, Options{}) {}
    ~PeerFixture();  // SIGTERM, then SIGKILL after a grace period
    PeerFixture(const PeerFixture&) = delete;
    PeerFixture& operator=(const PeerFixture&) = delete;

    void start();  // after stop() or kill(): the same name, socket and state directory
    int stop(Millis grace = 5s);  // SIGTERM; the exit code
    void kill();                  // SIGKILL, no goodbye to anybody
    bool running() { return peerd_ && peerd_->running(); }

    const std::string& name() const { return name_; }
    const std::string& tracker() const { return tracker_; }
    const fs::path& dir() const { return dir_; }  // DIR/NAME: logs, state, free for test files
    const fs::path& socket() const { return socket_; }
    fs::path state_dir() const { return dir_ / "state"; }
    std::uint16_t port() const { return port_; }  // the upload (HTTP) port, from `status`
    Process& process() { return *peerd_; }

    // peerctl --socket <ours> ARGS..., run to completion (in `cwd` if given).
    RunResult peerctl(const std::vector<std::string>& args, Millis timeout = 60s,
                      const fs::path& cwd = {});
    template <class... A>
    requires(std::is_constructible_v<std::string, A>&&...) RunResult peerctl(A&&... args) {
        return peerctl(std::vector<std::string>{std::string(std::forward<A>(args))...});
    }

    // peerctl --socket <ours> ARGS... left running (a fetch to interrupt), its
    // output logged in dir().
    std::unique_ptr<Process> start_peerctl(const std::vector<std::string>& args);

    std::string describe();  // peerd's command line, state and log, for failure messages

private:
    std::string name_;
    std::string tracker_;
    fs::path dir_;
    fs::path socket_;
    Options options_;
    std::unique_ptr<Process> peerd_;
    std::uint16_t port_ = 0;
};

// Starts peerd NAME against `tracker` (HOST:PORT) with its files under DIR/NAME.
std::unique_ptr<PeerFixture> start_peer(const std::string& name, const std::string& tracker,
                                        const fs::path& dir, PeerFixture::Options options = {});

}  // namespace peershare::test
