#pragma once
// Thin, errno-preserving helpers over BSD sockets. Addresses are numeric:
// name resolution happens once in the coordinator, never on the data plane.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace millstone::net {

struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&storage); }
  uint16_t port() const;
  std::string to_string() const;  // "127.0.0.1:8080" or "[::1]:8080"
};

// Numeric address only ("127.0.0.1", "::1").
std::optional<Endpoint> make_endpoint(const std::string& address, uint16_t port);
// Resolves a host name (or numeric address); on failure *error says why.
std::optional<Endpoint> resolve(const std::string& host, uint16_t port, std::string* error);
// Splits "HOST:PORT" / "[V6]:PORT" (HOST may be a name); on failure *error says why.
bool split_host_port(const std::string& text, std::string* host, uint16_t* port,
                     std::string* error);
// Parses "HOST:PORT" / "[V6]:PORT" for --listen flags.
std::optional<Endpoint> parse_listen_address(const std::string& text, std::string* error);
std::string numeric_host(const Endpoint& endpoint);
// 127.0.0.0/8 or ::1 (also ::ffff:127.x).
bool is_loopback(const Endpoint& endpoint);

// Non-blocking, close-on-exec TCP socket; -1 on failure (errno set).
int tcp_socket(int family);
// Binds a client socket to a local address before connect (port chosen at
// connect time, IP_BIND_ADDRESS_NO_PORT), so each source address has its own
// ephemeral port range towards a destination. -1 on failure (errno set).
int bind_source(int fd, const Endpoint& source);
// Numeric source addresses of the target's family, for ClientContext::sources.
bool parse_sources(const std::vector<std::string>& addresses, int family,
                   std::vector<Endpoint>* out, std::string* error);
// Starts a non-blocking connect: 0 connected, 1 in progress, -1 failed (errno).
int start_connect(int fd, const Endpoint& endpoint);
// Result of a finished non-blocking connect (SO_ERROR): 0 or an errno value.
int connect_result(int fd);
void set_no_delay(int fd);
// Blocks in poll() until `fd` is ready for `events` (POLLIN, POLLOUT) or the
// deadline (net::now_ns()) passes: false on timeout. An error on the socket
// counts as ready: the next call on it reports the error.
bool wait_until(int fd, short events, int64_t deadline_ns);
// Closes with an RST instead of a FIN (SO_LINGER 0).
void close_with_reset(int fd);
// Listening socket with SO_REUSEADDR (a restart may bind over TIME_WAIT) and
// without SO_REUSEPORT, so the address is exclusive: binding a port another
// socket listens on fails with EADDRINUSE. Processes that are to share it
// inherit this one descriptor. -1 on failure (errno set).
int listen_socket(const Endpoint& endpoint, int backlog);
std::optional<Endpoint> local_endpoint(int fd);
// The connected peer's address (getpeername).
std::optional<Endpoint> peer_endpoint(int fd);
// Accepts one pending connection as a non-blocking, close-on-exec socket;
// -1 with errno (EAGAIN when none is pending).
int accept_connection(int listen_fd);
// Half-close: sends FIN, the socket still reads. False on failure (errno).
bool shutdown_write(int fd);

}  // namespace millstone::net
