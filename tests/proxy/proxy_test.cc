// `millstone proxy` end to end: a client and an upstream server of the
// test's own on loopback, the proxy between them, toxics set over the HTTP
// API. What a toxic does is checked where it lands: the upstream server's own
// clock and byte counts for client -> server effects.
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace millstone::proxy::testing {
namespace proxy_test {

constexpr int64_t kMs = 1'000'000;

// A proxy process with one proxy "p" from 127.0.0.1:<free> to an upstream
// listener the test owns.
class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(proxy_.api_port(), 0) << proxy_.output();
    upstream_fd_ = listen_any(&upstream_port_);
    HttpReply created =
        http(proxy_.api_port(), "POST", "/proxies",
             nlohmann::json{{"name", "p"},
                            {"listen", "127.0.0.1:0"},
                            {"upstream", "127.0.0.1:" + std::to_string(upstream_port_)}}
                 .dump());
    ASSERT_EQ(created.status, 201) << created.body;
    auto json = nlohmann::json::parse(created.body);
    const std::string listen = json["listen"];
    listen_port_ = std::atoi(listen.substr(listen.rfind(':') + 1).c_str());
    ASSERT_GT(listen_port_, 0);
  }
  void TearDown() override {
    if (upstream_fd_ >= 0) close(upstream_fd_);
    EXPECT_EQ(proxy_.stop(), 0);
  }

  HttpReply add_toxic(const nlohmann::json& toxic) {
    return http(proxy_.api_port(), "POST", "/proxies/p/toxics", toxic.dump());
  }

  ProxyProcess proxy_;
  int upstream_fd_ = -1;
  int upstream_port_ = 0;
  int listen_port_ = 0;
};

std::string pattern(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

TEST_F(ProxyTest, LargeTransfersPassUnchangedBothWays) {
  // 16 MiB each way at once: back-pressure in both directions, and the
  // client's FIN forwarded as a half-close (the server still answers after it).
  const std::string up = pattern(16 << 20, 1);
  const std::string down = pattern(16 << 20, 2);
  std::string server_got;
  bool server_saw_eof = false;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    std::thread writer([&] { send_all(fd, down); });
    ReadResult got = read_until_end(fd);
    server_got = std::move(got.bytes);
    server_saw_eof = got.eof;
    writer.join();
    shutdown(fd, SHUT_WR);
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  std::thread writer([&] {
    send_all(client, up);
    shutdown(client, SHUT_WR);
  });
  ReadResult back = read_until_end(client);
  writer.join();
  server.join();
  close(client);
  EXPECT_TRUE(server_saw_eof);
  EXPECT_EQ(server_got.size(), up.size());
  EXPECT_TRUE(server_got == up) << "upstream bytes differ";
  EXPECT_TRUE(back.eof);
  EXPECT_EQ(back.bytes.size(), down.size());
  EXPECT_TRUE(back.bytes == down) << "downstream bytes differ";
}

// The upstream server stamps each message's arrival with its own clock; the
// client writes its send time into the message (one machine, one monotonic clock).
std::vector<int64_t> one_way_delays(int listen_port, int upstream_fd, int messages) {
  std::vector<int64_t> delays;
  std::thread server([&] {
    int fd = accept_within(upstream_fd);
    if (fd < 0) return;
    std::string buffer;
    char chunk[256];
    while (static_cast<int>(delays.size()) < messages) {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      const int64_t arrived = monotonic_ns();
      buffer.append(chunk, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buffer.find('\n')) != std::string::npos) {
        delays.push_back(arrived - std::stoll(buffer.substr(0, nl)));
        buffer.erase(0, nl + 1);
        send_all(fd, "k");
      }
    }
    close(fd);
  });
  int client = connect_to(listen_port);
  for (int i = 0; i < messages && client >= 0; ++i) {
    send_all(client, std::to_string(monotonic_ns()) + "\n");
    char ack;
    if (recv(client, &ack, 1, 0) != 1) break;
  }
  if (client >= 0) close(client);
  server.join();
  return delays;
}

TEST_F(ProxyTest, LatencyToxicDelaysWhatTheServerReceives) {
  ASSERT_EQ(
      add_toxic({{"type", "latency"}, {"stream", "upstream"}, {"attributes", {{"latency", 200}}}})
          .status,
      200);
  std::vector<int64_t> delays = one_way_delays(listen_port_, upstream_fd_, 5);
  ASSERT_EQ(delays.size(), 5u);
  std::sort(delays.begin(), delays.end());
  EXPECT_GE(delays.front(), 200 * kMs);
  // Bounded above only loosely (a shared 2-core machine): the toxic adds
  // 200 ms, not seconds.
  EXPECT_LT(delays[2], 1000 * kMs);
}

TEST_F(ProxyTest, ToxicAddedAndRemovedActsOnAnOpenConnection) {
  std::vector<int64_t> delays;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    std::string buffer;
    char chunk[256];
    while (delays.size() < 3) {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      const int64_t arrived = monotonic_ns();
      buffer.append(chunk, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buffer.find('\n')) != std::string::npos) {
        delays.push_back(arrived - std::stoll(buffer.substr(0, nl)));
        buffer.erase(0, nl + 1);
        send_all(fd, "k");
      }
    }
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  char ack;
  auto exchange = [&] {
    send_all(client, std::to_string(monotonic_ns()) + "\n");
    ASSERT_EQ(recv(client, &ack, 1, 0), 1);
  };
  exchange();  // no toxic
  ASSERT_EQ(add_toxic({{"name", "slow"},
                       {"type", "latency"},
                       {"stream", "upstream"},
                       {"attributes", {{"latency", 300}}}})
                .status,
            200);
  exchange();  // same connection, now 300 ms slower
  ASSERT_EQ(http(proxy_.api_port(), "DELETE", "/proxies/p/toxics/slow").status, 204);
  exchange();
  close(client);
  server.join();
  ASSERT_EQ(delays.size(), 3u);
  EXPECT_LT(delays[0], 300 * kMs);
  EXPECT_GE(delays[1], 300 * kMs);
  EXPECT_LT(delays[2], 300 * kMs);
}

TEST_F(ProxyTest, BandwidthToxicPacesWhatTheServerReceives) {
  // 500 KB/s upstream; 1 MB takes about 2 s at the server.
  ASSERT_EQ(
      add_toxic({{"type", "bandwidth"}, {"stream", "upstream"}, {"attributes", {{"rate", 500}}}})
          .status,
      200);
  const std::string data = pattern(1'000'000, 3);
  int64_t first = 0, last = 0;
  std::string got;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    char buffer[65536];
    for (;;) {
      ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      if (got.empty()) first = monotonic_ns();
      got.append(buffer, static_cast<size_t>(n));
      last = monotonic_ns();
    }
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  const int64_t started = monotonic_ns();
  send_all(client, data);
  shutdown(client, SHUT_WR);
  read_until_end(client);
  close(client);
  server.join();
  EXPECT_TRUE(got == data);
  // 1 MB at 500 bytes/ms: the first 10 ms part arrives at ~10 ms, the last
  // at ~2000 ms.
  // Bounded below from the client's side of time: a stall of the server
  // thread can only make the last byte later.
  EXPECT_GE(last - started, 1950 * kMs);
  EXPECT_GT(first, started);
  EXPECT_LT(last - started, 10'000 * kMs);
}

TEST_F(ProxyTest, ResetPeerResetsBothSides) {
  ASSERT_EQ(add_toxic({{"type", "reset_peer"}, {"attributes", {{"timeout", 100}}}}).status, 200);
  int server_error = 0;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    send_all(fd, "hello");  // the first downstream data starts the toxic's clock
    ReadResult r = read_until_end(fd);
    server_error = r.error;
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  ReadResult r = read_until_end(client);
  close(client);
  server.join();
  EXPECT_EQ(r.bytes, "");  // dropped, then reset
  EXPECT_EQ(r.error, ECONNRESET);
  EXPECT_EQ(server_error, ECONNRESET);
}

TEST_F(ProxyTest, TimeoutDropsDataThenClosesBothSides) {
  ASSERT_EQ(
      add_toxic({{"type", "timeout"}, {"stream", "upstream"}, {"attributes", {{"timeout", 300}}}})
          .status,
      200);
  ReadResult at_server;
  int64_t accepted = 0;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    accepted = monotonic_ns();
    at_server = read_until_end(fd);
    close(fd);
  });
  const int64_t connecting = monotonic_ns();  // before the proxy's clock for the toxic starts
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  send_all(client, "never arrives");
  ReadResult r = read_until_end(client);
  close(client);
  server.join();
  EXPECT_EQ(at_server.bytes, "");
  EXPECT_TRUE(at_server.eof);
  EXPECT_GE(at_server.end_ns - connecting, 300 * kMs);
  EXPECT_GT(at_server.end_ns, accepted);
  EXPECT_TRUE(r.eof);
}

TEST_F(ProxyTest, LimitDataClosesAfterTheLimit) {
  ASSERT_EQ(
      add_toxic({{"type", "limit_data"}, {"stream", "upstream"}, {"attributes", {{"bytes", 1000}}}})
          .status,
      200);
  ReadResult at_server;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    at_server = read_until_end(fd);
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  const std::string data = pattern(5000, 4);
  send_all(client, data);
  ReadResult r = read_until_end(client);
  close(client);
  server.join();
  EXPECT_EQ(at_server.bytes, data.substr(0, 1000));
  EXPECT_TRUE(at_server.eof);
  EXPECT_TRUE(r.eof || r.error == ECONNRESET);
}

TEST_F(ProxyTest, SlicerDeliversInSeparatePieces) {
  ASSERT_EQ(
      add_toxic({{"type", "slicer"},
                 {"stream", "upstream"},
                 {"attributes", {{"average_size", 10}, {"size_variation", 0}, {"delay", 20000}}}})
          .status,
      200);
  std::vector<std::pair<int64_t, size_t>> reads;
  std::string got;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    char buffer[4096];
    while (got.size() < 160) {
      ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      reads.push_back({monotonic_ns(), static_cast<size_t>(n)});
      got.append(buffer, static_cast<size_t>(n));
    }
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  const std::string data = pattern(160, 5);
  const int64_t sent = monotonic_ns();
  send_all(client, data);  // one write; 16 slices of 10 bytes, 20 ms apart
  server.join();
  close(client);
  EXPECT_TRUE(got == data);
  // A busy server thread may take several slices in one read, never part of one.
  ASSERT_GE(reads.size(), 4u);
  for (const auto& [at, size] : reads)
    EXPECT_EQ(size % 10, 0u) << "slices are whole multiples of 10 bytes";
  // The 16th slice leaves 15 delays after the first.
  EXPECT_GE(reads.back().first - sent, 15 * 20 * kMs);
}

TEST_F(ProxyTest, SlowCloseDelaysTheFin) {
  ASSERT_EQ(add_toxic({{"type", "slow_close"}, {"attributes", {{"delay", 400}}}}).status, 200);
  int64_t server_closed = 0;
  std::thread server([&] {
    int fd = accept_within(upstream_fd_);
    ASSERT_GE(fd, 0);
    send_all(fd, "bye");
    server_closed = monotonic_ns();
    close(fd);
  });
  int client = connect_to(listen_port_);
  ASSERT_GE(client, 0);
  ReadResult r = read_until_end(client);
  close(client);
  server.join();
  EXPECT_EQ(r.bytes, "bye");
  EXPECT_TRUE(r.eof);
  EXPECT_GE(r.end_ns - server_closed, 390 * kMs);
}

TEST_F(ProxyTest, DisabledProxyRefusesThenComesBackOnReset) {
  HttpReply disabled = http(proxy_.api_port(), "POST", "/proxies/p", R"({"enabled": false})");
  ASSERT_EQ(disabled.status, 200);
  EXPECT_EQ(nlohmann::json::parse(disabled.body)["enabled"], false);
  EXPECT_LT(connect_to(listen_port_), 0);
  ASSERT_EQ(add_toxic({{"type", "latency"}, {"attributes", {{"latency", 5}}}}).status, 200);
  ASSERT_EQ(http(proxy_.api_port(), "POST", "/reset").status, 204);
  HttpReply state = http(proxy_.api_port(), "GET", "/proxies/p");
  auto json = nlohmann::json::parse(state.body);
  EXPECT_EQ(json["enabled"], true);
  EXPECT_TRUE(json["toxics"].empty());
  int client = connect_to(listen_port_);
  EXPECT_GE(client, 0);
  if (client >= 0) close(client);
}

TEST_F(ProxyTest, UnreachableUpstreamClosesTheClient) {
  const int dead = free_port();
  HttpReply created = http(proxy_.api_port(), "POST", "/proxies",
                           nlohmann::json{{"name", "dead"},
                                          {"listen", "127.0.0.1:0"},
                                          {"upstream", "127.0.0.1:" + std::to_string(dead)}}
                               .dump());
  ASSERT_EQ(created.status, 201);
  const std::string listen = nlohmann::json::parse(created.body)["listen"];
  int client = connect_to(std::atoi(listen.substr(listen.rfind(':') + 1).c_str()));
  ASSERT_GE(client, 0);
  ReadResult r = read_until_end(client);
  close(client);
  EXPECT_TRUE(r.eof || r.error == ECONNRESET);
  EXPECT_EQ(r.bytes, "");
}

// --- the CLI ---

TEST(ProxyCommand, ConfigFileCreatesProxies) {
  int upstream_port = 0;
  int upstream = listen_any(&upstream_port);
  const int listen_port = free_port();
  const std::string path = "/tmp/millstone-proxy-config-" + std::to_string(getpid()) + ".json";
  std::ofstream(path) << nlohmann::json::array(
                             {{{"name", "from_file"},
                               {"listen", "127.0.0.1:" + std::to_string(listen_port)},
                               {"upstream", "127.0.0.1:" + std::to_string(upstream_port)}}})
                             .dump();
  ProxyProcess proxy({"--config", path});
  ASSERT_GT(proxy.api_port(), 0) << proxy.output();
  EXPECT_NE(proxy.output().find("from_file listening on 127.0.0.1:" + std::to_string(listen_port)),
            std::string::npos)
      << proxy.output();
  int client = connect_to(listen_port);
  ASSERT_GE(client, 0);
  int server = accept_within(upstream);
  ASSERT_GE(server, 0);
  send_all(client, "ping");
  char buffer[4];
  EXPECT_EQ(recv(server, buffer, 4, MSG_WAITALL), 4);
  close(client);
  close(server);
  close(upstream);
  unlink(path.c_str());
  EXPECT_EQ(proxy.stop(), 0);
}

int run_proxy(std::vector<std::string> args, std::string* err) {
  std::string command = std::string(MILLSTONE_BINARY) + " proxy";
  for (const std::string& a : args)
    command += " '" + a + "'";
  command += " 2>&1";
  FILE* pipe = popen(("timeout 20 " + command).c_str(), "r");
  char buffer[1024];
  while (fgets(buffer, sizeof buffer, pipe))
    *err += buffer;
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ProxyCommand, BadConfigIsExit3NamingTheFile) {
  const std::string path = "/tmp/millstone-proxy-bad-" + std::to_string(getpid()) + ".json";
  std::ofstream(path) << R"([{"name": "x", "upstream": 5}])";
  std::string err;
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--config", path}, &err), 3);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("upstream must be a string"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--config", path + ".missing"}, &err), 3);
  // A token file that cannot be one header's token: one line naming the
  // file and why, never the token.
  std::ofstream(path) << "s3cret\nX-Other: 1\n";
  err.clear();
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--token-file", path}, &err), 3);
  EXPECT_NE(err.find("millstone proxy: --token-file " + path +
                     ": it holds a control character; expected one line of printable text"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  std::ofstream(path) << "\n";
  err.clear();
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--token-file", path}, &err), 3);
  EXPECT_NE(err.find(": it is empty;"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--token-file", path + ".missing"}, &err), 3);
  EXPECT_NE(err.find(": cannot read it: No such file or directory"), std::string::npos) << err;
  unlink(path.c_str());
}

TEST(ProxyCommand, AddressInUseIsExit7) {
  int port = 0;
  int taken = listen_any(&port);
  std::string err;
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:" + std::to_string(port)}, &err), 7);
  EXPECT_NE(err.find("cannot listen"), std::string::npos) << err;
  const std::string path = "/tmp/millstone-proxy-taken-" + std::to_string(getpid()) + ".json";
  std::ofstream(path) << nlohmann::json::array({{{"name", "x"},
                                                 {"listen", "127.0.0.1:" + std::to_string(port)},
                                                 {"upstream", "127.0.0.1:1"}}})
                             .dump();
  err.clear();
  EXPECT_EQ(run_proxy({"--api", "127.0.0.1:0", "--config", path}, &err), 7);
  EXPECT_NE(err.find("in use"), std::string::npos) << err;
  EXPECT_EQ(run_proxy({"--api", "nonsense"}, &err), 2);
  unlink(path.c_str());
  close(taken);
}

}  // namespace proxy_test
}  // namespace millstone::proxy::testing
