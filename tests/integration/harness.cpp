// tests/integration/harness.cpp — processes, temp dirs and the tracker and
// peer fixtures of the integration tests.
#include "tests/integration/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "proto/messages.hpp"

#ifndef PEERSHARE_TRACKERD_BIN
#error "PEERSHARE_TRACKERD_BIN must be defined by the build (path of trackerd)"
#endif
#ifndef PEERSHARE_TRACKERCTL_BIN
#error "PEERSHARE_TRACKERCTL_BIN must be defined by the build (path of trackerctl)"
#endif
#ifndef PEERSHARE_FAKE_PEER_BIN
#error "PEERSHARE_FAKE_PEER_BIN must be defined by the build (path of fake_peer)"
#endif
#ifndef PEERSHARE_PEERD_BIN
#error "PEERSHARE_PEERD_BIN must be defined by the build (path of peerd)"
#endif
#ifndef PEERSHARE_PEERCTL_BIN
#error "PEERSHARE_PEERCTL_BIN must be defined by the build (path of peerctl)"
#endif

extern char** environ;

namespace peershare::test {
namespace {

constexpr Millis kPollInterval{20};
constexpr Millis kStartDeadline{10'000};  // generous: sanitizer builds start slowly
constexpr std::string_view kListeningMarker = "listening for peers on 127.0.0.1:";
constexpr std::string_view kHttpMarker = "dashboard, /metrics and API on http://127.0.0.1:";

// The port after `marker` in `log`, or 0.
std::uint16_t port_after(const std::string& log, std::string_view marker) {
    const auto at = log.find(marker);
    if (at == std::string::npos) return 0;
    const long port = std::strtol(log.c_str() + at + marker.size(), nullptr, 10);
    return port > 0 && port < 65536 ? static_cast<std::uint16_t>(port) : 0;
}

// ---- children to kill if the test binary dies (see install_crash_cleanup) ----

constexpr std::size_t kMaxTracked = 256;
std::array<std::atomic<pid_t>, kMaxTracked> g_children{};
struct sigaction g_previous[NSIG];
constexpr std::array kFatalSignals{SIGABRT, SIGSEGV, SIGBUS, SIGFPE,
                                   SIGILL,  SIGTERM, SIGINT, SIGHUP};

void track(pid_t pid) {
    for (auto& slot : g_children) {
        pid_t empty = 0;
        if (slot.compare_exchange_strong(empty, pid)) return;
    }
}

void untrack(pid_t pid) {
    for (auto& slot : g_children) {
        pid_t expected = pid;
        if (slot.compare_exchange_strong(expected, 0)) return;
    }
}

extern "C" void kill_children_and_reraise(int signo) {
    for (auto& slot : g_children) {
        if (const pid_t pid = slot.load(); pid > 0) kill(pid, SIGKILL);
    }
    sigaction(signo, &g_previous[signo], nullptr);
    raise(signo);  // delivered when this handler returns, to the previous disposition
}

// ---- spawning ----

std::vector<std::string> merged_environment(const Env& extra) {
    std::vector<std::string> out;
    for (char** e = environ; *e; ++e) {
        const std::string_view entry(*e);
        if (!extra.contains(std::string(entry.substr(0, entry.find('='))))) out.emplace_back(entry);
    }
    for (const auto& [key, value] : extra) out.push_back(key + "=" + value);
    return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// RAII over the two posix_spawn parameter objects.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;

    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
        // The child starts with no signal blocked and the usual dispositions,
        // whatever the test runner did to its own.
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) sigaddset(&defaults, s);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    pid_t spawn(std::vector<std::string> argv, const Env& env) {
        auto environment = merged_environment(env);
        auto c_argv = c_strings(argv);
        auto c_env = c_strings(environment);
        pid_t pid = -1;
        const int rc =
            posix_spawn(&pid, argv.front().c_str(), &actions, &attr, c_argv.data(), c_env.data());
        if (rc != 0)
            throw std::runtime_error("cannot start " + argv.front() + ": " + std::strerror(rc));
        track(pid);
        return pid;
    }
};

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

// Reads what is available on fd into `into`; false at end of file.
bool drain(int fd, std::string& into) {
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN);
}

}  // namespace

fs::path trackerd_binary() { return PEERSHARE_TRACKERD_BIN; }
fs::path trackerctl_binary() { return PEERSHARE_TRACKERCTL_BIN; }
fs::path fake_peer_binary() { return PEERSHARE_FAKE_PEER_BIN; }
fs::path peerd_binary() { return PEERSHARE_PEERD_BIN; }
fs::path peerctl_binary() { return PEERSHARE_PEERCTL_BIN; }

void install_crash_cleanup() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = kill_children_and_reraise;
        sigemptyset(&sa.sa_mask);
        for (int s : kFatalSignals) sigaction(s, &sa, &g_previous[s]);
    });
}

bool wait_until(const std::function<bool()>& done, Millis deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return done();
        std::this_thread::sleep_for(kPollInterval);  // the polling period, not a synchronisation
    }
    return true;
}

std::string hex64(std::string_view seed) {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then splitmix64 to spread it
    for (unsigned char c : seed) h = (h ^ c) * 0x100000001b3ull;
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (int word = 0; word < 4; ++word) {
        h += 0x9e3779b97f4a7c15ull;
        std::uint64_t z = h;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        for (int nibble = 15; nibble >= 0; --nibble)
            out.push_back(kDigits[(z >> (nibble * 4)) & 0xf]);
    }
    return out;
}

std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    close(fd);
    if (!ok) throw std::runtime_error(std::string("no free port: ") + std::strerror(errno));
    return ntohs(addr.sin_port);
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

nlohmann::json parse_json(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw std::runtime_error("not one JSON document:\n" + text);
    return j;
}

// ---- RawConnection ----

namespace {

// Connects a fresh socket of `family` to `addr`; throws, leaking nothing, if it cannot.
int connect_raw(int family, const sockaddr* addr, socklen_t len, const std::string& what) {
    const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (connect(fd, addr, len) != 0) {
        const int error = errno;
        close(fd);
        throw std::runtime_error("cannot connect to " + what + ": " + std::strerror(error));
    }
    return fd;
}

int connect_tcp(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int fd = connect_raw(AF_INET, reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                               "127.0.0.1:" + std::to_string(port));
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int connect_unix(const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    return connect_raw(AF_UNIX, reinterpret_cast<sockaddr*>(&addr), sizeof addr, path.string());
}

}  // namespace

RawConnection::RawConnection(std::uint16_t port) : fd_(connect_tcp(port)) {}
RawConnection::RawConnection(const fs::path& unix_path) : fd_(connect_unix(unix_path)) {}
RawConnection::~RawConnection() { close(fd_); }

bool RawConnection::send_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool RawConnection::send_bytewise(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (!send_all(bytes.substr(i, 1))) return false;
    }
    return true;
}

std::optional<proto::Envelope> RawConnection::read_frame(Millis deadline) {
    const auto until = Clock::now() + deadline;
    while (true) {
        if (buffer_.size() >= 4) {
            const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
            const std::size_t len = (std::size_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
            if (buffer_.size() >= 4 + len) {
                auto env = proto::parse_envelope(std::string_view(buffer_).substr(4, len));
                buffer_.erase(0, 4 + len);
                if (!env) throw std::runtime_error("the server sent a malformed frame");
                if (env->type == proto::Reachability::kType && !env->id && !keep_reachability_) continue;
                return std::move(*env);
            }
        }
        if (!fill(until)) return std::nullopt;
    }
}

bool RawConnection::closed_within(Millis deadline) {
    const auto until = Clock::now() + deadline;
    while (!eof_) {
        buffer_.clear();
        if (!fill(until) && !eof_) return false;
    }
    return true;
}

std::string RawConnection::read_until_closed(Millis deadline) {
    const auto until = Clock::now() + deadline;
    while (fill(until)) {
    }
    return std::exchange(buffer_, {});
}

std::optional<std::string> RawConnection::read_bytes(std::size_t n, Millis deadline) {
    const auto until = Clock::now() + deadline;
    while (buffer_.size() < n && fill(until)) {
    }
    if (buffer_.size() < n) return std::nullopt;
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
}

bool RawConnection::fill(Clock::time_point until) {
    if (eof_) return false;
    const auto left = std::chrono::duration_cast<Millis>(until - Clock::now());
    if (left <= Millis{0}) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
        eof_ = true;  // orderly close, or reset
        return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
}

// ---- TempDir ----

TempDir::TempDir() {
    // $TMPDIR if it leaves room for a socket name (sun_path holds 108 bytes).
    constexpr std::size_t kMaxBaseLength = 64;
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string base =
        tmpdir && *tmpdir && std::strlen(tmpdir) <= kMaxBaseLength ? tmpdir : "/tmp";
    std::string pattern = base + "/peershare-it-XXXXXX";
    if (!mkdtemp(pattern.data()))
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // best effort: a destructor must not throw
}

// ---- Process ----

Process::Process(fs::path binary, std::vector<std::string> args, const fs::path& log_dir,
                 const Env& env)
    : binary_(std::move(binary)), args_(std::move(args)) {
    static std::atomic<int> counter{0};
    const std::string stem = binary_.filename().string() + "." + std::to_string(++counter);
    out_path_ = log_dir / (stem + ".stdout");
    err_path_ = log_dir / (stem + ".stderr");
    SpawnSetup setup;
    constexpr int kFlags =
        O_WRONLY | O_CREAT | O_TRUNC;  // not O_CLOEXEC: these are the child's own fds
    posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, out_path_.c_str(), kFlags,
                                     0644);
    posix_spawn_file_actions_addopen(&setup.actions, STDERR_FILENO, err_path_.c_str(), kFlags,
                                     0644);
    std::vector<std::string> argv{binary_.string()};
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = setup.spawn(std::move(argv), env);
}

Process::~Process() {
    if (exited()) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    untrack(pid_);
}

bool Process::exited() {
    if (status_) return true;
    int status = 0;
    const pid_t rc = waitpid(pid_, &status, WNOHANG);
    if (rc == 0) return false;
    status_ = rc == pid_ ? decode_status(status) : -1;
    untrack(pid_);
    return true;
}

std::optional<int> Process::exit_code() {
    if (!exited()) return std::nullopt;
    return status_;
}

void Process::signal(int signo) {
    if (!exited()) kill(pid_, signo);
}

std::optional<int> Process::wait(Millis deadline) {
    wait_until([this] { return exited(); }, deadline);
    return exit_code();
}

int Process::stop(Millis grace) {
    signal(SIGTERM);
    if (auto code = wait(grace)) return *code;
    signal(SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = decode_status(status);
    untrack(pid_);
    return *status_;
}

std::string Process::output() const { return read_file(out_path_); }
std::string Process::errors() const { return read_file(err_path_); }

std::string Process::describe() {
    std::string status = "running";
    if (auto code = exit_code()) status = "exit code " + std::to_string(*code);
    return binary_.filename().string() + " " + join(args_) + " (" + status + ")\n--- stdout ---\n" +
           output() + "--- stderr ---\n" + errors();
}

// ---- run ----

std::string RunResult::describe() const {
    return "exit code " + std::to_string(exit_code) +
           (timed_out ? " (killed at the timeout)" : "") + "\n--- stdout ---\n" + out +
           "--- stderr ---\n" + err;
}

RunResult run(const std::vector<std::string>& argv, const Env& env, Millis timeout,
              const fs::path& cwd) {
    RunResult result;
    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        throw std::runtime_error("pipe2 failed");
    }
    pid_t pid = -1;
    try {
        SpawnSetup setup;
        posix_spawn_file_actions_adddup2(&setup.actions, out_pipe[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&setup.actions, err_pipe[1], STDERR_FILENO);
        if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&setup.actions, cwd.c_str());
        pid = setup.spawn(argv, env);
    } catch (...) {
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
        throw;
    }
    close(out_pipe[1]);
    close(err_pipe[1]);

    const auto until = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_pipes = 2;
    while (open_pipes > 0) {
        const auto left =
            std::chrono::duration_cast<Millis>(until - std::chrono::steady_clock::now());
        if (left <= Millis{0}) {
            result.timed_out = true;
            break;
        }
        if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!drain(fds[i].fd, *sinks[i])) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
    int status = 0;
    // Both pipes closed: the child is ending; give it the rest of the time to.
    const bool ended =
        !result.timed_out &&
        wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                   std::chrono::duration_cast<Millis>(until - std::chrono::steady_clock::now()));
    if (!ended) {
        result.timed_out = true;
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    untrack(pid);
    for (auto& fd : fds) {
        if (fd.fd >= 0) close(fd.fd);
    }
    result.exit_code = decode_status(status);
    return result;
}

// ---- metrics ----

double metric_sample(const std::string& exposition, const std::string& sample) {
    std::istringstream lines(exposition);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with(sample + " ")) return std::stod(line.substr(sample.size() + 1));
    }
    return -1;
}

RunResult promtool_check(const std::string& exposition, const fs::path& dir) {
    const auto file = dir / "metrics.txt";
    std::ofstream(file) << exposition;
    return run({"/bin/sh", "-c", "promtool check metrics < '" + file.string() + "'"});
}

// ---- TrackerFixture ----

TrackerFixture::TrackerFixture(Options options)
    : options_(std::move(options)), socket_(dir_ / "tracker.sock") {
    launch(options_.port);
}

void TrackerFixture::launch(std::uint16_t port) {
    // The HTTP listener on a port of its own (the default one may be taken by a parallel test).
    std::vector<std::string> args{"--listen", "127.0.0.1:" + std::to_string(port), "--admin-socket",
                                  socket_.string(), "--http-listen",
                                  "127.0.0.1:" + std::to_string(options_.http_port)};
    if (options_.heartbeat_s)
        args.insert(args.end(), {"--heartbeat", std::to_string(*options_.heartbeat_s)});
    if (options_.peer_timeout_s) {
        args.insert(args.end(), {"--peer-timeout", std::to_string(*options_.peer_timeout_s)});
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    tracker_ = std::make_unique<Process>(trackerd_binary(), args, dir_.path());
    port_ = 0;

    const auto listening = [this] {
        return tracker_->errors().find(kListeningMarker) != std::string::npos;
    };
    wait_until([&] { return listening() || tracker_->exited(); }, kStartDeadline);
    const std::string log = tracker_->errors();
    port_ = port_after(log, kListeningMarker);
    http_port_ = port_after(log, kHttpMarker);   // logged before the listening line
    if (port_ == 0 || http_port_ == 0) throw std::runtime_error("trackerd did not come up:\n" + tracker_->describe());
}

void TrackerFixture::restart() {
    const auto port = port_;
    options_.http_port = http_port_;
    tracker_->stop();
    launch(port);
}

TrackerFixture::~TrackerFixture() { tracker_->stop(); }

RunResult TrackerFixture::trackerctl(const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> argv{trackerctl_binary().string(), "--socket", socket_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, timeout);
}

std::unique_ptr<Process> TrackerFixture::start_trackerctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"--socket", socket_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Process>(trackerctl_binary(), argv, dir_.path());
}

std::unique_ptr<Process> TrackerFixture::spawn_peer(const std::string& name,
                                                    const std::vector<std::string>& args) {
    std::vector<std::string> argv{"--tracker", endpoint(), "--name", name};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Process>(fake_peer_binary(), argv, dir_.path());
}

std::unique_ptr<Process> TrackerFixture::start_peer(const std::string& name,
                                                    const std::vector<std::string>& args) {
    auto peer = spawn_peer(name, args);
    const auto ready = [&] { return peer->output().find("ready\n") != std::string::npos; };
    wait_until([&] { return ready() || peer->exited(); }, kStartDeadline);
    if (!ready())
        throw std::runtime_error("fake_peer " + name + " did not get ready:\n" + peer->describe());
    return peer;
}

std::unique_ptr<common::Client> TrackerFixture::connect_peer(const std::string& name,
                                                             std::uint16_t upload_port,
                                                             const std::string& key) {
    auto client = common::Client::connect_tcp({"127.0.0.1", port_}, kStartDeadline);
    if (!client)
        throw std::runtime_error("cannot connect to the tracker: " + client.error().message);
    proto::Hello hello;
    hello.name = name;
    hello.port = upload_port;
    hello.key = key.empty() ? hex64("key of " + name) : key;
    auto welcome = (*client)->request<proto::Welcome>(hello, kStartDeadline);
    if (!welcome)
        throw std::runtime_error("the tracker refused " + name + ": " + welcome.error().message);
    return std::move(*client);
}

// ---- PeerFixture ----

PeerFixture::PeerFixture(std::string name, std::string tracker, const fs::path& dir,
                         Options options)
    : name_(std::move(name)),
      tracker_(std::move(tracker)),
      dir_(dir / name_),
      socket_(dir / (name_ + ".sock")),
      options_(std::move(options)) {
    fs::create_directories(dir_);
    start();
}

PeerFixture::~PeerFixture() {
    if (peerd_) peerd_->stop();
}

void PeerFixture::start() {
    if (running()) throw std::logic_error("peerd " + name_ + " is already running");
    std::vector<std::string> args{"--tracker",   tracker_,
                                  "--name",      name_,
                                  "--listen",    options_.listen,
                                  "--socket",    socket_.string(),
                                  "--state-dir", state_dir().string(),
                                  "--config",    "/dev/null",
                                  "--workers",   "2"};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    peerd_ = std::make_unique<Process>(peerd_binary(), args, dir_);
    port_ = 0;

    RunResult status;
    const auto answers = [&] {
        status = peerctl({"status", "--json"}, kStartDeadline);
        return status.exit_code == 0;
    };
    wait_until([&] { return answers() || peerd_->exited(); }, kStartDeadline);
    if (status.exit_code != 0) {
        throw std::runtime_error("peerd " + name_ + " did not answer `peerctl status`:\n" +
                                 status.describe() + "\n" + describe());
    }
    const auto doc = nlohmann::json::parse(status.out, nullptr, false);
    if (doc.is_object() && doc.contains("port") && doc["port"].is_number_unsigned())
        port_ = doc["port"].get<std::uint16_t>();
    if (port_ == 0) {
        throw std::runtime_error("`peerctl status --json` gave no upload port:\n" +
                                 status.describe());
    }
}

int PeerFixture::stop(Millis grace) {
    if (!peerd_) return -1;
    return peerd_->stop(grace);
}

void PeerFixture::kill() {
    if (!peerd_) return;
    peerd_->signal(SIGKILL);
    peerd_->wait(kStartDeadline);
}

RunResult PeerFixture::peerctl(const std::vector<std::string>& args, Millis timeout,
                               const fs::path& cwd) {
    std::vector<std::string> argv{peerctl_binary().string(), "--socket", socket_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, timeout, cwd);
}

std::unique_ptr<Process> PeerFixture::start_peerctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"--socket", socket_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Process>(peerctl_binary(), argv, dir_);
}

std::string PeerFixture::describe() {
    return peerd_ ? peerd_->describe() : "peerd " + name_ + " (never started)";
}

std::unique_ptr<PeerFixture> start_peer(const std::string& name, const std::string& tracker,
                                        const fs::path& dir, PeerFixture::Options options) {
    return std::make_unique<PeerFixture>(name, tracker, dir, std::move(options));
}

}  // namespace peershare::test
