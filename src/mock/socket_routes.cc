#include "mock/socket_routes.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>

#include "mock/counter.h"
#include "net/clock.h"
#include "net/socket.h"
#include "tls/tls_stream.h"
#include "ws/frame.h"

namespace millstone::mock {

namespace {

void drop(std::atomic<uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// How long a closing connection may wait for the peer's close before the
// socket is simply closed.
constexpr int64_t kClosingGraceNs = 3'000'000'000;
constexpr int64_t kSweepEveryNs = 50'000'000;

bool message_matches(const SocketReply& rule, std::string_view message) {
  switch (rule.match) {
    case SocketReply::kContains:
      return message.find(rule.pattern) != std::string_view::npos;
    case SocketReply::kEquals:
      return message == rule.pattern;
    case SocketReply::kRegex:
      return re2::RE2::PartialMatch(re2::StringPiece(message.data(), message.size()), *rule.regex);
  }
  return false;
}

}  // namespace

// One WebSocket or TCP connection. Kept small: idle, it owns no heap memory
// (input_ and output_ are empty strings, the parser's reassembly buffer is
// released), so its cost is sizeof(SocketSession) plus the runtime's table
// slot and the event loop's slot.
//
// Over TLS (wss, or a tcp listener with tls:) every read and write goes
// through the TlsStream, which then owns the descriptor; plain connections
// keep their direct syscalls and pay one null pointer for it.
class SocketSession final : public net::IoHandler, private ws::EventSink {
 public:
  SocketSession(SocketRuntime& runtime, int fd, uint32_t row, bool websocket,
                std::unique_ptr<tls::TlsStream> tls = nullptr)
      : runtime_(runtime),
        fd_(fd),
        row_(row),
        websocket_(websocket),
        tls_(std::move(tls)),
        parser_(ws::Role::kServer, route().max_message_bytes) {
    connected_ns_ = now_ns();
  }
  ~SocketSession() override {
    if (registration_ != 0) {
      runtime_.loop().remove(registration_, fd_);
      drop(counters().open);
    }
    if (tls_) {
      tls_->close(false);  // close_notify unless the stream failed, then the socket
    } else {
      ::close(fd_);
    }
  }

  const SocketRoute& route() const {
    const MockConfig& c = runtime_.config();
    return row_ < c.websockets.size() ? c.websockets[row_] : c.tcp[row_ - c.websockets.size()];
  }
  SocketCounters& counters() { return runtime_.counters(row_); }
  int fd() const { return fd_; }
  uint32_t row() const { return row_; }
  bool closing() const { return closing_; }
  bool subscribed(int rule) const { return rule < 0 || (subscriptions_ >> rule) & 1; }
  int64_t connected_ns() const { return connected_ns_; }
  int64_t closing_ns() const { return closing_ns_; }

  bool start(std::string_view unsent, std::string_view input) {
    registration_ = runtime_.loop().add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
    if (registration_ == 0) return false;
    bump(counters().open);
    bump(counters().total);
    if (!unsent.empty()) output_.assign(unsent);
    if (!input.empty()) {
      input_.assign(input);
      consume_input();
    }
    if (tls_) {
      // A TLS connection may hold records OpenSSL already read (a frame that
      // came with the upgrade request): no new edge would report them.
      if (tls_->handshake_done()) {
        flush();
        if (!dead_) read_input(false);
      } else {
        continue_handshake();
      }
    }
    return true;
  }

  // Sends bytes already framed; queues what the socket does not take.
  void send_bytes(std::string_view bytes) {
    if (fd_ < 0 || dead_) return;
    if (output_.size() - output_offset_ == 0 && !handshaking()) {
      ssize_t n = send_some(bytes);
      if (n < 0) {
        dead_ = true;
        return;
      }
      const size_t sent = static_cast<size_t>(n);
      if (sent == bytes.size()) return;
      bytes.remove_prefix(sent);
    }
    if (output_.size() - output_offset_ + bytes.size() > kMaxQueuedBytes) {
      // The client does not read: drop it instead of growing without bound.
      bump(counters().overflow_closes);
      if (websocket_ && !close_sent_) {
        std::string close;
        ws::append_close(&close, 1008, "send queue full", std::nullopt);
        // Over TLS a record cannot be slipped in after a partial one.
        if (!tls_) (void)::send(fd_, close.data(), close.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      dead_ = true;
      return;
    }
    compact_output();
    output_.append(bytes);
  }

  // A message from the route's logic (echo, reply, push), framed for this
  // connection.
  void send_message(std::string_view payload, bool text = true) {
    std::string framed;
    frame(payload, text, &framed);
    send_bytes(framed);
    bump(counters().messages_out);
  }

  void frame(std::string_view payload, bool text, std::string* out) const {
    if (websocket_) {
      ws::append_frame(out, text ? ws::Opcode::kText : ws::Opcode::kBinary, payload, true,
                       std::nullopt);
      return;
    }
    switch (route().framing) {
      case SocketRoute::kLine:
        out->append(payload);
        if (payload.empty() || payload.back() != '\n') out->push_back('\n');
        break;
      case SocketRoute::kLength32: {
        const uint32_t n = static_cast<uint32_t>(payload.size());
        const char prefix[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                static_cast<char>(n >> 8), static_cast<char>(n)};
        out->append(prefix, 4);
        out->append(payload);
        break;
      }
      case SocketRoute::kRaw:
        out->append(payload);
        break;
    }
  }

  void send_ping() {
    if (!websocket_ || closing_) return;
    std::string ping;
    ws::append_frame(&ping, ws::Opcode::kPing, "millstone", true, std::nullopt);
    send_bytes(ping);
  }

  // Server-initiated close (close_after, or an error). WebSocket: a close
  // frame, then the peer's close or the grace period; TCP: FIN at once.
  void begin_close(uint16_t code, std::string_view reason) {
    if (closing_ || fd_ < 0) return;
    if (websocket_) {
      std::string close;
      ws::append_close(&close, code, reason, std::nullopt);
      send_bytes(close);
      close_sent_ = true;
    }
    if (output_.size() == output_offset_) shutdown_write();
    runtime_.start_closing(this);  // moves this session to the closing list
  }

  void on_io(uint32_t events) override {
    if (dead_) {
      finish();
      return;
    }
    if (handshaking()) {
      continue_handshake();
      if (handshaking() || dead_) {
        finish();
        return;
      }
    }
    // TLS: a read may wait for EPOLLOUT and a write for EPOLLIN; any edge
    // retries both (a call that cannot progress costs one syscall).
    if (tls_ || (events & EPOLLOUT)) flush();
    if (!dead_ && (tls_ || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))) {
      read_input((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
    finish();  // may destroy *this
  }

  // Called after any outside action (a push) too: destroys a dead session.
  void finish() {
    const bool done = peer_closed_ || (close_sent_ && close_received_);
    if (dead_ || (done && output_.size() == output_offset_)) {
      runtime_.release(this);  // destroys *this
    }
  }

  // Intrusive list links: the route's open sessions, or the closing list.
  SocketSession* prev = nullptr;
  SocketSession* next = nullptr;
  bool in_closing_list = false;

 private:
  bool handshaking() const { return tls_ && !tls_->handshake_done(); }

  // A TLS listener's connection: the handshake runs on the connection's
  // edges before any byte of the route's protocol.
  void continue_handshake() {
    const net::StreamResult r = tls_->handshake();
    if (r.status == net::StreamStatus::kWouldBlock) return;
    if (r.status != net::StreamStatus::kOk) {
      bump(counters().tls_failed);
      dead_ = true;
      return;
    }
    bump(counters().tls_handshakes);
    flush();  // anything queued meanwhile (a push)
  }

  // Bytes written (maybe fewer than asked, 0 when the socket is full), or -1
  // when the connection failed. After a partial TLS write the caller queues
  // the rest and passes it first next time, as net::Stream::write asks.
  ssize_t send_some(std::string_view bytes) {
    if (tls_) {
      const net::StreamResult r = tls_->write(bytes);
      if (r.status == net::StreamStatus::kError) return -1;
      return static_cast<ssize_t>(r.bytes);
    }
    for (;;) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -1;
    }
  }

  // The end of what this side sends. TLS has no half-close: the WebSocket
  // close frame (or the TCP session's end) is followed by close_notify and
  // the socket's close when the session is released.
  void shutdown_write() {
    if (!tls_) ::shutdown(fd_, SHUT_WR);
  }

  void flush() {
    if (handshaking()) return;
    while (output_offset_ < output_.size()) {
      const ssize_t n = send_some(std::string_view(output_).substr(output_offset_));
      if (n > 0) {
        output_offset_ += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        // Only the sent prefix is dropped: the unwritten rest stays first,
        // as a TLS stream needs it (it may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
        compact_output();
        return;
      }
      dead_ = true;
      return;
    }
    std::string().swap(output_);  // idle again: no buffer
    output_offset_ = 0;
    if (closing_) shutdown_write();
  }

  // Drops the bytes already sent from the front of output_. A reader that is
  // slow but never stalled keeps the queue from ever draining completely, so
  // without this the sent prefix (which the kMaxQueuedBytes check does not
  // count) would grow without bound. Compacting once the prefix is half the
  // buffer or 64 KiB bounds the dead prefix; the copy is at most the queue
  // (under kMaxQueuedBytes) per 64 KiB sent, and only while a reader lags.
  void compact_output() {
    if (output_offset_ == 0) return;
    if (output_offset_ == output_.size()) {
      std::string().swap(output_);
      output_offset_ = 0;
      return;
    }
    if (output_offset_ >= kCompactOutputBytes || output_offset_ * 2 >= output_.size()) {
      output_.erase(0, output_offset_);
      output_offset_ = 0;
    }
  }
  static constexpr size_t kCompactOutputBytes = 64 * 1024;

  // peer_closing: the event carried EPOLLRDHUP, EPOLLHUP or EPOLLERR. The
  // loop is edge-triggered, so when the last data and the FIN arrive before
  // the worker wakes there is a single edge for both: a short read must not
  // end the loop then, or the EOF is never seen and the session leaks.
  void read_input(bool peer_closing) {
    char* buffer = runtime_.read_buffer();
    const size_t capacity = SocketRuntime::kReadBufferBytes;
    for (;;) {
      bool drained = false;
      ssize_t n;
      if (tls_) {
        const net::StreamResult r = tls_->read(buffer, capacity);
        if (r.status == net::StreamStatus::kWouldBlock) return;
        if (r.status == net::StreamStatus::kError) {
          dead_ = true;
          return;
        }
        n = r.status == net::StreamStatus::kClosed ? 0 : static_cast<ssize_t>(r.bytes);
        drained = r.drained;
      } else {
        n = ::recv(fd_, buffer, capacity, 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN) dead_ = true;
          return;
        }
      }
      if (n == 0) {
        peer_closed_ = true;
        return;
      }
      if (closing_ && close_received_) continue;  // discard after the close handshake
      if (input_.empty()) {
        // Common case: parse straight from the shared buffer; keep only an
        // incomplete tail.
        const size_t used = consume(buffer, static_cast<size_t>(n));
        if (!dead_ && used < static_cast<size_t>(n)) {
          input_.assign(buffer + used, static_cast<size_t>(n) - used);
        }
      } else {
        input_.append(buffer, static_cast<size_t>(n));
        consume_input();
      }
      if (dead_) return;
      if (tls_ ? drained && !peer_closing : static_cast<size_t>(n) < capacity && !peer_closing) {
        return;
      }
    }
  }

  void consume_input() {
    const size_t used = consume(input_.data(), input_.size());
    input_.erase(0, used);
    if (input_.empty()) std::string().swap(input_);
  }

  // Returns the bytes used; the rest is an incomplete frame or line.
  size_t consume(char* data, size_t size) {
    if (websocket_) {
      ws::FrameParser::Result r = parser_.parse(data, size, *this);
      if (r.error != ws::FrameError::kNone) {
        bump(counters().protocol_errors);
        begin_close(ws::close_code_for(r.error), ws::frame_error_name(r.error));
        close_received_ = true;  // nothing more is parsed
        return size;
      }
      if (!parser_.in_fragmented_message()) parser_.trim();
      return r.stopped ? size : r.consumed;
    }
    return consume_tcp(data, size);
  }

  size_t consume_tcp(char* data, size_t size) {
    const SocketRoute& r = route();
    size_t at = 0;
    while (at < size && !dead_ && !closing_) {
      std::string_view rest(data + at, size - at);
      switch (r.framing) {
        case SocketRoute::kRaw:
          on_message(rest, true);
          at = size;
          break;
        case SocketRoute::kLine: {
          const size_t nl = rest.find('\n');
          if (nl == std::string_view::npos) {
            if (rest.size() > r.max_message_bytes) return too_big(size);
            return at;
          }
          std::string_view line = rest.substr(0, nl);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          on_message(line, true);
          at += nl + 1;
          break;
        }
        case SocketRoute::kLength32: {
          if (rest.size() < 4) return at;
          const uint32_t n = (static_cast<uint32_t>(static_cast<uint8_t>(rest[0])) << 24) |
                             (static_cast<uint32_t>(static_cast<uint8_t>(rest[1])) << 16) |
                             (static_cast<uint32_t>(static_cast<uint8_t>(rest[2])) << 8) |
                             static_cast<uint8_t>(rest[3]);
          if (n > r.max_message_bytes) return too_big(size);
          if (rest.size() - 4 < n) return at;
          on_message(rest.substr(4, n), true);
          at += 4 + n;
          break;
        }
      }
    }
    return size;
  }

  size_t too_big(size_t size) {
    bump(counters().protocol_errors);
    begin_close(0, "");
    close_received_ = true;
    return size;
  }

  bool on_event(const ws::Event& e) override {
    switch (e.kind) {
      case ws::Event::Kind::kText:
      case ws::Event::Kind::kBinary:
        if (!closing_) on_message(e.payload, e.kind == ws::Event::Kind::kText);
        break;
      case ws::Event::Kind::kPing: {
        if (closing_) break;
        std::string pong;
        ws::append_frame(&pong, ws::Opcode::kPong, e.payload, true, std::nullopt);
        send_bytes(pong);
        break;
      }
      case ws::Event::Kind::kPong:
        break;
      case ws::Event::Kind::kClose:
        close_received_ = true;
        if (!close_sent_) {
          // Answer with the same code (RFC 6455 5.5.1), then the server
          // closes the TCP connection first.
          std::string close;
          ws::append_close(&close, e.close_code, "", std::nullopt);
          send_bytes(close);
          close_sent_ = true;
        }
        if (!closing_) runtime_.start_closing(this);
        if (output_.size() == output_offset_) {
          peer_closed_ = true;  // done: close now
        }
        return false;
    }
    return !dead_;
  }

  void on_message(std::string_view message, bool text) {
    bump(counters().messages_in);
    const SocketRoute& r = route();
    if (r.echo) send_message(message, text);
    for (size_t i = 0; i < r.on_message.size(); ++i) {
      const SocketReply& rule = r.on_message[i];
      if (!message_matches(rule, message)) continue;
      if (rule.reply) {
        std::string reply;
        runtime_.render(*rule.reply, row_, &reply);
        send_message(reply);
      }
      if (rule.then_push) subscriptions_ |= uint32_t{1} << i;
    }
  }

  // Heap bytes of input_ and output_ (a short string lives inside the object).
  size_t buffered_bytes() const {
    const size_t inline_capacity = std::string().capacity();
    size_t total = 0;
    for (const std::string* s : {&input_, &output_})
      if (s->capacity() > inline_capacity) total += s->capacity();
    return total;
  }

  SocketRuntime& runtime_;
  int fd_;
  uint32_t row_;
  bool websocket_;
  bool closing_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool peer_closed_ = false;
  bool dead_ = false;
  uint32_t subscriptions_ = 0;  // then_push rules this connection triggered
  uint64_t registration_ = 0;
  std::unique_ptr<tls::TlsStream> tls_;  // null: plain TCP
  int64_t connected_ns_ = 0;
  int64_t closing_ns_ = 0;
  ws::FrameParser parser_;
  std::string input_;   // an incomplete frame or line; empty when idle
  std::string output_;  // what the socket did not take yet; empty when idle
  size_t output_offset_ = 0;

  friend class SocketRuntime;
};

// The idle cost promised in docs/mock.md; a change that breaks it should
// be deliberate.
static_assert(sizeof(SocketSession) <= 256, "an idle socket session must stay small");

struct SocketRuntime::Route {
  SocketSession* head = nullptr;  // open sessions, oldest first
  SocketSession* tail = nullptr;
  // amqp_push with a key: the open sessions by their key.
  std::unordered_multimap<std::string, SocketSession*> by_key;
  std::unique_ptr<net::Timer> push;
  int64_t push_every_us = 0;                             // the file's, or what the control API set
  std::vector<std::unique_ptr<net::Timer>> rule_pushes;  // per on_message rule with then_push
  std::unique_ptr<net::Timer> ping;

  void link(SocketSession* s) {
    s->prev = tail;
    s->next = nullptr;
    (tail ? tail->next : head) = s;
    tail = s;
  }
  void unlink(SocketSession* s) {
    (s->prev ? s->prev->next : head) = s->next;
    (s->next ? s->next->prev : tail) = s->prev;
    s->prev = s->next = nullptr;
  }
};

struct SocketRuntime::Listener : net::IoHandler {
  Listener(SocketRuntime& runtime, size_t index, int fd)
      : runtime(runtime), index(index), shared(runtime.loop(), fd, this) {}
  SocketRuntime& runtime;
  size_t index;  // into config.tcp
  SharedListener shared;
  std::unique_ptr<net::Timer> retry;
  bool stepped_aside = false;  // not watching the listener until retry fires
  void on_io(uint32_t) override { runtime.on_tcp_accept(index); }
};

SocketRuntime::SocketRuntime(const MockConfig& config, net::EventLoop& loop,
                             TemplateRenderer& renderer, SocketCounters* counters,
                             size_t counter_slot_base,
                             std::vector<const tls::TlsServerContext*> tcp_tls)
    : config_(config),
      tcp_tls_(std::move(tcp_tls)),
      loop_(loop),
      renderer_(renderer),
      counters_(counters),
      counter_slot_base_(counter_slot_base),
      read_buffer_(new char[kReadBufferBytes]) {
  const size_t rows = config.websockets.size() + config.tcp.size();
  for (size_t row = 0; row < rows; ++row) {
    auto route = std::make_unique<Route>();
    const SocketRoute& r = row < config.websockets.size()
                               ? config.websockets[row]
                               : config.tcp[row - config.websockets.size()];
    if (r.push) {
      route->push = std::make_unique<net::Timer>(loop, [this, row] { push_tick(row, -1); });
      route->push_every_us = r.push->every_us;
      route->push->arm_after(r.push->every_us * net::kNsPerUs);
    }
    for (size_t i = 0; i < r.on_message.size(); ++i) {
      if (!r.on_message[i].then_push) {
        route->rule_pushes.push_back(nullptr);
        continue;
      }
      const int rule = static_cast<int>(i);
      route->rule_pushes.push_back(
          std::make_unique<net::Timer>(loop, [this, row, rule] { push_tick(row, rule); }));
      route->rule_pushes.back()->arm_after(r.on_message[i].then_push->every_us * net::kNsPerUs);
    }
    if (r.ping_every_us > 0) {
      route->ping = std::make_unique<net::Timer>(loop, [this, row] { ping_tick(row); });
      route->ping->arm_after(r.ping_every_us * net::kNsPerUs);
    }
    routes_.push_back(std::move(route));
  }
  sweep_timer_ = std::make_unique<net::Timer>(loop, [this] { sweep(); });
  if (rows > 0) sweep_timer_->arm_after(kSweepEveryNs);
}

SocketRuntime::~SocketRuntime() {
  sessions_.clear();
}

int SocketRuntime::websocket_route(std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  for (size_t i = 0; i < config_.websockets.size(); ++i)
    if (config_.websockets[i].path == path) return static_cast<int>(i);
  return -1;
}

void SocketRuntime::add_session(std::unique_ptr<SocketSession> session) {
  const size_t fd = static_cast<size_t>(session->fd());
  if (fd >= sessions_.size()) sessions_.resize(fd + 1024);
  SocketSession* s = session.get();
  sessions_[fd] = std::move(session);
  routes_[s->row()]->link(s);
}

void SocketRuntime::adopt_websocket(int fd, size_t route, std::string_view unsent,
                                    std::string_view input, std::string_view amqp_key) {
  auto session = std::make_unique<SocketSession>(*this, fd, static_cast<uint32_t>(route), true);
  SocketSession* s = session.get();
  add_session(std::move(session));
  set_amqp_key(s, amqp_key);
  if (!s->start(unsent, input)) {
    release(s);
    return;
  }
  s->finish();
}

void SocketRuntime::adopt_websocket(std::unique_ptr<tls::TlsStream> stream, size_t route,
                                    std::string_view unsent, std::string_view input,
                                    std::string_view amqp_key) {
  const int fd = stream->fd();
  auto session = std::make_unique<SocketSession>(*this, fd, static_cast<uint32_t>(route), true,
                                                 std::move(stream));
  SocketSession* s = session.get();
  add_session(std::move(session));
  set_amqp_key(s, amqp_key);
  if (!s->start(unsent, input)) {
    release(s);
    return;
  }
  s->finish();
}

void SocketRuntime::set_amqp_key(SocketSession* s, std::string_view key) {
  const SocketRoute& r = s->route();
  if (!r.amqp_push || r.amqp_push->key_from == SocketAmqpPush::KeyFrom::kNone) return;
  const size_t fd = static_cast<size_t>(s->fd());
  if (fd >= amqp_keys_.size()) amqp_keys_.resize(fd + 1024);
  amqp_keys_[fd] = key;
  routes_[s->row()]->by_key.emplace(amqp_keys_[fd], s);
}

void SocketRuntime::drop_amqp_key(SocketSession* s) {
  const size_t fd = static_cast<size_t>(s->fd());
  if (fd >= amqp_keys_.size()) return;
  auto& by_key = routes_[s->row()]->by_key;
  auto [first, last] = by_key.equal_range(amqp_keys_[fd]);
  for (auto it = first; it != last; ++it) {
    if (it->second == s) {
      by_key.erase(it);
      break;
    }
  }
  std::string().swap(amqp_keys_[fd]);
}

size_t SocketRuntime::push_amqp(size_t row, bool keyed, std::string_view key,
                                std::string_view body) {
  if (row >= routes_.size()) return 0;
  Route& route = *routes_[row];
  std::vector<SocketSession*> targets;
  if (keyed) {
    auto [first, last] = route.by_key.equal_range(std::string(key));
    for (auto it = first; it != last; ++it)
      targets.push_back(it->second);
  } else {
    for (SocketSession* s = route.head; s != nullptr; s = s->next)
      targets.push_back(s);
  }
  if (targets.empty()) return 0;
  frame_.clear();
  targets.front()->frame(body, true, &frame_);
  bump(counters_[row].pushes);
  size_t sent = 0;
  std::vector<SocketSession*> dead;
  for (SocketSession* s : targets) {
    if (s->closing() || s->dead_) continue;
    s->send_bytes(frame_);
    ++sent;
    if (s->dead_) dead.push_back(s);
  }
  bump(counters_[row].messages_out, sent);
  for (SocketSession* s : dead)
    release(s);
  return sent;
}

void SocketRuntime::release(SocketSession* s) {
  drop_amqp_key(s);
  if (s->in_closing_list) {
    (s->prev ? s->prev->next : closing_head_) = s->next;
    (s->next ? s->next->prev : closing_tail_) = s->prev;
  } else {
    routes_[s->row()]->unlink(s);
  }
  sessions_[static_cast<size_t>(s->fd())].reset();
}

void SocketRuntime::start_closing(SocketSession* s) {
  if (s->in_closing_list) return;
  drop_amqp_key(s);
  routes_[s->row()]->unlink(s);
  s->closing_ = true;
  s->closing_ns_ = now_ns();
  s->in_closing_list = true;
  s->prev = closing_tail_;
  s->next = nullptr;
  (closing_tail_ ? closing_tail_->next : closing_head_) = s;
  closing_tail_ = s;
}

void SocketRuntime::render(const Template& message, size_t row, std::string* out) {
  renderer_.begin(RenderRequest{nullptr, {}, counter_slot_base_ + row});
  renderer_.render(message, out);
}

size_t SocketRuntime::buffered_bytes() const {
  size_t total = 0;
  for (const auto& s : sessions_)
    if (s) total += s->buffered_bytes();
  return total;
}

void SocketRuntime::set_push_every(size_t row, int64_t every_us) {
  if (row >= routes_.size()) return;
  Route& route = *routes_[row];
  if (!route.push || every_us <= 0 || route.push_every_us == every_us) return;
  route.push_every_us = every_us;
  route.push->arm_after(every_us * net::kNsPerUs);
}

void SocketRuntime::push_tick(size_t row, int rule) {
  Route& route = *routes_[row];
  const SocketRoute& r = row < config_.websockets.size()
                             ? config_.websockets[row]
                             : config_.tcp[row - config_.websockets.size()];
  const SocketPush& push = rule < 0 ? *r.push : *r.on_message[static_cast<size_t>(rule)].then_push;
  net::Timer& timer = rule < 0 ? *route.push : *route.rule_pushes[static_cast<size_t>(rule)];
  // Next tick from this one's deadline: no drift however long the fan-out takes.
  const int64_t every_us = rule < 0 ? route.push_every_us : push.every_us;
  timer.arm_at(timer.deadline() + every_us * net::kNsPerUs);
  if (route.head == nullptr) return;
  // Rendered once per tick: now_us is the tick's time for every connection.
  rendered_.clear();
  render(push.message, row, &rendered_);
  frame_.clear();
  route.head->frame(rendered_, true, &frame_);
  bump(counters_[row].pushes);
  uint64_t sent = 0;
  std::vector<SocketSession*> dead;
  for (SocketSession* s = route.head; s != nullptr; s = s->next) {
    if (!s->subscribed(rule)) continue;
    s->send_bytes(frame_);
    ++sent;
    if (s->dead_) dead.push_back(s);
  }
  bump(counters_[row].messages_out, sent);
  for (SocketSession* s : dead)
    release(s);
}

void SocketRuntime::ping_tick(size_t row) {
  Route& route = *routes_[row];
  route.ping->arm_at(route.ping->deadline() +
                     config_.websockets[row].ping_every_us * net::kNsPerUs);
  std::vector<SocketSession*> dead;
  for (SocketSession* s = route.head; s != nullptr; s = s->next) {
    s->send_ping();
    if (s->dead_) dead.push_back(s);
  }
  for (SocketSession* s : dead)
    release(s);
}

void SocketRuntime::sweep() {
  sweep_timer_->arm_after(kSweepEveryNs);
  const int64_t now = now_ns();
  // Sessions past close_after; each route's list is in connection order.
  for (size_t row = 0; row < routes_.size(); ++row) {
    const SocketRoute& r = row < config_.websockets.size()
                               ? config_.websockets[row]
                               : config_.tcp[row - config_.websockets.size()];
    if (r.close_after_us <= 0) continue;
    const int64_t limit = r.close_after_us * net::kNsPerUs;
    while (SocketSession* s = routes_[row]->head) {
      if (now - s->connected_ns() < limit) break;
      s->begin_close(r.close_code, "close_after");  // moves s to the closing list
      if (s->dead_ || !s->websocket_ || routes_[row]->head == s) release(s);
    }
  }
  // Closing sessions whose peer never answered.
  while (closing_head_ && now - closing_head_->closing_ns() >= kClosingGraceNs)
    release(closing_head_);
}

bool SocketRuntime::serve_tcp(std::span<const int> listen_fds, FdLimit& fd_limit) {
  fd_limit_ = &fd_limit;
  for (size_t i = 0; i < listen_fds.size() && i < config_.tcp.size(); ++i) {
    auto listener = std::make_unique<Listener>(*this, i, listen_fds[i]);
    if (!listener->shared.start()) return false;
    Listener* l = listener.get();
    listener->retry = std::make_unique<net::Timer>(loop_, [this, i, l] {
      if (l->stepped_aside) {
        l->stepped_aside = false;
        if (!l->shared.start()) return;  // the loop refused it: nothing to retry on
      }
      on_tcp_accept(i);
    });
    listeners_.push_back(std::move(listener));
  }
  return true;
}

void SocketRuntime::accept_waiting() {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (!listeners_[i]->stepped_aside) on_tcp_accept(i);
  }
}

void SocketRuntime::on_tcp_accept(size_t index) {
  Listener& l = *listeners_[index];
  const uint32_t row = static_cast<uint32_t>(config_.websockets.size() + index);
  bool accepted = false;
  const auto outcome = fd_limit_->accept_all(
      l.shared.fd(),
      [&](int fd) {
        accepted = true;
        net::set_no_delay(fd);
        std::unique_ptr<tls::TlsStream> stream;
        if (index < tcp_tls_.size() && tcp_tls_[index] != nullptr) {
          stream = tls::TlsStream::server(*tcp_tls_[index], fd);
          if (!stream) return;  // out of memory; the socket is closed
        }
        auto session = std::make_unique<SocketSession>(*this, fd, row, false, std::move(stream));
        SocketSession* s = session.get();
        add_session(std::move(session));
        if (!s->start({}, {})) {
          release(s);
          return;
        }
        s->finish();  // a TLS handshake may have failed already
      },
      counters_[row].refused_at_fd_limit);
  switch (outcome) {
    case FdLimit::Outcome::kStepAside:
      l.shared.stop();
      l.stepped_aside = true;
      l.retry->arm_after(100 * net::kNsPerMs);
      return;
    case FdLimit::Outcome::kRetryLater:
      l.retry->arm_after(100 * net::kNsPerMs);
      break;
    case FdLimit::Outcome::kDrained:
      break;
  }
  if (accepted) l.shared.requeue();
}

std::string amqp_push_key(const SocketAmqpPush& push, std::string_view target,
                          const std::function<std::string_view(std::string_view)>& header) {
  if (push.key_from == SocketAmqpPush::KeyFrom::kHeader) return std::string(header(push.key_name));
  if (push.key_from != SocketAmqpPush::KeyFrom::kQuery) return {};
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    const size_t eq = pair.find('=');
    std::string name;
    append_url_decoded(pair.substr(0, eq), true, &name);
    if (name != push.key_name) continue;
    std::string value;
    if (eq != std::string_view::npos) append_url_decoded(pair.substr(eq + 1), true, &value);
    return value;
  }
  return {};
}

TcpTlsContexts make_tcp_tls_contexts(const MockConfig& config,
                                     const tls::TlsServerContext* shared) {
  TcpTlsContexts out;
  const tls::TlsServerContext* self_signed = shared;
  for (const SocketRoute& route : config.tcp) {
    if (!route.tls) {
      out.by_listener.push_back(nullptr);
      continue;
    }
    tls::TlsServerOptions options;
    options.cert_file = route.tls_cert_file;
    options.key_file = route.tls_key_file;
    if (options.cert_file.empty() && self_signed != nullptr) {
      out.by_listener.push_back(self_signed);
      continue;
    }
    out.owned.push_back(std::make_unique<tls::TlsServerContext>(options));
    out.by_listener.push_back(out.owned.back().get());
    if (options.cert_file.empty()) self_signed = out.owned.back().get();
  }
  return out;
}

SharedListener::~SharedListener() {
  if (registration_ != 0) loop_.remove(registration_, fd_);
  ::close(fd_);
}

bool SharedListener::start() {
  registration_ = loop_.add(fd_, EPOLLIN | EPOLLEXCLUSIVE, handler_);
  return registration_ != 0;
}

void SharedListener::requeue() {
  // EPOLL_CTL_MOD is not allowed with EPOLLEXCLUSIVE: remove and add. The
  // add reports a connection still queued, so none is left waiting.
  loop_.remove(registration_, fd_);
  registration_ = loop_.add(fd_, EPOLLIN | EPOLLEXCLUSIVE, handler_);
}

void SharedListener::stop() {
  if (registration_ != 0) loop_.remove(registration_, fd_);
  registration_ = 0;
}

namespace {

// Once per process: a full table repeats on every retry.
void say_out_of_descriptors(int error) {
  static bool said = false;
  if (said) return;
  said = true;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (error == EMFILE) {
    std::fprintf(stderr,
                 "millstone mock: out of file descriptors (the per-process limit, %llu, was "
                 "hit); raise it with `ulimit -n` (the hard limit caps it) or use more "
                 "--workers; still serving the connections already open, and refusing new ones "
                 "at once while every worker is full (refused_at_fd_limit in the stats)\n",
                 static_cast<unsigned long long>(limit.rlim_cur));
  } else {
    std::fprintf(stderr,
                 "millstone mock: the system-wide file table is full (ENFILE); raise "
                 "fs.file-max (sysctl) or close other programs; still serving, and refusing new "
                 "connections at once (refused_at_fd_limit in the stats)\n");
  }
}

int open_spare() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace

FdLimit::FdLimit(std::atomic<uint64_t>& full, std::function<bool()> hand_over)
    : full_(full), hand_over_(std::move(hand_over)), spare_(open_spare()) {}

FdLimit::~FdLimit() {
  if (spare_ >= 0) ::close(spare_);
}

FdLimit::Outcome FdLimit::accept_all(int listen_fd, const std::function<void(int fd)>& on_accept,
                                     std::atomic<uint64_t>& refused) {
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (full_.load(std::memory_order_relaxed) != 0) full_.store(0, std::memory_order_relaxed);
      on_accept(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    const int error = errno;
    if (error != EMFILE && error != ENFILE) return Outcome::kDrained;  // EAGAIN, or the next edge
    say_out_of_descriptors(error);
    full_.store(1, std::memory_order_relaxed);
    if (hand_over_ && hand_over_()) return Outcome::kStepAside;
    return refuse_all(listen_fd, refused);
  }
}

FdLimit::Outcome FdLimit::refuse_all(int listen_fd, std::atomic<uint64_t>& refused) {
  if (spare_ < 0) spare_ = open_spare();  // a connection closed since: the slot is back
  if (spare_ < 0) return Outcome::kRetryLater;
  ::close(spare_);
  spare_ = -1;
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    // Linger 0: close() sends a reset now, and the socket leaves no TIME_WAIT.
    const linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(fd);
    refused.store(refused.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  const int error = errno;
  spare_ = open_spare();
  // EAGAIN: the backlog is empty. EMFILE/ENFILE here: another process took
  // the slot (ENFILE is system-wide); without a spare, retry later.
  if (spare_ < 0 || error == EMFILE || error == ENFILE) return Outcome::kRetryLater;
  return Outcome::kDrained;
}

uint64_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace millstone::mock
