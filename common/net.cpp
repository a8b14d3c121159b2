// common/net.cpp — endpoints and listeners.
#include "common/net.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "proto/names.hpp"

namespace peershare::common {

using proto::Error;
using proto::ErrorCode;
using proto::Result;

namespace {

bool ipv4_refused(const std::uint8_t* a, std::string& why) {
    if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) why = "unspecified";
    else if ((a[0] & 0xF0) == 0xE0) why = "multicast";
    else if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255) why = "broadcast";
    return !why.empty();
}

}  // namespace

std::optional<std::string> refused_address(const sockaddr* address) {
    std::string why;
    char text[INET6_ADDRSTRLEN] = "?";
    if (address->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        ipv4_refused(reinterpret_cast<const std::uint8_t*>(&in->sin_addr), why);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    } else if (address->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        const auto* b = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) why = "unspecified";
        else if (b[0] == 0xFF) why = "multicast";
        else if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) ipv4_refused(b + 12, why);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    } else {
        return "not an internet address";
    }
    if (why.empty()) return std::nullopt;
    return std::string(text) + " is a" + (why == "unspecified" ? "n " : " ") + why + " address";
}

std::optional<std::string> refused_host(const std::string& host) {
    sockaddr_storage ss{};
    if (inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else if (inet_pton(AF_INET6, host.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
    } else {
        return std::nullopt;
    }
    return refused_address(reinterpret_cast<const sockaddr*>(&ss));
}

bool unspecified_host(const std::string& host) {
    const auto why = refused_host(host);
    return why && why->ends_with("an unspecified address");
}

Result<Endpoint> parse_endpoint(std::string_view text, bool allow_names) {
    const auto bad = [&](std::string why) {
        return Error{ErrorCode::bad_request, "'" + std::string(text) + "': " + why};
    };
    Endpoint e;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
            return bad("expected [IPv6]:PORT");
        }
        e.host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("expected ADDRESS:PORT");
        e.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (e.host.find(':') != std::string::npos) return bad("put an IPv6 address in brackets");
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
        return bad("the port must be a number from 0 to 65535");
    }
    e.port = static_cast<std::uint16_t>(port);
    if (e.host.empty()) return bad("the address is missing");
    if (!to_sockaddr(e).ok()) {
        if (!allow_names) return bad("not an IP address");
        if (proto::check_host(e.host)) return bad("not a host name");
    }
    return e;
}

std::string to_string(const Endpoint& e) {
    if (e.host.find(':') != std::string::npos) return "[" + e.host + "]:" + std::to_string(e.port);
    return e.host + ":" + std::to_string(e.port);
}

std::string ip_to_string(const sockaddr_storage& addr) {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
        uv_ip4_name(in, text, sizeof text);
    } else if (addr.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof text);
        } else {
            uv_ip6_name(in6, text, sizeof text);
        }
    }
    return text;
}

Result<sockaddr_storage> to_sockaddr(const Endpoint& e) {
    sockaddr_storage addr{};
    if (uv_ip4_addr(e.host.c_str(), e.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) return addr;
    if (uv_ip6_addr(e.host.c_str(), e.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) return addr;
    return Error{ErrorCode::bad_request, "'" + e.host + "' is not an IP address"};
}

Result<Tcp> listen_tcp(uv_loop_t* loop, const Endpoint& at, uv_connection_cb on_connection,
                       void* data, int backlog) {
    auto addr = to_sockaddr(at);
    if (!addr) return addr.error();
    Tcp listener(loop);
    listener.get()->data = data;
    int rc = uv_tcp_bind(listener.get(), reinterpret_cast<const sockaddr*>(&*addr), 0);
    if (rc == 0) rc = uv_listen(listener.stream(), backlog, on_connection);
    if (rc < 0) {
        return Error{ErrorCode::unavailable, "cannot listen on " + to_string(at) + ": " + uv_error(rc)};
    }
    return listener;
}

std::uint16_t bound_port(const Tcp& listener) {
    sockaddr_storage addr{};
    int len = sizeof addr;
    uv_tcp_getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

namespace {

// True if something accepts connections at the Unix socket path.
bool unix_socket_is_live(const std::string& path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

}  // namespace

Result<Pipe> listen_unix(uv_loop_t* loop, const std::string& path, int mode,
                         uv_connection_cb on_connection, void* data) {
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
        return Error{ErrorCode::bad_request, "socket path is too long: " + path};
    }
    struct stat st{};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return Error{ErrorCode::unavailable, path + " exists and is not a socket"};
        }
        if (unix_socket_is_live(path)) {
            return Error{ErrorCode::unavailable, "another daemon is already listening on " + path};
        }
        unlink(path.c_str());   // stale, left by a crash
    }
    Pipe listener(loop);
    listener.get()->data = data;
    // Create the socket owner-only, then widen to `mode`: no window where others may connect.
    const mode_t old_mask = umask(0177);
    int rc = uv_pipe_bind(listener.get(), path.c_str());
    umask(old_mask);
    if (rc == 0 && chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) rc = -errno;
    if (rc == 0) rc = uv_listen(listener.stream(), 128, on_connection);
    if (rc < 0) return Error{ErrorCode::unavailable, "cannot listen on " + path + ": " + uv_error(rc)};
    return listener;
}

}  // namespace peershare::common
