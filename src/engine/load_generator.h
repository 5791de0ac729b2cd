#pragma once
// The load model of one worker: owns its connections and decides when each
// sends. Closed model: every connection keeps one request in flight. Open
// model: requests are due on a fixed schedule (start + k / rate), whether or
// not the target keeps up; latency is measured from the due time, so a
// stalled server cannot hide its stall (no coordinated omission).
//
// HTTP/2 (--http2): each connection carries up to --streams requests at once.
// Due times are per request: the pacer hands a due request to any connection
// with a free stream, else keeps its due time in the backlog, so latency
// still counts from when it was due. Closed model: every stream of every
// connection keeps one request in flight.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "engine/run_plan.h"
#include "engine/workload.h"
#include "http/client_connection.h"
#include "http2/connection.h"
#include "metrics/snapshot.h"
#include "net/event_loop.h"

namespace millstone::engine {

class LoadGenerator final : public Workload,
                            public http::ClientListener,
                            public http2::ConnectionListener {
 public:
  // A request counts as started late when sent this long after it was due.
  static constexpr int64_t kLateThresholdNs = 1'000'000;

  LoadGenerator(net::EventLoop& loop, const RunPlan& plan, SnapshotSink sink);
  ~LoadGenerator() override;

  bool start(std::string* error) override;
  void stop() override;
  bool finished() const override { return finished_; }

  void on_connected(http::ClientConnection& connection) override;
  void on_response(http::ClientConnection& connection, int status, int64_t done_ns) override;
  void on_failure(http::ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(http::ClientConnection& connection) override;

  // HTTP/2 connections.
  void on_capacity(http2::Connection& connection) override;
  void on_response(http2::Connection& connection, http::RequestToken token,
                   const http::ResponseInfo& response, int64_t done_ns) override;
  void on_request_failed(http2::Connection& connection, http::RequestToken token,
                         metrics::ErrorCause cause) override;
  void on_closed(http2::Connection& connection, std::optional<metrics::ErrorCause> cause) override;

 private:
  struct Slot {
    Slot(net::EventLoop& loop, LoadGenerator& owner, http::ClientContext& context, uint32_t index);
    http::ClientConnection connection;
    net::Timer reconnect;
    uint32_t consecutive_failures = 0;
  };

  struct H2Slot {
    H2Slot(net::EventLoop& loop, LoadGenerator& owner, http::ClientContext& context,
           const http2::Settings& settings, uint32_t index);
    http2::Connection connection;
    net::Timer reconnect;
    uint32_t consecutive_failures = 0;
    uint64_t responses = 0;  // since the last connect
    bool in_ready = false;   // listed in ready_
  };

  bool open_model() const { return plan_.rate > 0; }
  // Open model: sends a due request now if any connection can take it.
  bool dispatch(int64_t intended, int64_t now);
  void send_h2(http2::Connection& connection, int64_t intended, int64_t now);
  void sweep_h2(int64_t now, int64_t timeout_ns, int64_t connect_timeout_ns);
  void became_idle(http::ClientConnection& connection, int64_t now);
  void send(http::ClientConnection& connection, int64_t intended, int64_t now);
  void schedule_reconnect(Slot& slot, bool after_failure);
  void on_pace();
  int64_t due_time(uint64_t k) const;
  void on_second();
  void on_sweep();
  void open_next_connections();

  net::EventLoop& loop_;
  RunPlan plan_;
  SnapshotSink sink_;
  std::unique_ptr<tls::TlsClientContext> tls_;  // https only; context_ points into it
  http::ClientContext context_;
  metrics::Snapshot current_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::unique_ptr<H2Slot>> h2_slots_;  // --http2: these instead of slots_
  std::unique_ptr<http2::Request> h2_request_;
  // Open model, HTTP/2: slots that had a free stream when last seen (checked
  // again when taken).
  std::vector<uint32_t> ready_;
  std::vector<http::ClientConnection*> idle_;  // open model: connections ready to send
  std::deque<int64_t> backlog_;                // open model: due times waiting for a connection
  net::Timer second_timer_;
  net::Timer end_timer_;
  net::Timer sweep_timer_;
  net::Timer pace_timer_;
  net::Timer open_timer_;  // opens connections a batch per loop turn
  uint32_t opened_slots_ = 0;
  int64_t start_ns_ = 0;
  int64_t end_ns_ = 0;
  uint64_t next_due_index_ = 0;
  uint64_t interval_index_ = 0;
  bool running_ = false;
  bool finished_ = false;
};

}  // namespace millstone::engine
