#include "mock/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mock/control.h"
#include "net/clock.h"
#include "net/socket.h"

namespace millstone::mock::control {
namespace {

std::string percent_encoded(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, int64_t deadline_ns) {
  for (;;) {
    const int64_t left_ms = (deadline_ns - net::now_ns()) / net::kNsPerMs;
    if (left_ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left_ms));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result request(const std::string& host, uint16_t port, std::string_view method,
               std::string_view path, std::string_view body, const Options& options) {
  Result result;
  const std::string where = fmt::format("{}:{}", host, port);
  const int64_t deadline = net::now_ns() + int64_t{options.timeout_ms} * net::kNsPerMs;
  std::string error;
  const std::optional<net::Endpoint> endpoint = net::resolve(host, port, &error);
  if (!endpoint) {
    result.error = fmt::format("{}: {}", where, error);
    return result;
  }
  Fd socket{net::tcp_socket(endpoint->family())};
  if (socket.fd < 0) {
    result.error = fmt::format("{}: cannot make a socket: {}", where, std::strerror(errno));
    return result;
  }
  int state = net::start_connect(socket.fd, *endpoint);
  if (state == 1) {
    if (!wait_for(socket.fd, POLLOUT, deadline)) {
      result.error = fmt::format("{}: no connection within {} ms", where, options.timeout_ms);
      return result;
    }
    const int e = net::connect_result(socket.fd);
    state = e == 0 ? 0 : -1;
    errno = e;
  }
  if (state < 0) {
    result.error = fmt::format("{}: cannot connect: {}", where, std::strerror(errno));
    return result;
  }
  std::string out =
      fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", method, path, where);
  if (!options.token.empty()) out += fmt::format("Authorization: Bearer {}\r\n", options.token);
  out += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.size());
  out += body;
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = send(socket.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(socket.fd, POLLOUT, deadline)) {
        result.error =
            fmt::format("{}: the request was not taken within {} ms", where, options.timeout_ms);
        return result;
      }
    } else {
      result.error = fmt::format("{}: sending failed: {}", where, std::strerror(errno));
      return result;
    }
  }
  std::string in;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(socket.fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      in.append(buffer, static_cast<size_t>(n));
      if (in.size() > (8u << 20)) break;  // a control answer is small; enough is enough
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(socket.fd, POLLIN, deadline)) {
        result.error = fmt::format("{}: no answer within {} ms", where, options.timeout_ms);
        return result;
      }
    } else {
      result.error = fmt::format("{}: reading the answer failed: {}", where, std::strerror(errno));
      return result;
    }
  }
  const size_t head_end = in.find("\r\n\r\n");
  int status = 0;
  if (head_end == std::string::npos || in.compare(0, 9, "HTTP/1.1 ") != 0 ||
      std::sscanf(in.c_str() + 9, "%3d", &status) != 1) {
    result.error = fmt::format("{}: the answer is not HTTP; expected a millstone mock", where);
    return result;
  }
  result.status = status;
  result.body = in.substr(head_end + 4);
  if (status >= 200 && status < 300) {
    result.ok = true;
    return result;
  }
  const nlohmann::json j = nlohmann::json::parse(result.body, nullptr, false);
  std::string message = result.body.substr(0, 200);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    message = j["error"].get<std::string>();
    if (j.contains("field") && j["field"].is_string()) {
      message += fmt::format(" (field {})", j["field"].get<std::string>());
    }
  }
  while (!message.empty() && message.back() == '\n')
    message.pop_back();
  result.error =
      fmt::format("{}: mock answered {} to {} {}: {}", where, status, method, path, message);
  return result;
}

Result apply(const std::string& host, uint16_t port, std::string_view route,
             std::string_view json_patch, const Options& options) {
  const std::string path =
      fmt::format("{}{}/{}", kControlPrefix, options.socket_route ? "sockets" : "routes",
                  percent_encoded(route));
  return request(host, port, "PATCH", path, json_patch, options);
}

Result reset(const std::string& host, uint16_t port, std::string_view route,
             const Options& options) {
  const std::string path =
      fmt::format("{}{}/{}", kControlPrefix, options.socket_route ? "sockets" : "routes",
                  percent_encoded(route));
  return request(host, port, "DELETE", path, "", options);
}

Result reset_all(const std::string& host, uint16_t port, const Options& options) {
  return request(host, port, "POST", fmt::format("{}reset", kControlPrefix), "", options);
}

}  // namespace millstone::mock::control
