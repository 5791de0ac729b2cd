#pragma once
// One worker's AMQP connection for amqp.* steps (docs/amqp.md#scenario-steps):
// an amqp::Session over a ClientConnection in raw mode, on the worker's event
// loop. Once open it declares the plan's exchanges and queues, binds them,
// and consumes every queue an amqp.expect reads from (consumer tag = the
// queue's index), so all the worker's VUs share one connection and one
// consumer per queue. A lost connection is reported and retried.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "amqp/session.h"
#include "http/client_connection.h"
#include "net/event_loop.h"
#include "scenario/plan.h"

namespace millstone::scenario {

class AmqpLinkListener {
 public:
  virtual ~AmqpLinkListener() = default;
  // Declared, bound and consuming: publishes may go.
  virtual void on_amqp_ready() = 0;
  // A message on consumed queue `queue` (an index into AmqpSettings::consumed).
  virtual void on_amqp_delivery(uint32_t queue, const amqp::Delivery& delivery, int64_t now_ns) = 0;
  // Publisher confirms: the broker took (ack) or lost (nack) tag `tag`,
  // or every tag up to it when `multiple`.
  virtual void on_amqp_confirm(uint64_t tag, bool multiple, bool ack) = 0;
  // The connection is gone; `why` for people, `cause` what to count.
  // It reconnects by itself unless `for_good` (a TLS verdict: a
  // certificate or version that would fail again).
  virtual void on_amqp_down(std::string_view why, metrics::ErrorCause cause, bool for_good) = 0;
};

class AmqpLink final : private http::ClientListener, private amqp::SessionListener {
 public:
  // `worker`: the index that replaces {{ worker }} in queue names and keys.
  // `tls`: amqps:// (the scenario's defaults: tls: verification), else
  // null; `server_name` the name sent and verified ("" = the URL's host).
  AmqpLink(net::EventLoop& loop, const AmqpSettings& settings, uint32_t worker,
           AmqpLinkListener& listener, metrics::Snapshot* stats, tls::TlsClientContext* tls,
           std::string_view server_name);
  ~AmqpLink() override;

  // Resolves the broker's address and connects. False with *error if the
  // host does not resolve.
  bool start(int64_t now_ns, std::string* error);
  // Heartbeats, connect timeout; call often (the workload's sweep).
  void tick(int64_t now_ns);
  void stop();
  bool ready() const { return ready_; }
  // False when not ready (the message is not sent). *confirm_tag: the tag
  // its confirm will carry (AmqpSettings::confirms), else 0.
  bool publish(std::string_view exchange, std::string_view routing_key,
               const amqp::BasicProperties& properties, std::string_view body,
               uint64_t* confirm_tag);
  // Manual acknowledgements of deliveries on this connection.
  void settle(uint64_t delivery_tag, AmqpStep::Settle how, bool requeue);

 private:
  void on_connected(http::ClientConnection& connection) override;
  void on_response(http::ClientConnection&, int, int64_t) override {}
  void on_failure(http::ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(http::ClientConnection& connection) override;
  size_t on_data(http::ClientConnection& connection, char* data, size_t size) override;
  void on_writable(http::ClientConnection&) override {}
  void on_open(amqp::Session& session) override;
  void on_reply(amqp::Session& session, const amqp::ServerMethod& reply) override;
  void on_confirm(amqp::Session& session, uint64_t tag, bool multiple, bool ack) override;
  void on_delivery(amqp::Session& session, const amqp::Delivery& delivery) override;
  void on_return(amqp::Session&, const amqp::ServerMethod&) override {}
  void on_blocked(amqp::Session&, bool) override {}
  void on_failed(amqp::Session& session, amqp::Failure failure, uint16_t code,
                 std::string_view text) override;
  void on_closed(amqp::Session& session) override;

  void flush();
  void after_session();
  void down(std::string why, metrics::ErrorCause cause, bool for_good);

  net::EventLoop& loop_;
  const AmqpSettings& settings_;
  uint32_t worker_;
  AmqpLinkListener& listener_;
  amqp::SessionOptions options_;
  http::ClientContext context_;
  std::unique_ptr<http::ClientConnection> conn_;
  std::unique_ptr<amqp::Session> session_;
  std::unique_ptr<amqp::Session> retired_;  // ended inside one of its own calls
  net::Timer retry_;
  bool ready_ = false;
  bool stopped_ = false;
  bool session_failed_ = false;
  std::string failure_text_;
};

}  // namespace millstone::scenario
