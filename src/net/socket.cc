#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/clock.h"

namespace millstone::net {

uint16_t Endpoint::port() const {
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

std::string numeric_host(const Endpoint& endpoint) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (endpoint.family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&endpoint.storage)->sin6_addr, buf,
              sizeof buf);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&endpoint.storage)->sin_addr, buf,
              sizeof buf);
  }
  return buf;
}

std::string Endpoint::to_string() const {
  std::string host = numeric_host(*this);
  if (family() == AF_INET6) host = "[" + host + "]";
  return host + ":" + std::to_string(port());
}

std::optional<Endpoint> make_endpoint(const std::string& address, uint16_t port) {
  Endpoint e;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&e.storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    e.length = sizeof(sockaddr_in);
    return e;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.storage);
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    e.length = sizeof(sockaddr_in6);
    return e;
  }
  return std::nullopt;
}

std::optional<Endpoint> resolve(const std::string& host, uint16_t port, std::string* error) {
  if (auto numeric = make_endpoint(host, port)) return numeric;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    if (error) *error = "cannot resolve host '" + host + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  Endpoint e;
  std::memcpy(&e.storage, result->ai_addr, result->ai_addrlen);
  e.length = result->ai_addrlen;
  freeaddrinfo(result);
  if (e.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&e.storage)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&e.storage)->sin_port = htons(port);
  }
  return e;
}

bool split_host_port(const std::string& text, std::string* host, uint16_t* port,
                     std::string* error) {
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      if (error) *error = "expected [IPV6]:PORT, got '" + text + "'";
      return false;
    }
    *host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      if (error) *error = "expected HOST:PORT (for example 127.0.0.1:8080), got '" + text + "'";
      return false;
    }
    *host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    if (error) *error = "port '" + port_text + "' is not a number in 0-65535";
    return false;
  }
  *port = static_cast<uint16_t>(std::stoul(port_text));
  return true;
}

std::optional<Endpoint> parse_listen_address(const std::string& text, std::string* error) {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(text, &host, &port, error)) return std::nullopt;
  if (host == "localhost") host = "127.0.0.1";
  auto endpoint = make_endpoint(host, port);
  if (!endpoint && error) *error = "'" + host + "' is not a numeric IPv4 or IPv6 address";
  return endpoint;
}

int tcp_socket(int family) {
  return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
}

bool parse_sources(const std::vector<std::string>& addresses, int family,
                   std::vector<Endpoint>* out, std::string* error) {
  out->clear();
  for (const std::string& address : addresses) {
    auto endpoint = make_endpoint(address, 0);
    if (!endpoint || endpoint->family() != family) {
      *error = "source address '" + address + "' is not a numeric address of the target's family";
      return false;
    }
    out->push_back(*endpoint);
  }
  return true;
}

bool is_loopback(const Endpoint& endpoint) {
  if (endpoint.family() == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&endpoint.storage);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (endpoint.family() == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&endpoint.storage);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

int bind_source(int fd, const Endpoint& source) {
  int one = 1;
  // Without this, bind() picks the port at once and every source address
  // shares one port space; with it, ports are chosen per 4-tuple at connect.
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  Endpoint local = source;
  if (local.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&local.storage)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&local.storage)->sin6_port = 0;
  }
  return ::bind(fd, local.addr(), local.length);
}

int start_connect(int fd, const Endpoint& endpoint) {
  if (connect(fd, endpoint.addr(), endpoint.length) == 0) return 0;
  if (errno == EINPROGRESS) return 1;
  return -1;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

bool wait_until(int fd, short events, int64_t deadline_ns) {
  for (;;) {
    const int64_t left_ms = (deadline_ns - now_ns() + kNsPerMs - 1) / kNsPerMs;
    if (left_ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;
  }
}

void set_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void close_with_reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

int listen_socket(const Endpoint& endpoint, int backlog) {
  int fd = tcp_socket(endpoint.family());
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, endpoint.addr(), endpoint.length) != 0 || listen(fd, backlog) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

std::optional<Endpoint> local_endpoint(int fd) {
  Endpoint e;
  e.length = sizeof e.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&e.storage), &e.length) != 0) return std::nullopt;
  return e;
}

std::optional<Endpoint> peer_endpoint(int fd) {
  Endpoint e;
  e.length = sizeof e.storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&e.storage), &e.length) != 0) return std::nullopt;
  return e;
}

int accept_connection(int listen_fd) {
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

bool shutdown_write(int fd) {
  return ::shutdown(fd, SHUT_WR) == 0;
}

}  // namespace millstone::net
