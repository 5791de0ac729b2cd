// `millstone mock` speaking WebSocket and raw TCP, driven by a small blocking
// client written here and by the npm `ws` package (tests/interop/ws_client.js).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "socket_servers.h"
#include "support.h"
#include "ws/frame.h"
#include "ws/handshake.h"

namespace millstone::testing {
namespace mock_ws_test {

using ws::Event;
using ws::Opcode;

// Connects to 127.0.0.1:port, retrying for up to timeout_s: a mock's TCP
// listeners may open a moment after its HTTP port answers.
int connect_loopback(int port, double timeout_s) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  for (int attempt = 0; attempt < static_cast<int>(timeout_s * 20); ++attempt) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    close(fd);
    fd = -1;
    usleep(50'000);
  }
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout_s),
             static_cast<suseconds_t>((timeout_s - static_cast<int>(timeout_s)) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

struct Received {
  Event::Kind kind;
  std::string payload;
  uint16_t close_code = ws::kCloseNoStatus;
};

// A blocking WebSocket client: every read waits at most the socket timeout.
class WsClient : public ws::EventSink {
 public:
  WsClient(int port, const std::string& path, const std::string& subprotocol = "") {
    fd_ = connect_loopback(port, 5);
    if (fd_ < 0) return;
    const std::string key = ws::make_client_key(0x1234, 0x5678);
    const std::string request = ws::build_client_request("127.0.0.1", path, key, subprotocol, {});
    send_all(request);
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && recv(fd_, &c, 1, 0) == 1)
      head.push_back(c);
    head_ = head;
    ok_ = ws::check_server_response(head, key, subprotocol, &subprotocol_, &error_, true);
  }
  ~WsClient() override {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& subprotocol() const { return subprotocol_; }
  const std::string& head() const { return head_; }

  void send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  void send_frame(Opcode op, std::string_view payload, bool fin = true) {
    std::string wire;
    ws::append_frame(&wire, op, payload, fin, 0xa5b6c7d8u + sent_++);
    send_all(wire);
  }
  void send_close(uint16_t code) {
    std::string wire;
    ws::append_close(&wire, code, "done", 0x01020304u);
    send_all(wire);
  }

  // The next event, or nullopt on timeout / EOF / bad frame.
  std::optional<Received> next() {
    for (;;) {
      if (!queue_.empty()) {
        Received r = queue_.front();
        queue_.erase(queue_.begin());
        return r;
      }
      if (buffer_.size() > 0) {
        auto r = parser_.parse(buffer_.data(), buffer_.size(), *this);
        buffer_.erase(0, r.consumed);
        if (r.error != ws::FrameError::kNone) return std::nullopt;
        if (!queue_.empty()) continue;
      }
      char chunk[65536];
      ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // Skips pings (the server may ping); returns the next other event.
  std::optional<Received> next_data() {
    for (;;) {
      auto e = next();
      if (!e || e->kind != Event::Kind::kPing) return e;
    }
  }
  // True when the server closed the TCP connection (EOF) within the timeout.
  bool eof() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }
  // Half-close: the server sees FIN, the socket stays open (no RST).
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

 private:
  bool on_event(const Event& e) override {
    queue_.push_back({e.kind, std::string(e.payload), e.close_code});
    return true;
  }
  int fd_ = -1;
  bool ok_ = false;
  std::string error_, subprotocol_, head_;
  std::string buffer_;
  ws::FrameParser parser_{ws::Role::kClient};
  std::vector<Received> queue_;
  uint32_t sent_ = 0;
};

const char* kConfig = R"(
routes:
  - path: /health
    body: "ok\n"
websockets:
  - path: /ws/echo
    echo: true
    max_message_bytes: 300000
  - name: ticker
    path: /ws/ticker
    subprotocols: [ticker.v1]
    push: {every: 300ms, message: '{"type":"tick","seq":{{ counter }},"sent_us":{{ now_us }}}'}
  - path: /ws/chat
    on_message:
      - match: {contains: '"subscribe"'}
        reply: '{"type":"subscribed"}'
        then_push: {every: 200ms, message: 'news {{ counter }}'}
      - match: {regex: '^ping-[0-9]+$'}
        reply: pong
  - path: /ws/short
    echo: true
    close_after: 500ms
    close_code: 1001
)";

TEST(MockWebSocket, EchoTextBinaryAndFragmented) {
  MockServer mock(kConfig);
  WsClient c(mock.port(), "/ws/echo");
  ASSERT_TRUE(c.ok()) << c.error() << c.head();
  c.send_frame(Opcode::kText, "hello");
  auto e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Event::Kind::kText);
  EXPECT_EQ(e->payload, "hello");
  c.send_frame(Opcode::kBinary, std::string("\0\1\2\xff", 4));
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Event::Kind::kBinary);
  EXPECT_EQ(e->payload, std::string("\0\1\2\xff", 4));
  // Fragmented, with a ping in the middle: pong first, then the whole message.
  c.send_frame(Opcode::kText, "frag", false);
  c.send_frame(Opcode::kPing, "are you there");
  c.send_frame(Opcode::kContinuation, "men", false);
  c.send_frame(Opcode::kContinuation, "ted", true);
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Event::Kind::kPong);
  EXPECT_EQ(e->payload, "are you there");
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, "fragmented");
  // A large message (several reads on both sides).
  std::string big(200 * 1024, 'x');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + i % 26);
  c.send_frame(Opcode::kText, big);
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, big);
  // Close handshake: the server answers with the same code and closes.
  c.send_close(1000);
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Event::Kind::kClose);
  EXPECT_EQ(e->close_code, 1000);
  EXPECT_TRUE(c.eof());

  const nlohmann::json stats = mock.stats();
  ASSERT_TRUE(stats.contains("sockets")) << stats.dump();
  const auto& echo = stats["sockets"][0];
  EXPECT_EQ(echo["name"], "ws /ws/echo");
  EXPECT_EQ(echo["total"], 1);
  EXPECT_EQ(echo["messages_in"], 4);
  EXPECT_EQ(echo["messages_out"], 4);
  EXPECT_EQ(echo["protocol_errors"], 0);
}

TEST(MockWebSocket, BadFramesCloseWithTheRightCode) {
  MockServer mock(kConfig);
  {
    WsClient c(mock.port(), "/ws/echo");
    ASSERT_TRUE(c.ok()) << c.error();
    std::string unmasked;
    ws::append_frame(&unmasked, Opcode::kText, "no mask", true, std::nullopt);
    c.send_all(unmasked);
    auto e = c.next_data();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, Event::Kind::kClose);
    EXPECT_EQ(e->close_code, ws::kCloseProtocolError);
  }
  {
    WsClient c(mock.port(), "/ws/echo");
    ASSERT_TRUE(c.ok()) << c.error();
    c.send_frame(Opcode::kText, "caf\xc3", false);
    c.send_frame(Opcode::kContinuation, "(", true);
    auto e = c.next_data();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, Event::Kind::kClose);
    EXPECT_EQ(e->close_code, ws::kCloseInvalidPayload);
  }
  {
    WsClient c(mock.port(), "/ws/echo");
    ASSERT_TRUE(c.ok()) << c.error();
    c.send_frame(Opcode::kBinary, std::string(300001, 'b'));
    auto e = c.next_data();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, Event::Kind::kClose);
    EXPECT_EQ(e->close_code, ws::kCloseTooBig);
  }
  EXPECT_EQ(mock.stats()["sockets"][0]["protocol_errors"], 3);
}

TEST(MockWebSocket, HandshakeRejectionsAndPlainGet) {
  MockServer mock(kConfig);
  HttpResponse plain = http_request(mock.port(), "GET", "/ws/echo");
  EXPECT_EQ(plain.status, 426);
  HttpResponse bad = http_request(
      mock.port(), "GET", "/ws/echo", "",
      {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("Sec-WebSocket-Key missing"), std::string::npos) << bad.body;
  EXPECT_EQ(http_get(mock.port(), "/health"), "ok\n");
}

TEST(MockWebSocket, TickerPushesWithIncreasingSeq) {
  MockServer mock(kConfig);
  WsClient c(mock.port(), "/ws/ticker", "ticker.v1");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.subprotocol(), "ticker.v1");
  int64_t last_seq = 0;
  auto first = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    auto e = c.next_data();
    ASSERT_TRUE(e) << "push " << i;
    auto tick = nlohmann::json::parse(e->payload);
    EXPECT_EQ(tick["type"], "tick");
    EXPECT_GT(tick["seq"].get<int64_t>(), last_seq);
    last_seq = tick["seq"].get<int64_t>();
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    EXPECT_LE(tick["sent_us"].get<int64_t>(), now_us);
    EXPECT_GT(tick["sent_us"].get<int64_t>(), now_us - 5'000'000);
    if (i == 0) first = std::chrono::steady_clock::now();
  }
  // Two more ticks after the first: about 600 ms (never timed tightly).
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
  EXPECT_GT(seconds, 0.3);
  const auto stats = mock.stats()["sockets"][1];
  EXPECT_GE(stats["pushes"].get<int>(), 3);
  EXPECT_EQ(stats["open"], 1);
}

TEST(MockWebSocket, SubscribeThenPush) {
  MockServer mock(kConfig);
  WsClient c(mock.port(), "/ws/chat");
  ASSERT_TRUE(c.ok()) << c.error();
  c.send_frame(Opcode::kText, "ping-7");
  auto e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, "pong");
  c.send_frame(Opcode::kText, R"({"op":"subscribe"})");
  e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, R"({"type":"subscribed"})");
  for (int i = 0; i < 2; ++i) {
    e = c.next_data();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->payload.rfind("news ", 0), 0u) << e->payload;
  }
}

TEST(MockWebSocket, CloseAfter) {
  MockServer mock(kConfig);
  WsClient c(mock.port(), "/ws/short");
  ASSERT_TRUE(c.ok()) << c.error();
  auto e = c.next_data();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Event::Kind::kClose);
  EXPECT_EQ(e->close_code, 1001);
  c.send_close(1001);
  EXPECT_TRUE(c.eof());
}

std::string read_exactly(int fd, size_t n) {
  std::string out;
  char c[4096];
  while (out.size() < n) {
    ssize_t got = recv(fd, c, std::min(sizeof c, n - out.size()), 0);
    if (got <= 0) break;
    out.append(c, static_cast<size_t>(got));
  }
  return out;
}

std::string read_line(int fd) {
  std::string out;
  char c;
  while (recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return out;
    out.push_back(c);
  }
  return out + "<eof>";
}

TEST(MockTcp, LineAndLength32EchoAndPush) {
  const int line_port = free_port();
  const int framed_port = free_port();
  const std::string config =
      "routes:\n  - path: /health\ntcp:\n  - listen: 127.0.0.1:" + std::to_string(line_port) +
      "\n    framing: line\n    echo: true\n"
      "    push: {every: 200ms, message: 'tick {{ now_us }}'}\n"
      "  - listen: 127.0.0.1:" +
      std::to_string(framed_port) + "\n    framing: length32\n    echo: true\n";
  MockServer mock(config);
  int fd = connect_loopback(line_port, 5);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "hello\nworld\n", 12, 0), 12);
  // Pushes may interleave with the echoes.
  std::vector<std::string> echoes;
  int ticks = 0;
  for (int i = 0; i < 20 && (echoes.size() < 2 || ticks < 2); ++i) {
    std::string line = read_line(fd);
    if (line.rfind("tick ", 0) == 0) {
      ++ticks;
    } else {
      echoes.push_back(line);
    }
  }
  EXPECT_EQ(echoes, (std::vector<std::string>{"hello", "world"}));
  EXPECT_GE(ticks, 2);
  close(fd);

  fd = connect_loopback(framed_port, 5);
  ASSERT_GE(fd, 0);
  std::string msg("\0\0\0\5abcde", 9);
  ASSERT_EQ(send(fd, msg.data(), msg.size(), 0), 9);
  EXPECT_EQ(read_exactly(fd, 9), msg);
  close(fd);
  const auto sockets = mock.stats()["sockets"];
  EXPECT_EQ(sockets[0]["messages_in"], 2);
  EXPECT_EQ(sockets[1]["messages_in"], 1);
  EXPECT_EQ(sockets[1]["messages_out"], 1);
}

// Waits (bounded) until the `open` count of every given socket route is 0;
// returns the last stats for the failure message.
bool wait_all_closed(const MockServer& mock, const std::vector<int>& rows, nlohmann::json* last) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    *last = mock.stats()["sockets"];
    bool all = true;
    for (int row : rows)
      all = all && (*last)[row]["open"] == 0;
    if (all) return true;
    usleep(50'000);
  }
  return false;
}

// A client that sends its last message and its FIN back to back: both are
// queued before the mock's worker wakes, so one edge carries data and the
// hang-up. The mock must still see the FIN and close; it used to stop reading
// after the short read and keep the session (and its fd) forever.
TEST(MockSockets, DataAndFinInOneEdgeCloseTheSession) {
  const int tcp_port = free_port();
  const std::string config = std::string(kConfig) +
                             "tcp:\n  - listen: 127.0.0.1:" + std::to_string(tcp_port) +
                             "\n    framing: line\n    echo: true\n";
  MockServer mock(config);
  constexpr int kConnections = 50;
  // The sockets stay open (half-closed) until the end: a full close would
  // answer the echo with RST, which wakes the mock on its own.
  std::vector<int> tcp;
  for (int i = 0; i < kConnections; ++i) {
    int fd = connect_loopback(tcp_port, 5);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(send(fd, "bye\n", 4, MSG_NOSIGNAL), 4);
    shutdown(fd, SHUT_WR);
    tcp.push_back(fd);
  }
  std::vector<std::unique_ptr<WsClient>> ws;
  for (int i = 0; i < kConnections; ++i) {
    auto c = std::make_unique<WsClient>(mock.port(), "/ws/echo");
    ASSERT_TRUE(c->ok()) << c->error();
    c->send_frame(Opcode::kText, "bye");  // masked; no close frame follows
    c->shutdown_write();
    ws.push_back(std::move(c));
  }
  // Rows: the four websockets of kConfig, then the TCP listener.
  nlohmann::json last;
  if (!wait_all_closed(mock, {0, 4}, &last)) {
    // Not waiting for FINs that will not come (each read would time out).
    for (int fd : tcp)
      close(fd);
    FAIL() << "sessions left open: " << last.dump();
  }
  EXPECT_EQ(last[0]["total"], kConnections);
  EXPECT_EQ(last[4]["total"], kConnections);
  EXPECT_EQ(last[0]["messages_in"], kConnections);
  EXPECT_EQ(last[4]["messages_in"], kConnections);
  // Each side got its echo and then the mock's FIN.
  for (int fd : tcp) {
    EXPECT_EQ(read_line(fd), "bye");
    char c;
    EXPECT_EQ(recv(fd, &c, 1, 0), 0);
    close(fd);
  }
  for (auto& c : ws) {
    auto e = c->next_data();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->payload, "bye");
    EXPECT_TRUE(c->eof());
  }
  ws.clear();

  // The same with an immediate full close.
  for (int i = 0; i < kConnections; ++i) {
    int fd = connect_loopback(tcp_port, 5);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(send(fd, "bye\n", 4, MSG_NOSIGNAL), 4);
    shutdown(fd, SHUT_WR);
    close(fd);
    WsClient c(mock.port(), "/ws/echo");
    ASSERT_TRUE(c.ok()) << c.error();
    c.send_frame(Opcode::kText, "bye");
    c.shutdown_write();
  }
  EXPECT_TRUE(wait_all_closed(mock, {0, 4}, &last)) << last.dump();
  EXPECT_EQ(last[4]["total"], 2 * kConnections);
}

// Interoperability: the npm `ws` client against the mock.
TEST(MockWebSocket, NodeWsClientInterop) {
  if (system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  MockServer mock(kConfig);
  const std::string script = std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/ws_client.js";
  const std::string command = "timeout 30 node " + script +
                              " ws://127.0.0.1:" + std::to_string(mock.port()) +
                              " > /tmp/ws_client_interop.log 2>&1";
  const int status = system(command.c_str());
  std::string log;
  if (FILE* f = fopen("/tmp/ws_client_interop.log", "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
      log.append(buf, n);
    fclose(f);
  }
  EXPECT_EQ(status, 0) << log;
}

}  // namespace mock_ws_test
}  // namespace millstone::testing
