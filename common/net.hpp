// common/net.hpp — addresses and listening sockets: parsing "ADDR:PORT",
// printing IPs, binding TCP and Unix listeners with clear errors.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/uv.hpp"
#include "proto/errors.hpp"

namespace peershare::common {

struct Endpoint {
    std::string host;    // an IP literal, without brackets
    std::uint16_t port = 0;
};

// "0.0.0.0:9999", "[::1]:9999", "127.0.0.1:0". With allow_names, the host may
// also be a host name (for --tracker), resolved later.
proto::Result<Endpoint> parse_endpoint(std::string_view text, bool allow_names = false);
std::string to_string(const Endpoint& e);   // brackets around IPv6

// The IP of an address as text; IPv4-mapped IPv6 addresses print as IPv4.
std::string ip_to_string(const sockaddr_storage& addr);

proto::Result<sockaddr_storage> to_sockaddr(const Endpoint& e);

// Why no peer may be given out at, or connected to, `address` ("224.0.0.1
// is a multicast address"): an unspecified, multicast or broadcast
// (255.255.255.255) IPv4 or IPv6 address, also IPv4-mapped; nullopt for any
// other IP address. The tracker checks advertised addresses with it, the
// fetch engine whatever a name resolved to (the reflection BEP 3 trackers
// guard against by ignoring client-supplied IPs).
std::optional<std::string> refused_address(const sockaddr* address);
// The same for a host as text: nullopt for a host name (checked once resolved).
std::optional<std::string> refused_host(const std::string& host);
// True for 0.0.0.0, :: and ::ffff:0.0.0.0: a listener on every address.
bool unspecified_host(const std::string& host);

// Binds and listens; the callback gets the listening handle on each connection.
proto::Result<Tcp> listen_tcp(uv_loop_t* loop, const Endpoint& at, uv_connection_cb on_connection,
                              void* data, int backlog = 4096);
// The port a TCP listener actually got (for port 0).
std::uint16_t bound_port(const Tcp& listener);

// Binds a Unix socket at path with the given mode. A stale socket file (no
// one listening) is replaced; a live one is an error naming the path.
proto::Result<Pipe> listen_unix(uv_loop_t* loop, const std::string& path, int mode,
                                uv_connection_cb on_connection, void* data);

}  // namespace peershare::common
