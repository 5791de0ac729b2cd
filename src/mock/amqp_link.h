// The mock's side of `amqp:` (docs/mock.md#amqp): one AMQP connection per
// worker process, on the worker's own event loop (an amqp::Session over an
// http::ClientConnection in raw mode, as the scenario's AmqpLink does). Once
// open it declares the config's exchanges, queues and bindings, consumes the
// queues failed publishes come back on, and gives each WebSocket route with
// amqp_push a queue of this worker's own (exclusive, auto-delete) bound to
// its exchange, whose messages go to the route's connections in this worker.
//
// Publishes that routes schedule wait in a heap for their due time; a
// publish due while the connection is down is dropped and counted
// (publish_failed): the mock never blocks or queues without bound for a
// broker. A lost connection is retried with a backoff (250 ms, doubling, at
// most 5 s).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "amqp/session.h"
#include "http/client_connection.h"
#include "metrics/snapshot.h"
#include "mock/config.h"
#include "mock/template.h"
#include "net/event_loop.h"

namespace millstone::mock {

class SocketRuntime;

// What one worker's link did. Only that worker writes (relaxed stores);
// readers sum the rows of all workers.
struct AmqpCounters {
  std::atomic<uint64_t> connected{0};            // 1 while declared and consuming
  std::atomic<uint64_t> connections{0};          // times it became ready
  std::atomic<uint64_t> connection_failures{0};  // refused, lost, or refused a declaration
  std::atomic<uint64_t> published{0};            // processed messages handed to the broker
  std::atomic<uint64_t> publish_failed{0};       // due while the connection was down: dropped
  std::atomic<uint64_t> retried{0};              // the fail share, sent to the retry queue
  std::atomic<uint64_t> returned{0};             // came back from the retry path (then published)
  std::atomic<uint64_t> unroutable{0};           // basic.return: no queue was bound for it
  std::atomic<uint64_t> consumed{0};             // messages for amqp_push routes, this worker
  std::atomic<uint64_t> pushed{0};               // copies written to WebSocket connections
  std::atomic<uint64_t> not_pushed{0};  // consumed with no connection of its key in this worker
};

// One AmqpCounters row per worker, in shared memory like the route counters.
class SharedAmqpCounters {
 public:
  explicit SharedAmqpCounters(uint32_t workers);
  ~SharedAmqpCounters();
  SharedAmqpCounters(const SharedAmqpCounters&) = delete;
  SharedAmqpCounters& operator=(const SharedAmqpCounters&) = delete;

  bool ok() const { return base_ != nullptr; }
  AmqpCounters& at(uint32_t worker) { return base_[worker]; }
  uint64_t sum(std::atomic<uint64_t> AmqpCounters::*field) const;
  // ,"amqp":{...} for the stats JSON.
  std::string json(const MockAmqp& amqp) const;
  // One line for the exit summary.
  std::string summary_line() const;

 private:
  uint32_t workers_;
  size_t bytes_ = 0;
  AmqpCounters* base_ = nullptr;
};

class MockAmqpLink final : private http::ClientListener, private amqp::SessionListener {
 public:
  MockAmqpLink(net::EventLoop& loop, const MockConfig& config, uint32_t worker,
               AmqpCounters& counters, Prng& prng, SocketRuntime& sockets);
  ~MockAmqpLink() override;
  MockAmqpLink(const MockAmqpLink&) = delete;
  MockAmqpLink& operator=(const MockAmqpLink&) = delete;

  // Resolves the broker and connects (a failure is retried like a lost connection).
  void start();
  // Shutdown: closes the connection; nothing is published after (what was
  // still waiting, or is scheduled during the drain, counts as publish_failed).
  void stop();
  // A route's publish for the request the renderer was begun with
  // (TemplateRenderer::begin): rendered now, due `answer_delay_us` plus a
  // draw from the publish's latency from now. The fail draw is made here too.
  void schedule(const RoutePublish& publish, TemplateRenderer& renderer, int64_t answer_delay_us);
  bool ready() const { return ready_; }

 private:
  struct Pending {
    int64_t due_ns = 0;
    uint64_t sequence = 0;  // FIFO among equal due times
    bool retry = false;
    std::string exchange;
    std::string routing_key;
    std::string retry_queue;
    amqp::BasicProperties properties;
    std::string body;
  };
  struct Later {
    bool operator()(const Pending& a, const Pending& b) const {
      return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.sequence > b.sequence;
    }
  };

  void on_connected(http::ClientConnection& connection) override;
  void on_response(http::ClientConnection&, int, int64_t) override {}
  void on_failure(http::ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(http::ClientConnection& connection) override;
  size_t on_data(http::ClientConnection& connection, char* data, size_t size) override;
  void on_writable(http::ClientConnection&) override {}
  void on_open(amqp::Session& session) override;
  void on_reply(amqp::Session& session, const amqp::ServerMethod& reply) override;
  void on_confirm(amqp::Session&, uint64_t, bool, bool) override {}
  void on_delivery(amqp::Session& session, const amqp::Delivery& delivery) override;
  void on_return(amqp::Session& session, const amqp::ServerMethod& returned) override;
  void on_blocked(amqp::Session&, bool) override {}
  void on_failed(amqp::Session& session, amqp::Failure failure, uint16_t code,
                 std::string_view text) override;
  void on_closed(amqp::Session& session) override;

  void connect();
  void flush();
  void after_session();
  void down(const std::string& why);
  void publish_due();
  void returned_from_retry(const amqp::Delivery& delivery);
  void push_delivery(size_t row, const amqp::Delivery& delivery);
  void set_connected(bool connected);

  net::EventLoop& loop_;
  const MockConfig& config_;
  const MockAmqp& amqp_;
  uint32_t worker_;
  AmqpCounters& counters_;
  Prng& prng_;
  SocketRuntime& sockets_;
  amqp::SessionOptions options_;
  metrics::Snapshot stats_;
  http::ClientContext context_;
  std::unique_ptr<http::ClientConnection> conn_;
  std::unique_ptr<amqp::Session> session_;
  std::unique_ptr<amqp::Session> retired_;  // ended inside one of its own calls
  std::vector<std::string> retry_queues_;   // distinct returns_to queues, consumed with acks
  std::vector<Pending> pending_;            // a heap (Later)
  uint64_t sequence_ = 0;
  net::Timer due_timer_;
  net::Timer retry_timer_;
  net::Timer tick_timer_;
  int64_t backoff_ns_ = 0;
  uint64_t failures_in_a_row_ = 0;
  bool resolved_ = false;
  bool ready_ = false;
  bool stopped_ = false;
  bool session_failed_ = false;
  std::string failure_text_;
  std::string scratch_;
  std::string json_scratch_;
};

}  // namespace millstone::mock
