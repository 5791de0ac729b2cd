#pragma once
// Runs a compiled scenario in one worker process: its share of every
// scenario's virtual users (or arrival rate), each VU executing its flow's
// program over its own keep-alive connection, with think times, data rows,
// extraction, checks and cookies. Reports per-second snapshots with
// per-step, per-check and per-flow statistics.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/workload.h"
#include "grpc/session.h"
#include "http/client_connection.h"
#include "http/session_connection.h"
#include "http2/session.h"
#include "metrics/snapshot.h"
#include "net/event_loop.h"
#include "random/randomness.h"
#include "scenario/amqp_link.h"
#include "scenario/correlation.h"
#include "scenario/extract.h"
#include "scenario/plan.h"
#include "scenario/response_view.h"
#include "tls/client_context.h"

namespace millstone::scenario {

class VirtualUser;
struct RunState;
struct SocketSession;
struct WsEvents;

struct WorkerShare {
  uint32_t index = 0;
  uint32_t count = 1;
  std::string address;  // the target, resolved by the coordinator
  uint16_t port = 0;
  int64_t connect_timeout_us = 5'000'000;
  std::vector<std::string> source_addresses;  // numeric; connections are spread over them
};

class ScenarioWorkload final : public engine::Workload,
                               public http::ClientListener,
                               public http::SessionConnectionListener,
                               public AmqpLinkListener {
 public:
  ScenarioWorkload(net::EventLoop& loop, const Plan& plan, WorkerShare share, SnapshotSink sink);
  ~ScenarioWorkload() override;

  bool start(int64_t start_ns, std::string* error) override;
  void stop() override;
  void release() override;
  bool finished() const override { return finished_; }

  void on_connected(http::ClientConnection& connection) override;
  void on_response(http::ClientConnection& connection, int status, int64_t done_ns) override;
  void on_failure(http::ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(http::ClientConnection& connection) override;
  size_t on_data(http::ClientConnection& connection, char* data, size_t size) override;
  void on_writable(http::ClientConnection& connection) override;

  // http: 2 steps, over each VU's HTTP/2 connection.
  void on_capacity(http::SessionConnection& connection) override;
  void on_response(http::SessionConnection& connection, http::RequestToken token,
                   const http::ResponseInfo& response, int64_t done_ns) override;
  void on_request_failed(http::SessionConnection& connection, http::RequestToken token,
                         metrics::ErrorCause cause) override;
  void on_closed(http::SessionConnection& connection,
                 std::optional<metrics::ErrorCause> cause) override;

  // amqp.* steps, over the worker's one AMQP connection (workload_amqp.cc).
  void on_amqp_ready() override;
  void on_amqp_delivery(uint32_t queue, const amqp::Delivery& delivery, int64_t now_ns) override;
  void on_amqp_confirm(uint64_t tag, bool multiple, bool ack) override;
  void on_amqp_down(std::string_view why, metrics::ErrorCause cause, bool for_good) override;

  // Integer share of a whole-run count for this worker (exact across workers).
  static uint64_t share_of(uint64_t total, uint32_t index, uint32_t count);
  // The iterations executor's share of `iterations` for worker `index`: in
  // proportion to its share of `vus`, so a worker without VUs gets none.
  // Arrival-rate executors: when worker `index` of `count` starts its k-th
  // iteration, `start_ns` being the scenario's start. The fleet's iterations
  // are numbered k * count + index (k6's execution segments), so the merged
  // arrivals of every worker (on every agent) are those of one worker
  // running the whole rate, evenly spaced, not `count` at a time.
  static int64_t arrival_due_ns(const Executor& ex, int64_t start_ns, uint32_t index,
                                uint32_t count, uint64_t k);
  static uint64_t iterations_share(uint64_t iterations, uint64_t vus, uint32_t index,
                                   uint32_t count);

 private:
  friend struct RunState;
  friend class VirtualUser;
  friend struct WsEvents;
  void on_vu_timer(VirtualUser& vu);
  // JSON paths of one request, evaluated with one parse per response.
  struct RequestPaths {
    std::vector<const JsonPath*> paths;
    std::vector<int> extraction_path;  // per extraction: index in paths, or -1
    std::vector<int> check_path;       // per check: index in paths, or -1
    std::vector<int> until_path;       // per until: check (polls): index in paths, or -1
  };

  VirtualUser* new_vu(RunState& run);
  uint64_t alive_vus() const;
  void note_alive();  // keeps the interval's peak of alive VUs
  uint32_t pick_flow(const RunState& run, uint64_t sequence) const;
  void start_iteration(VirtualUser& vu, int64_t intended_ns);
  void execute(VirtualUser& vu);
  void execute_steps(VirtualUser& vu);
  // from: (Instruction::from, docs/scenarios.md#end-to-end-latency): when
  // the current step's latency counts from; `fallback` is the step's own
  // default. mark_origin: the current step is due now (`due_ns`); kept when
  // a later from: names it. request_due: an HTTP request is due.
  int64_t origin_of(const VirtualUser& vu, int64_t fallback) const;
  void mark_origin(VirtualUser& vu, int64_t due_ns);
  void request_due(VirtualUser& vu, int64_t intended_ns);
  // A request step with until: whose response did not satisfy it: the next
  // poll after its interval, or poll_timeout.
  void poll_again(VirtualUser& vu, const HttpRequest& request, int64_t done_ns);
  void send_request(VirtualUser& vu);
  void transmit(VirtualUser& vu, int64_t now);
  void render_request(VirtualUser& vu, const HttpRequest& request, int64_t now);
  // http: 2: the request as a protocol-neutral spec, encoded for HTTP/2.
  void render_h2_request(VirtualUser& vu, const HttpRequest& request);
  void send_h2_request(VirtualUser& vu, int64_t now);
  void submit_h2(VirtualUser& vu, int64_t now);
  // grpc steps (workload_grpc.cc), over the same HTTP/2 connection. False:
  // the rendered message does not fit its type (nothing to send).
  bool render_grpc_request(VirtualUser& vu, const HttpRequest& request);
  void grpc_response(VirtualUser& vu, const HttpRequest& request,
                     const http::ResponseInfo& response, int64_t intended_ns, int64_t done_ns);
  // A request that ended without a response (transport, timeout, protocol).
  void request_failed(VirtualUser& vu, metrics::ErrorCause cause);
  // `path` is the request's path (cookies), `intended_ns` when it was due.
  void process_response(VirtualUser& vu, const ResponseView& view, std::string_view path,
                        int64_t intended_ns, int64_t done_ns);
  void finish_iteration(VirtualUser& vu, bool completed);
  bool take_data_rows(VirtualUser& vu);
  void after_iteration(VirtualUser& vu);
  void retire(VirtualUser& vu);
  void on_tick(RunState& run);
  void on_run_end(RunState& run);
  void on_run_hard_end(RunState& run);
  void on_second();
  void on_sweep();
  void check_finished();
  int64_t arrival_due(const RunState& run, uint64_t k) const;

  // AMQP steps (workload_amqp.cc).
  bool prepare_amqp(int64_t start_ns, std::string* error);
  void run_amqp_step(VirtualUser& vu);
  void amqp_publish(VirtualUser& vu, int64_t now);
  void amqp_timer(VirtualUser& vu);
  void amqp_step_ok(VirtualUser& vu, int64_t latency_ns);
  void amqp_step_failed(VirtualUser& vu, const metrics::ErrorCause* cause);
  // Leaves a wait the VU is in (end of its iteration or of the run).
  void amqp_abandon(VirtualUser& vu);
  void amqp_sweep(int64_t now);
  // Held messages of consumed queue `queue` past the hold time: counted
  // unmatched, acknowledged with manual acks.
  void amqp_ack_expired(uint32_t queue, int64_t now);
  RenderContext render_context(const VirtualUser& vu);

  // WebSocket and TCP steps (workload_sockets.cc).
  bool prepare_sockets(std::string* error);
  void run_socket_step(VirtualUser& vu);
  void socket_connected(VirtualUser& vu);
  void socket_response(VirtualUser& vu, int status, int64_t done_ns);
  void socket_failure(VirtualUser& vu, metrics::ErrorCause cause);
  size_t socket_data(VirtualUser& vu, char* data, size_t size);
  void socket_message(VirtualUser& vu, std::string_view message);
  // The waiting ws.expect/tcp.expect/hold judges a message that arrived at `now`.
  void match_message(VirtualUser& vu, std::string_view message, int64_t now);
  // Messages kept for a ws.expect that did not come: counted unsolicited.
  void drop_early(VirtualUser& vu);
  void socket_server_close(VirtualUser& vu, uint16_t code);
  void socket_protocol_error(VirtualUser& vu, uint16_t close_code);
  void socket_timer(VirtualUser& vu);
  void socket_writable(VirtualUser& vu);
  void socket_step_ok(VirtualUser& vu, int64_t latency_ns);
  // failed: counted as failed; with a cause also as an error of that cause.
  void socket_step_failed(VirtualUser& vu, const metrics::ErrorCause* cause);
  void end_socket(VirtualUser& vu, metrics::DisconnectCause cause);
  bool send_ws_frame(VirtualUser& vu, uint8_t opcode, std::string_view payload);
  bool send_ws_close(VirtualUser& vu, uint16_t code, std::string_view reason);
  const SocketStep& current_socket_step(const VirtualUser& vu) const;

  net::EventLoop& loop_;
  const Plan& plan_;
  WorkerShare share_;
  SnapshotSink sink_;
  http::ClientContext context_;
  metrics::Snapshot current_;
  random::Prng prng_;
  JsonEvaluator json_;
  std::vector<std::vector<RequestPaths>> paths_;  // [flow][request]
  // Per socket step: JSON paths (checks, then extractions, then latency_from
  // last) and, for connect steps, where to connect.
  std::vector<std::vector<RequestPaths>> socket_paths_;  // [flow][socket step]
  struct SocketTarget {
    net::Endpoint endpoint;
    bool bind_sources = false;  // the sources (chosen for the HTTP target) suit it
    // TLS steps: the worker's context and this server's target; else null.
    tls::TlsClientContext* tls = nullptr;
    tls::TlsTarget* tls_target = nullptr;
  };
  // TLS (defaults: tls:), built once per worker in start() when the plan
  // uses it: one context offering ALPN http/1.1 (https, wss) and one without
  // ALPN for tcp.connect with tls: true (a raw TCP server may refuse an
  // ALPN it does not know).
  std::unique_ptr<tls::TlsClientContext> tls_http_;
  std::unique_ptr<tls::TlsClientContext> tls_raw_;
  // http: 2 steps: their connections' context (ALPN h2 over TLS) and sessions.
  std::unique_ptr<tls::TlsClientContext> tls_h2_;
  http::ClientContext h2_context_;
  std::unique_ptr<http2::SessionFactory> h2_factory_;
  bool prepare_h2(std::string* error);
  bool prepare_tls(std::string* error);
  std::vector<std::vector<SocketTarget>> socket_targets_;  // [flow][socket step]
  uint64_t open_sockets_ = 0;
  std::string frame_;  // an outgoing WebSocket frame being built
  std::unique_ptr<AmqpLink> amqp_;
  std::vector<CorrelationTable> correlations_;       // per consumed queue
  std::vector<VirtualUser*> amqp_parked_;            // publishes waiting for the connection
  std::map<uint64_t, uint32_t> amqp_confirms_;       // confirm tag -> VU (kConfirm waits)
  std::vector<uint64_t> amqp_tags_;                  // delivery tags to acknowledge (scratch)
  std::unique_ptr<tls::TlsClientContext> tls_amqp_;  // amqps://
  bool amqp_gone_ = false;  // the connection failed for good (a TLS verdict)
  uint64_t run_tag_ = 0;    // {{ corr }}
  std::string amqp_body_;
  std::vector<JsonEvaluator::Outcome> amqp_outcomes_;
  std::vector<JsonEvaluator::Value> amqp_values_;
  std::vector<std::unique_ptr<RunState>> runs_;
  std::vector<std::unique_ptr<VirtualUser>> vus_;
  std::vector<uint64_t> data_cursor_;    // per data source: rows taken by this worker
  std::vector<std::string> data_cells_;  // a row being taken, decoded (capacity reused)
  std::string host_header_;
  std::string scratch_;
  // grpc steps: a message's JSON (rendered, or a response decoded), its
  // bytes, and the call being judged.
  std::string grpc_json_;
  std::string grpc_bytes_;
  grpc::CapturedCall grpc_call_;
  net::Timer second_timer_;
  net::Timer sweep_timer_;
  net::Timer end_timer_;
  int64_t start_ns_ = 0;
  uint64_t interval_index_ = 0;
  uint64_t vus_created_ = 0;
  bool running_ = false;
  bool finished_ = false;
};

}  // namespace millstone::scenario
