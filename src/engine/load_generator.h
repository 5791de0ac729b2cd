#pragma once
// The load model of one worker: owns its connections and decides when each
// sends. Closed model: every connection keeps one request in flight. Open
// model: requests are due on a fixed schedule (start + k / rate), whether or
// not the target keeps up; latency is measured from the due time, so a
// stalled server cannot hide its stall (no coordinated omission).
//
// Every connection runs a protocol Session (http/session.h): HTTP/1.1 with
// one request in flight, or HTTP/2 (--http2) with up to --streams at once.
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
#include "http/session.h"
#include "http/session_connection.h"
#include "metrics/snapshot.h"
#include "net/event_loop.h"

namespace millstone::engine {

class LoadGenerator final : public Workload, public http::SessionConnectionListener {
 public:
  // A request counts as started late when sent this long after it was due.
  static constexpr int64_t kLateThresholdNs = 1'000'000;

  LoadGenerator(net::EventLoop& loop, const RunPlan& plan, SnapshotSink sink);
  ~LoadGenerator() override;

  bool start(int64_t start_ns, std::string* error) override;
  void stop() override;
  bool finished() const override { return finished_; }

  void on_capacity(http::SessionConnection& connection) override;
  void on_response(http::SessionConnection& connection, http::RequestToken token,
                   const http::ResponseInfo& response, int64_t done_ns) override;
  void on_request_failed(http::SessionConnection& connection, http::RequestToken token,
                         metrics::ErrorCause cause) override;
  void on_closed(http::SessionConnection& connection,
                 std::optional<metrics::ErrorCause> cause) override;

  // Open model: when request k of worker `index` of `count`, paced at
  // `worker_rate` per second, is due. Worker i's k-th request is the fleet's
  // request k * count + i at `worker_rate * count` per second (k6's execution
  // segments): the merged schedule of every worker is evenly spaced, as one
  // generator's would be, instead of `count` requests at each tick.
  static int64_t due_time(int64_t start_ns, double worker_rate, uint32_t index, uint32_t count,
                          uint64_t k);

 private:
  struct Slot {
    Slot(net::EventLoop& loop, LoadGenerator& owner, http::ClientContext& context,
         http::SessionFactory& factory, uint32_t index);
    http::SessionConnection connection;
    net::Timer reconnect;
    uint32_t consecutive_failures = 0;
    uint64_t responses = 0;  // since the last connect
    bool in_ready = false;   // listed in ready_
  };

  bool open_model() const { return plan_.rate > 0; }
  // Open model: sends a due request now if any connection can take it.
  bool dispatch(int64_t intended, int64_t now);
  void send(http::SessionConnection& connection, int64_t intended, int64_t now);
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
  std::unique_ptr<http::SessionFactory> factory_;
  std::unique_ptr<http::PreparedRequest> request_;  // the run's one request, encoded once
  std::vector<std::unique_ptr<Slot>> slots_;
  // Open model: slots that had capacity when last seen (checked again when taken).
  std::vector<uint32_t> ready_;
  std::deque<int64_t> backlog_;  // open model: due times waiting for a connection
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
