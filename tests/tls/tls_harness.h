#pragma once
// In-process TLS pairs for the tests: loopback TCP connections, PEM files in
// a temporary folder, and a small poll loop that drives both ends.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "net/clock.h"
#include "net/socket.h"
#include "net/stream.h"
#include "tls/certificate.h"
#include "tls/tls_stream.h"

namespace millstone::tls::testing {

using net::Readiness;
using net::StreamResult;
using net::StreamStatus;

// A folder removed with its files at the end of the test.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "millstone-tls-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
    EXPECT_FALSE(path_.empty());
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << content;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A CA and certificates it signs, written as PEM files.
struct Pki {
  explicit Pki(const TempFolder& folder, const std::string& name = "ca") : folder(folder) {
    CertificateSpec spec;
    spec.common_name = "millstone test " + name;
    spec.is_ca = true;
    ca = issue_certificate(spec);
    ca_file = folder.write(name + ".pem", ca.certificate_pem());
  }
  // Writes NAME.crt and NAME.key, returns their paths.
  std::pair<std::string, std::string> issue(const std::string& name, CertificateSpec spec) const {
    Certificate leaf = issue_certificate(spec, &ca);
    return {folder.write(name + ".crt", leaf.certificate_pem()),
            folder.write(name + ".key", leaf.key_pem())};
  }
  std::pair<std::string, std::string> localhost(const std::string& name) const {
    CertificateSpec spec;
    spec.common_name = "localhost";
    spec.dns_names = {"localhost"};
    spec.ip_addresses = {"127.0.0.1", "::1"};
    return issue(name, spec);
  }
  const TempFolder& folder;
  Certificate ca;
  std::string ca_file;
};

// One accepted loopback TCP connection: {client fd, server fd}, non-blocking.
inline std::pair<int, int> loopback_pair() {
  auto any = net::make_endpoint("127.0.0.1", 0);
  const int listener = net::listen_socket(*any, 4);
  EXPECT_GE(listener, 0);
  auto bound = net::local_endpoint(listener);
  const int client = net::tcp_socket(AF_INET);
  EXPECT_GE(net::start_connect(client, *bound), 0);
  int server = -1;
  for (int i = 0; i < 500 && server < 0; ++i) {
    server = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (server < 0) usleep(1000);
  }
  EXPECT_GE(server, 0);
  ::close(listener);
  return {client, server};
}

inline short poll_events(const StreamResult& r) {
  return r.wait == Readiness::kWritable ? POLLOUT : POLLIN;
}

// Drives both handshakes until each has finished or failed. When one side
// has failed, the other gets until a quiet poll to see the alert.
struct HandshakeOutcome {
  StreamResult client{.status = StreamStatus::kWouldBlock};
  StreamResult server{.status = StreamStatus::kWouldBlock};
};
inline HandshakeOutcome handshake(net::Stream& client, net::Stream& server) {
  HandshakeOutcome out;
  const int64_t deadline = net::now_ns() + 5 * net::kNsPerSec;
  while (net::now_ns() < deadline) {
    if (out.client.status == StreamStatus::kWouldBlock) out.client = client.handshake();
    if (out.server.status == StreamStatus::kWouldBlock) out.server = server.handshake();
    const bool client_waits = out.client.status == StreamStatus::kWouldBlock;
    const bool server_waits = out.server.status == StreamStatus::kWouldBlock;
    if (!client_waits && !server_waits) break;
    pollfd fds[2];
    int n = 0;
    if (client_waits) fds[n++] = {client.fd(), poll_events(out.client), 0};
    if (server_waits) fds[n++] = {server.fd(), poll_events(out.server), 0};
    if (poll(fds, static_cast<nfds_t>(n), 200) == 0 && (!client_waits || !server_waits)) break;
  }
  return out;
}

// Drives one stream's handshake alone (the peer is another process or a
// hand-written server).
inline StreamResult handshake_alone(net::Stream& stream, int timeout_ms = 5000) {
  const int64_t deadline = net::now_ns() + int64_t{timeout_ms} * net::kNsPerMs;
  StreamResult r = stream.handshake();
  while (r.status == StreamStatus::kWouldBlock && net::now_ns() < deadline) {
    pollfd fd{stream.fd(), poll_events(r), 0};
    poll(&fd, 1, 100);
    r = stream.handshake();
  }
  return r;
}

// Sends all of `data` from one stream while the other reads it; returns what
// arrived. Bounded by a deadline.
inline std::string transfer(net::Stream& from, net::Stream& to, std::string_view data,
                            size_t* would_blocks = nullptr) {
  std::string received;
  std::string_view rest = data;
  char buffer[16384];
  const int64_t deadline = net::now_ns() + 10 * net::kNsPerSec;
  while (received.size() < data.size() && net::now_ns() < deadline) {
    if (!rest.empty()) {
      StreamResult w = from.write(rest);
      EXPECT_NE(w.status, StreamStatus::kError) << from.error_text();
      if (w.status == StreamStatus::kError) break;
      if (w.status == StreamStatus::kWouldBlock && would_blocks != nullptr) ++*would_blocks;
      rest.remove_prefix(w.bytes);
    }
    for (;;) {
      StreamResult r = to.read(buffer, sizeof buffer);
      if (r.status != StreamStatus::kOk) {
        EXPECT_EQ(r.status, StreamStatus::kWouldBlock) << to.error_text();
        break;
      }
      received.append(buffer, r.bytes);
      if (r.drained) break;
    }
    if (received.size() >= data.size()) break;
    pollfd fds[2] = {{from.fd(), static_cast<short>(rest.empty() ? 0 : POLLOUT), 0},
                     {to.fd(), POLLIN, 0}};
    poll(fds, 2, 50);
  }
  return received;
}

// Reads until `stream` reports something other than data (or 5 s pass).
inline StreamResult read_until_end(net::Stream& stream, std::string* data = nullptr) {
  char buffer[16384];
  const int64_t deadline = net::now_ns() + 5 * net::kNsPerSec;
  StreamResult r{.status = StreamStatus::kWouldBlock};
  while (net::now_ns() < deadline) {
    r = stream.read(buffer, sizeof buffer);
    if (r.status == StreamStatus::kOk) {
      if (data != nullptr) data->append(buffer, r.bytes);
      continue;
    }
    if (r.status != StreamStatus::kWouldBlock) return r;
    pollfd fd{stream.fd(), poll_events(r), 0};
    poll(&fd, 1, 100);
  }
  return r;
}

}  // namespace millstone::tls::testing
