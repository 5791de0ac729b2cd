#include "scenario/workload.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "grpc/status.h"
#include "http/syntax.h"
#include "net/clock.h"
#include "scenario/cookie_jar.h"
#include "scenario/virtual_user.h"

namespace millstone::scenario {

using http::ClientConnection;
using metrics::ErrorCause;

namespace {
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int64_t kTickNs = 50 * net::kNsPerMs;  // ramping executors adjust this often
// Request and connect timeouts are found by a pass over every VU this often:
// timeouts are at least 100 ms late at worst, and the pass costs little at 100,000 VUs.
constexpr int64_t kSweepNs = 100 * net::kNsPerMs;
constexpr int64_t kFirstBackoffNs = 10 * net::kNsPerMs;
constexpr int64_t kMaxBackoffNs = 1 * net::kNsPerSec;
// Steps one VU may complete synchronously in a row (ws.send into a socket
// with room, tcp.close, ...) before it yields to the event loop.
constexpr uint32_t kMaxSynchronousSteps = 1024;

int64_t unix_ms_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

using http::syntax::iequals;

// Piecewise-linear target over stages, from `start` at t = 0.
double stage_target(double start, const std::vector<Stage>& stages, int64_t t_us) {
  double from = start;
  int64_t offset = 0;
  for (const Stage& stage : stages) {
    if (t_us < offset + stage.duration_us) {
      double f = static_cast<double>(t_us - offset) / static_cast<double>(stage.duration_us);
      return from + (stage.target - from) * f;
    }
    offset += stage.duration_us;
    from = stage.target;
  }
  return from;
}

}  // namespace

struct RunState {
  RunState(net::EventLoop& loop, ScenarioWorkload& owner, const ScenarioRun& run)
      : run(run),
        tick(loop, [this, &owner] { owner.on_tick(*this); }),
        end(loop, [this, &owner] { owner.on_run_end(*this); }),
        hard_end(loop, [this, &owner] { owner.on_run_hard_end(*this); }) {}
  const ScenarioRun& run;
  net::Timer tick;  // pacing (arrival rate) or ramp adjustment (ramping VUs)
  net::Timer end;
  net::Timer hard_end;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  std::vector<VirtualUser*> idle;  // arrival-rate pool
  std::vector<VirtualUser*> members;
  std::vector<VirtualUser*> retired;  // reusable when ramping up again
  std::vector<double> cumulative_weights;
  uint64_t alive = 0;
  uint64_t stopping = 0;  // alive, but told to stop after their iteration (ramping down)
  uint64_t vu_limit = 0;  // arrival rate: max VUs for this worker
  uint64_t next_arrival = 0;
  uint64_t iterations_left = 0;  // iterations executor
  uint64_t out_of_data = 0;      // VUs stopped because unique rows ran out
  bool started = false;
  bool accepting = false;  // new iterations may start
  bool done = false;
};

ScenarioWorkload::ScenarioWorkload(net::EventLoop& loop, const Plan& plan, WorkerShare share,
                                   SnapshotSink sink)
    : loop_(loop),
      plan_(plan),
      share_(std::move(share)),
      sink_(std::move(sink)),
      prng_(random::Prng::for_worker(plan.seed, share_.index)),
      second_timer_(loop, [this] { on_second(); }),
      sweep_timer_(loop, [this] { on_sweep(); }),
      end_timer_(loop, [this] { stop(); }) {}

ScenarioWorkload::~ScenarioWorkload() = default;

uint64_t ScenarioWorkload::share_of(uint64_t total, uint32_t index, uint32_t count) {
  // floor(total * (i + 1) / n) - floor(total * i / n): shares add up to total exactly.
  __extension__ using Uint128 = unsigned __int128;
  Uint128 t = total;
  return static_cast<uint64_t>(t * (index + 1) / count - t * index / count);
}

uint64_t ScenarioWorkload::iterations_share(uint64_t iterations, uint64_t vus, uint32_t index,
                                            uint32_t count) {
  // Iterations follow the VUs: with fewer VUs than workers, a worker that has
  // no VU must get no iteration, or its share is never run. Worker i's VUs
  // are the VU ids [floor(vus * i / n), floor(vus * (i + 1) / n)); it gets the
  // iterations of the same fraction of the total, so the shares add up.
  if (vus == 0) return 0;
  __extension__ using Uint128 = unsigned __int128;
  const Uint128 first_vu = Uint128{vus} * index / count;
  const Uint128 end_vu = Uint128{vus} * (index + 1) / count;
  return static_cast<uint64_t>(Uint128{iterations} * end_vu / vus -
                               Uint128{iterations} * first_vu / vus);
}

bool ScenarioWorkload::start(int64_t start_ns, std::string* error) {
  auto endpoint = net::make_endpoint(share_.address, share_.port);
  if (!endpoint) {
    *error = "worker got a non-numeric target address '" + share_.address + "'";
    return false;
  }
  context_.endpoint = *endpoint;
  if (!net::parse_sources(share_.source_addresses, endpoint->family(), &context_.sources, error)) {
    return false;
  }
  context_.read_buffer.resize(kReadBufferBytes);
  context_.stats = &current_;
  host_header_ = plan_.target.host_header();
  current_.steps.resize(plan_.step_names.size());
  current_.checks.resize(plan_.check_names.size());
  current_.flows.resize(plan_.flows.size());
  data_cursor_.assign(plan_.data.size(), 0);

  if (!prepare_tls(error)) return false;
  if (!prepare_h2(error)) return false;
  if (!prepare_sockets(error)) return false;
  if (!prepare_amqp(start_ns, error)) return false;

  // Which JSON paths each request needs, so one parse serves them all.
  paths_.resize(plan_.flows.size());
  for (size_t f = 0; f < plan_.flows.size(); ++f) {
    for (const HttpRequest& request : plan_.flows[f].requests) {
      RequestPaths rp;
      for (const Extraction& e : request.extractions) {
        const JsonPath* path = e.extractor.json_path();
        rp.extraction_path.push_back(path ? static_cast<int>(rp.paths.size()) : -1);
        if (path) rp.paths.push_back(path);
      }
      for (const NamedCheck& c : request.checks) {
        const JsonPath* path = c.check.json_path();
        rp.check_path.push_back(path ? static_cast<int>(rp.paths.size()) : -1);
        if (path) rp.paths.push_back(path);
      }
      if (request.poll) {
        for (const Check& c : request.poll->until) {
          const JsonPath* path = c.json_path();
          rp.until_path.push_back(path ? static_cast<int>(rp.paths.size()) : -1);
          if (path) rp.paths.push_back(path);
        }
      }
      paths_[f].push_back(std::move(rp));
    }
  }

  running_ = true;
  const int64_t now = net::now_ns();
  start_ns_ = start_ns;
  interval_index_ = engine::interval_at(start_ns_, now);
  second_timer_.arm_at(start_ns_ + static_cast<int64_t>(interval_index_ + 1) * net::kNsPerSec);
  sweep_timer_.arm_at(std::max(start_ns_, now) + kSweepNs);
  end_timer_.arm_at(start_ns_ + plan_.total_duration_us() * net::kNsPerUs);
  for (const ScenarioRun& run : plan_.scenarios) {
    auto state = std::make_unique<RunState>(loop_, *this, run);
    double total = 0;
    for (uint32_t f : run.flows) {
      total += plan_.flows[f].weight;
      state->cumulative_weights.push_back(total);
    }
    state->start_ns = start_ns_ + run.start_us * net::kNsPerUs;
    state->tick.arm_at(state->start_ns);  // the first tick starts the run
    runs_.push_back(std::move(state));
  }
  return true;
}

uint32_t ScenarioWorkload::pick_flow(const RunState& run, uint64_t sequence) const {
  // A low-discrepancy sequence (golden ratio) gives each flow its weight's
  // share even with few VUs, and the same choice on every run.
  double u = std::fmod(static_cast<double>(sequence) * 0.6180339887498949 + 0.5, 1.0) *
             run.cumulative_weights.back();
  for (size_t i = 0; i < run.cumulative_weights.size(); ++i) {
    if (u < run.cumulative_weights[i]) return run.run.flows[i];
  }
  return run.run.flows.back();
}

VirtualUser* ScenarioWorkload::new_vu(RunState& run) {
  // Reuse a retired VU of this run (ramping down, then up again).
  if (!run.retired.empty()) {
    VirtualUser* vu = run.retired.back();
    run.retired.pop_back();
    vu->retired = false;
    vu->stop_after_iteration = false;
    ++run.alive;
    note_alive();
    return vu;
  }
  uint32_t index = static_cast<uint32_t>(vus_.size());
  auto vu = std::make_unique<VirtualUser>(loop_, *this, context_, index);
  VirtualUser* raw = vu.get();
  raw->connection.set_capture(true, plan_.max_body_capture);
  raw->run = &run;
  raw->id = share_.index + 1 + vus_created_++ * share_.count;
  raw->variables.resize(plan_.variables.size());
  for (const auto& [slot, value] : plan_.constants)
    raw->variables[slot] = value;
  raw->per_vu_row = static_cast<uint32_t>(raw->id - 1);
  raw->flow = pick_flow(run, raw->id - 1);
  run.members.push_back(raw);
  ++run.alive;
  note_alive();
  vus_.push_back(std::move(vu));
  return raw;
}

uint64_t ScenarioWorkload::alive_vus() const {
  uint64_t alive = 0;
  for (const auto& run : runs_)
    alive += run->alive;
  return alive;
}

void ScenarioWorkload::note_alive() {
  current_.peak_vus = std::max(current_.peak_vus, alive_vus());
}

bool ScenarioWorkload::take_data_rows(VirtualUser& vu) {
  for (uint32_t ds : plan_.flows[vu.flow].data_sources) {
    const DataSource& source = plan_.data[ds];
    const uint64_t rows = source.table.row_count();
    if (rows == 0) continue;
    uint64_t row = 0;
    switch (source.mode) {
      case DataSource::Mode::kSequential:
        row = (share_.index + data_cursor_[ds]++ * share_.count) % rows;
        break;
      case DataSource::Mode::kRandom:
        row = prng_() % rows;
        break;
      case DataSource::Mode::kUnique:
        // Worker i takes rows i, i + n, i + 2n...: unique across workers
        // without any coordination.
        row = share_.index + data_cursor_[ds]++ * share_.count;
        if (row >= rows) return false;
        break;
      case DataSource::Mode::kPerVu:
        row = vu.per_vu_row % rows;
        break;
    }
    source.table.read_row(row, &data_cells_);
    for (size_t c = 0; c < source.column_slots.size(); ++c) {
      vu.variables[source.column_slots[c]] = data_cells_[c];
    }
  }
  return true;
}

void ScenarioWorkload::start_iteration(VirtualUser& vu, int64_t intended_ns) {
  RunState& run = *vu.run;
  if (run.run.executor.kind == Executor::Kind::kConstantArrivalRate ||
      run.run.executor.kind == Executor::Kind::kRampingArrivalRate) {
    vu.flow = pick_flow(run, run.next_arrival * share_.count + share_.index);
  }
  vu.in_iteration = true;
  vu.pc = 0;
  vu.loops.clear();
  vu.iteration_intended_ns = intended_ns;
  vu.origin_ns = intended_ns;  // an amqp.expect before any request counts from here
  vu.origins.assign(plan_.flows[vu.flow].origin_slots, 0);
  vu.poll_wait = false;
  // Only arrival-rate iterations have a due time that the first request's
  // latency counts from; a VU-based iteration starts when its VU is free.
  vu.first_request = run.run.executor.kind == Executor::Kind::kConstantArrivalRate ||
                     run.run.executor.kind == Executor::Kind::kRampingArrivalRate;
  if (!take_data_rows(vu)) {
    // Unique rows exhausted: the iteration never starts (no request was
    // sent), so it is not an aborted iteration. An arrival-rate iteration
    // that was due is dropped; a VU-based VU stops for good and is not
    // replaced, or ramping-vus would start a new one every tick.
    vu.in_iteration = false;
    if (run.run.executor.kind == Executor::Kind::kConstantArrivalRate ||
        run.run.executor.kind == Executor::Kind::kRampingArrivalRate) {
      ++current_.dropped_iterations;
      run.idle.push_back(&vu);
      return;
    }
    vu.out_of_data = true;
    ++run.out_of_data;
    retire(vu);
    return;
  }
  execute(vu);
}

void ScenarioWorkload::execute(VirtualUser& vu) {
  // Socket steps (ws.send, tcp.send, tcp.close, ...) may complete inside
  // execute_steps and ask to execute again: a trampoline, so a long loop of
  // them runs here instead of nesting one stack frame chain per step.
  if (vu.executing) {
    vu.execute_again = true;
    return;
  }
  vu.executing = true;
  for (uint32_t rounds = 0;; ++rounds) {
    vu.execute_again = false;
    if (rounds == kMaxSynchronousSteps) {
      // Let the loop (other VUs, sockets, the end of the run) have a turn.
      vu.resume_after_timer = true;
      vu.timer.arm_after(0);
      break;
    }
    execute_steps(vu);
    if (!vu.execute_again) break;
  }
  vu.executing = false;
}

void ScenarioWorkload::execute_steps(VirtualUser& vu) {
  const Flow& flow = plan_.flows[vu.flow];
  while (vu.pc < flow.program.size()) {
    const Instruction& in = flow.program[vu.pc];
    switch (in.op) {
      case Instruction::Op::kRequest:
        vu.polls = 0;
        send_request(vu);
        return;
      case Instruction::Op::kSocket:
        run_socket_step(vu);
        return;
      case Instruction::Op::kAmqp:
        run_amqp_step(vu);
        return;
      case Instruction::Op::kThink: {
        ++vu.pc;
        int64_t us = flow.think_times[in.arg].sample_us(prng_);
        if (us <= 0) break;
        vu.resume_after_timer = true;
        vu.timer.arm_after(us * net::kNsPerUs);
        return;
      }
      case Instruction::Op::kLoopBegin:
        if (in.count == 0) {
          vu.pc = in.jump;
        } else {
          vu.loops.push_back(in.count);
          ++vu.pc;
        }
        break;
      case Instruction::Op::kLoopEnd:
        if (!vu.loops.empty() && --vu.loops.back() > 0) {
          vu.pc = in.jump;
        } else {
          if (!vu.loops.empty()) vu.loops.pop_back();
          ++vu.pc;
        }
        break;
    }
  }
  finish_iteration(vu, true);
}

int64_t ScenarioWorkload::origin_of(const VirtualUser& vu, int64_t fallback) const {
  const Instruction& in = plan_.flows[vu.flow].program[vu.pc];
  switch (in.from) {
    case Instruction::From::kDefault:
      return fallback;
    case Instruction::From::kRequest:
      return vu.origin_ns;
    case Instruction::From::kStep:
      // The loader allows only earlier steps, which every iteration runs
      // before this one (loops run at least once): 0 cannot happen.
      return vu.origins[in.from_slot] != 0 ? vu.origins[in.from_slot] : fallback;
  }
  return fallback;
}

void ScenarioWorkload::mark_origin(VirtualUser& vu, int64_t due_ns) {
  const Instruction& in = plan_.flows[vu.flow].program[vu.pc];
  if (in.mark_slot != Instruction::kNoSlot) vu.origins[in.mark_slot] = due_ns;
}

void ScenarioWorkload::request_due(VirtualUser& vu, int64_t intended_ns) {
  vu.origin_ns = intended_ns;
  // A poll's step is due when its first request is; its later polls are not
  // origins.
  if (vu.polls++ > 0) return;
  vu.poll_started_ns = intended_ns;
  mark_origin(vu, intended_ns);
}

void ScenarioWorkload::poll_again(VirtualUser& vu, const HttpRequest& request, int64_t done_ns) {
  const Poll& poll = *request.poll;
  const int64_t timeout_ns =
      (poll.timeout_us > 0 ? poll.timeout_us : plan_.timeout_us) * net::kNsPerUs;
  const int64_t next_ns = done_ns + poll.interval_us * net::kNsPerUs;
  if (next_ns - vu.poll_started_ns > timeout_ns) {
    // Lost: the value did not appear in time. The step fails; the polls
    // that were answered stay counted under "<step> poll".
    current_.add_error(ErrorCause::kPollTimeout);
    metrics::StepStats& step = current_.steps[plan_.flows[vu.flow].program[vu.pc].metric];
    ++step.errors;
    ++step.failed;
    finish_iteration(vu, false);
    return;
  }
  vu.poll_wait = true;
  vu.timer.arm_at(next_ns);
}

RenderContext ScenarioWorkload::render_context(const VirtualUser& vu) {
  RenderContext ctx;
  ctx.variables = &vu.variables;
  ctx.vu_id = vu.id;
  ctx.iteration = vu.iteration;
  ctx.worker_index = share_.index;
  ctx.prng = &prng_;
  ctx.run_tag = run_tag_;
  ctx.now_unix_ms = unix_ms_now();
  return ctx;
}

void ScenarioWorkload::render_request(VirtualUser& vu, const HttpRequest& request, int64_t now) {
  const RenderContext ctx = render_context(vu);
  (void)now;

  vu.body.clear();
  request.body.render(ctx, &vu.body);
  std::string& out = vu.request;
  out.clear();
  out += request.method;
  out += ' ';
  size_t target_at = out.size();
  request.target.render(ctx, &out);
  std::string_view path(out.data() + target_at, out.size() - target_at);
  path = path.substr(0, path.find('?'));
  scratch_.clear();
  vu.cookies.render(path, ctx.now_unix_ms / 1000, &scratch_);
  out += " HTTP/1.1\r\nHost: ";
  out += host_header_;
  out += "\r\n";
  bool has_content_type = false;
  for (const auto& header : plan_.default_headers) {
    const std::string& name = header.first;
    const std::string& value = header.second;
    bool overridden = std::any_of(request.headers.begin(), request.headers.end(),
                                  [&](const auto& h) { return iequals(h.first, name); });
    if (overridden) continue;
    has_content_type = has_content_type || iequals(name, "content-type");
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  for (const auto& [name, value] : request.headers) {
    has_content_type = has_content_type || iequals(name, "content-type");
    out += name;
    out += ": ";
    value.render(ctx, &out);
    out += "\r\n";
  }
  if (!scratch_.empty()) {
    out += "Cookie: ";
    out += scratch_;
    out += "\r\n";
  }
  bool method_has_body =
      request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  if (!vu.body.empty() || method_has_body) {
    if (!has_content_type && !request.content_type.empty()) {
      out += "Content-Type: ";
      out += request.content_type;
      out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(vu.body.size());
    out += "\r\n";
  }
  out += "\r\n";
  out += vu.body;
}

void ScenarioWorkload::send_request(VirtualUser& vu) {
  const HttpRequest& request =
      plan_.flows[vu.flow].requests[plan_.flows[vu.flow].program[vu.pc].arg];
  int64_t now = net::now_ns();
  vu.request_timeout_ns =
      (request.timeout_us > 0 ? request.timeout_us : plan_.timeout_us) * net::kNsPerUs;
  if (request.grpc) {
    if (!render_grpc_request(vu, request)) {
      request_failed(vu, ErrorCause::kGrpcBadRequest);
      return;
    }
    send_h2_request(vu, now);
    return;
  }
  if (request.http_version == 2) {
    render_h2_request(vu, request);
    send_h2_request(vu, now);
    return;
  }
  render_request(vu, request, now);
  if (vu.connection.idle()) {
    transmit(vu, now);
    return;
  }
  vu.waiting_connect = true;
  if (vu.connection.state() == ClientConnection::State::kClosed) vu.connection.connect(now);
}

void ScenarioWorkload::transmit(VirtualUser& vu, int64_t now) {
  const HttpRequest& request =
      plan_.flows[vu.flow].requests[plan_.flows[vu.flow].program[vu.pc].arg];
  // The first request of an arrival-rate iteration counts from when the
  // iteration was due: a late start is latency the user would have seen.
  int64_t intended = vu.first_request ? std::min(vu.iteration_intended_ns, now) : now;
  vu.first_request = false;
  request_due(vu, intended);
  vu.connection.send(vu.request, request.method == "HEAD", intended, now);
}

void ScenarioWorkload::on_connected(ClientConnection& connection) {
  VirtualUser& vu = *vus_[connection.index()];
  if (&connection != &vu.connection) {
    socket_connected(vu);
    return;
  }
  if (!vu.waiting_connect) return;
  vu.waiting_connect = false;
  transmit(vu, net::now_ns());
}

void ScenarioWorkload::on_response(ClientConnection& connection, int status, int64_t done_ns) {
  VirtualUser& vu = *vus_[connection.index()];
  if (&connection != &vu.connection) {
    socket_response(vu, status, done_ns);
    return;
  }
  if (!running_ || !vu.in_iteration) return;
  const http::ResponseParser& response = vu.connection.response();
  ResponseView view;
  view.status = status;
  view.body = response.body();
  for (size_t i = 0; i < response.header_count(); ++i) {
    view.headers.emplace_back(response.header_name(i), response.header_value(i));
  }
  std::string_view path(vu.request);
  path = path.substr(path.find(' ') + 1);
  path = path.substr(0, path.find_first_of("? "));
  process_response(vu, view, path, vu.connection.intended_ns(), done_ns);
}

void ScenarioWorkload::process_response(VirtualUser& vu, const ResponseView& response,
                                        std::string_view path, int64_t intended_ns,
                                        int64_t done_ns) {
  const Flow& flow = plan_.flows[vu.flow];
  const Instruction& in = flow.program[vu.pc];
  const HttpRequest& request = flow.requests[in.arg];
  const RequestPaths& rp = paths_[vu.flow][in.arg];
  const int status = response.status;
  int64_t latency_us = std::max<int64_t>(0, done_ns - intended_ns) / 1000;
  ++current_.requests;
  ++current_.status_counts[static_cast<uint16_t>(status)];
  current_.latency.record(static_cast<uint64_t>(latency_us));
  vu.failures = 0;

  ResponseView view = response;
  view.latency_us = latency_us;
  int64_t now_s = unix_ms_now() / 1000;
  for (const auto& [name, value] : view.headers) {
    if (iequals(name, "set-cookie")) vu.cookies.store(value, path, now_s);
  }

  std::vector<JsonEvaluator::Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  if (!rp.paths.empty()) json_.evaluate(view.body, rp.paths, &outcomes, &values);

  if (request.poll) {
    // until: every check must hold; else this was one of the polls (counted
    // under "<step> poll", whatever its status: until: judges it) and the
    // next follows after the interval.
    bool satisfied = true;
    for (size_t i = 0; satisfied && i < request.poll->until.size(); ++i) {
      const int p = rp.until_path[i];
      std::string why;
      satisfied = request.poll->until[i].evaluate(
          view, p >= 0 ? outcomes[p] : JsonEvaluator::Outcome::kMissing,
          p >= 0 ? &values[p] : nullptr, &why);
    }
    if (!satisfied) {
      metrics::StepStats& polls = current_.steps[request.poll->metric];
      ++polls.requests;
      polls.latency.record(static_cast<uint64_t>(latency_us));
      poll_again(vu, request, done_ns);
      return;
    }
    // The step's latency: from its origin (from:, else its first poll) to
    // the response that satisfied it.
    latency_us = std::max<int64_t>(0, done_ns - origin_of(vu, vu.poll_started_ns)) / 1000;
  }

  metrics::StepStats& step = current_.steps[in.metric];
  ++step.requests;
  step.latency.record(static_cast<uint64_t>(latency_us));
  // A gRPC call fails by its grpc-status (its HTTP status is 200).
  if (status >= 400 || (request.grpc && response.grpc_status != 0)) ++step.failed;

  bool abort = false;
  for (size_t i = 0; i < request.checks.size(); ++i) {
    const NamedCheck& check = request.checks[i];
    int p = rp.check_path[i];
    std::string why;
    bool ok = check.check.evaluate(view, p >= 0 ? outcomes[p] : JsonEvaluator::Outcome::kMissing,
                                   p >= 0 ? &values[p] : nullptr, &why);
    metrics::CheckStats& stats = current_.checks[check.check_index];
    if (ok) {
      ++stats.passed;
      continue;
    }
    ++stats.failed;
    if (stats.samples.size() < metrics::CheckStats::kMaxSamples) {
      std::string body(view.body.substr(0, 120));
      for (char& c : body) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      const std::string seen =
          request.grpc ? "grpc_status " +
                             grpc::status_name(static_cast<uint32_t>(std::max(view.grpc_status, 0)))
                       : "status " + std::to_string(status);
      if (why.starts_with("grpc_status")) {
        stats.samples.push_back(why);  // says the status (and its message) already
      } else {
        stats.samples.push_back(fmt::format("{} ({}, body: {}{})", why, seen, body,
                                            view.body.size() > 120 ? "..." : ""));
      }
    }
    if (flow.abort_on_check_failure) abort = true;
  }
  for (size_t i = 0; i < request.extractions.size() && !abort; ++i) {
    const Extraction& e = request.extractions[i];
    int p = rp.extraction_path[i];
    std::string& target = vu.variables[e.slot];
    bool found;
    if (p >= 0) {
      found = outcomes[p] == JsonEvaluator::Outcome::kFound;
      if (found) target = values[p].text;
    } else {
      found = e.extractor.apply(view, &target);
    }
    if (!found) {
      if (e.default_value) {
        target = *e.default_value;
      } else {
        ++step.extract_failed;
        abort = true;
      }
    }
  }
  if (abort) {
    finish_iteration(vu, false);
    return;
  }
  ++vu.pc;
  execute(vu);
}

void ScenarioWorkload::on_failure(ClientConnection& connection, ErrorCause cause,
                                  bool had_request) {
  VirtualUser& vu = *vus_[connection.index()];
  if (&connection != &vu.connection) {
    socket_failure(vu, cause);
    return;
  }
  bool lost_request = had_request || vu.waiting_connect;
  vu.waiting_connect = false;
  if (!lost_request) return;
  request_failed(vu, cause);
}

void ScenarioWorkload::request_failed(VirtualUser& vu, ErrorCause cause) {
  if (!running_ || !vu.in_iteration) return;
  current_.add_error(cause);
  const Flow& flow = plan_.flows[vu.flow];
  metrics::StepStats& step = current_.steps[flow.program[vu.pc].metric];
  ++step.errors;
  ++step.failed;
  ++vu.failures;
  finish_iteration(vu, false);
}

void ScenarioWorkload::on_idle_close(ClientConnection&) {
  // The next request reconnects. (Socket connections are in raw mode, which
  // reports the end of the stream as a failure.)
}

size_t ScenarioWorkload::on_data(ClientConnection& connection, char* data, size_t size) {
  VirtualUser& vu = *vus_[connection.index()];
  if (&connection == &vu.connection) return size;  // HTTP connections are never raw
  return socket_data(vu, data, size);
}

void ScenarioWorkload::on_writable(ClientConnection& connection) {
  VirtualUser& vu = *vus_[connection.index()];
  if (&connection != &vu.connection) socket_writable(vu);
}

void ScenarioWorkload::finish_iteration(VirtualUser& vu, bool completed) {
  amqp_abandon(vu);
  // A flow's socket lives until the end of its iteration.
  if (vu.socket) end_socket(vu, metrics::DisconnectCause::kLocalClose);
  vu.in_iteration = false;
  ++vu.iteration;
  if (completed) {
    ++current_.flows[vu.flow].iterations;
  } else {
    ++current_.flows[vu.flow].aborted;
  }
  if (vu.failures > 0) {
    // After a transport failure, wait before the next iteration so a dead
    // target is not hammered in a busy loop.
    int64_t backoff =
        std::min(kMaxBackoffNs, kFirstBackoffNs << std::min<uint32_t>(vu.failures, 7));
    vu.resume_after_timer = false;
    vu.timer.arm_after(backoff);
    return;
  }
  after_iteration(vu);
}

void ScenarioWorkload::on_vu_timer(VirtualUser& vu) {
  if (vu.poll_wait) {
    vu.poll_wait = false;  // the interval is over: the next poll
    if (running_ && vu.in_iteration) send_request(vu);
    return;
  }
  if (vu.amqp_wait != VirtualUser::AmqpWait::kNone) {
    amqp_timer(vu);  // an amqp step's timeout
    return;
  }
  if (vu.socket && vu.socket->wait != SocketSession::Wait::kNone) {
    socket_timer(vu);  // a socket step's timeout or hold time
    return;
  }
  if (vu.resume_after_timer) {
    execute(vu);  // think time is over
  } else {
    after_iteration(vu);  // back-off after a failure is over
  }
}

void ScenarioWorkload::after_iteration(VirtualUser& vu) {
  RunState& run = *vu.run;
  if (vu.retired) return;
  if (!running_ || !run.accepting || vu.stop_after_iteration) {
    retire(vu);
    return;
  }
  switch (run.run.executor.kind) {
    case Executor::Kind::kConstantVus:
    case Executor::Kind::kRampingVus:
      start_iteration(vu, net::now_ns());
      return;
    case Executor::Kind::kIterations:
      if (run.iterations_left == 0) {
        retire(vu);
        return;
      }
      --run.iterations_left;
      start_iteration(vu, net::now_ns());
      return;
    case Executor::Kind::kConstantArrivalRate:
    case Executor::Kind::kRampingArrivalRate:
      run.idle.push_back(&vu);
      return;
  }
}

void ScenarioWorkload::retire(VirtualUser& vu) {
  if (vu.retired) return;
  vu.retired = true;
  if (vu.stop_after_iteration) --vu.run->stopping;
  vu.timer.cancel();
  if (vu.connection.busy()) ++current_.in_flight;  // cut off at a scenario's hard end
  vu.connection.close();
  if (vu.h2) {
    if (vu.h2->in_flight() > 0) ++current_.in_flight;
    vu.h2->close();
  }
  vu.h2_waiting = false;
  if (vu.socket) end_socket(vu, metrics::DisconnectCause::kLocalClose);
  vu.waiting_connect = false;
  RunState& run = *vu.run;
  --run.alive;
  if (!vu.out_of_data) run.retired.push_back(&vu);
  auto it = std::find(run.idle.begin(), run.idle.end(), &vu);
  if (it != run.idle.end()) run.idle.erase(it);
  check_finished();
}

int64_t ScenarioWorkload::arrival_due(const RunState& run, uint64_t k) const {
  return arrival_due_ns(run.run.executor, run.start_ns, share_.index, share_.count, k);
}

int64_t ScenarioWorkload::arrival_due_ns(const Executor& ex, int64_t start_ns, uint32_t index,
                                         uint32_t count, uint64_t k) {
  // Iteration k (counted across all workers as k * n + i) is due when the
  // cumulative rate integral reaches it; rates are per second of the whole run.
  double target = static_cast<double>(k * count + index) + 0.5;
  if (ex.kind == Executor::Kind::kConstantArrivalRate) {
    return start_ns + static_cast<int64_t>(target / ex.rate * 1e9);
  }
  double from = ex.start_rate;
  double done = 0;
  double offset_s = 0;
  for (const Stage& stage : ex.stages) {
    double t = static_cast<double>(stage.duration_us) / 1e6;
    double count = (from + stage.target) / 2 * t;
    if (done + count >= target) {
      double need = target - done;
      double a = (stage.target - from) / (2 * t);
      double s;
      if (std::abs(a) < 1e-12) {
        s = need / from;
      } else {
        s = (-from + std::sqrt(std::max(0.0, from * from + 4 * a * need))) / (2 * a);
      }
      return start_ns + static_cast<int64_t>((offset_s + s) * 1e9);
    }
    done += count;
    offset_s += t;
    from = stage.target;
  }
  return INT64_MAX;
}

void ScenarioWorkload::on_tick(RunState& run) {
  if (!running_ || run.done) return;
  const Executor& ex = run.run.executor;
  int64_t now = net::now_ns();
  if (!run.started) {
    run.started = true;
    run.accepting = true;
    run.end_ns = run.start_ns + (run.run.end_us() - run.run.start_us) * net::kNsPerUs -
                 ex.graceful_stop_us * net::kNsPerUs;
    run.end.arm_at(run.end_ns);
    run.hard_end.arm_at(run.end_ns + ex.graceful_stop_us * net::kNsPerUs);
    switch (ex.kind) {
      case Executor::Kind::kConstantVus:
      case Executor::Kind::kIterations: {
        uint64_t vus = share_of(ex.vus, share_.index, share_.count);
        run.iterations_left = iterations_share(ex.iterations, ex.vus, share_.index, share_.count);
        for (uint64_t i = 0; i < vus; ++i) {
          if (ex.kind == Executor::Kind::kIterations) {
            if (run.iterations_left == 0) break;
            --run.iterations_left;
          }
          start_iteration(*new_vu(run), now);
        }
        if (vus == 0 || (ex.kind == Executor::Kind::kIterations && run.alive == 0)) {
          run.done = true;
          check_finished();
        }
        return;
      }
      case Executor::Kind::kRampingVus:
        break;  // the adjustment below starts them
      case Executor::Kind::kConstantArrivalRate:
      case Executor::Kind::kRampingArrivalRate: {
        run.vu_limit = std::max<uint64_t>(
            1, share_of(std::max(ex.max_vus, ex.pre_allocated_vus), share_.index, share_.count));
        uint64_t pre = share_of(ex.pre_allocated_vus, share_.index, share_.count);
        for (uint64_t i = 0; i < pre; ++i)
          run.idle.push_back(new_vu(run));
        break;
      }
    }
  }
  switch (ex.kind) {
    case Executor::Kind::kRampingVus: {
      int64_t t_us = (now - run.start_ns) / net::kNsPerUs;
      double total = stage_target(ex.vus, ex.stages, t_us);
      uint64_t target =
          share_of(static_cast<uint64_t>(std::llround(total)), share_.index, share_.count);
      uint64_t wanted = target;
      // VUs not already told to stop: kept as counts, since a scan of every
      // member 20 times a second is most of a worker's CPU at 100,000 VUs.
      // VUs that ran out of unique rows count as staying: they are not replaced.
      uint64_t staying = run.alive - run.stopping + run.out_of_data;
      if (run.accepting) {
        while (staying < wanted) {
          start_iteration(*new_vu(run), now);
          ++staying;
        }
      }
      for (auto it = run.members.rbegin(); it != run.members.rend() && staying > wanted; ++it) {
        VirtualUser* vu = *it;
        if (vu->retired || vu->stop_after_iteration) continue;
        --staying;
        if (vu->in_iteration) {
          vu->stop_after_iteration = true;  // ramp down gracefully
          ++run.stopping;
        } else {
          retire(*vu);
        }
      }
      if (run.accepting) run.tick.arm_at(now + kTickNs);
      return;
    }
    case Executor::Kind::kConstantArrivalRate:
    case Executor::Kind::kRampingArrivalRate: {
      int64_t due = arrival_due(run, run.next_arrival);
      if (due <= now) {
        current_.max_schedule_lag_us = std::max<uint64_t>(current_.max_schedule_lag_us,
                                                          static_cast<uint64_t>(now - due) / 1000);
      }
      while (due <= now && due < run.end_ns) {
        VirtualUser* vu = nullptr;
        if (!run.idle.empty()) {
          vu = run.idle.back();
          run.idle.pop_back();
        } else if (run.alive < run.vu_limit) {
          vu = new_vu(run);
        }
        if (vu) {
          start_iteration(*vu, due);
        } else {
          ++current_.dropped_iterations;  // every VU busy: the iteration cannot start
        }
        ++run.next_arrival;
        due = arrival_due(run, run.next_arrival);
      }
      if (due < run.end_ns) run.tick.arm_at(due);
      return;
    }
    default:
      return;
  }
}

void ScenarioWorkload::on_run_end(RunState& run) {
  run.accepting = false;
  run.tick.cancel();
  // Idle VUs retire now; busy ones when their iteration ends (or at the hard end).
  std::vector<VirtualUser*> members = run.members;
  for (VirtualUser* vu : members) {
    if (!vu->in_iteration) retire(*vu);
  }
  check_finished();
}

void ScenarioWorkload::on_run_hard_end(RunState& run) {
  // The last scenario's hard end is the run's: stop() counts what is cut off
  // and sends the final snapshot; the connections close after (release()).
  if (std::all_of(runs_.begin(), runs_.end(),
                  [&](const auto& other) { return other.get() == &run || other->done; })) {
    run.accepting = false;
    stop();
    return;
  }
  on_run_end(run);
  std::vector<VirtualUser*> members = run.members;
  for (VirtualUser* vu : members) {
    // Iterations still running after the graceful stop are cut off; their
    // in-flight requests are neither results nor errors.
    amqp_abandon(*vu);
    vu->in_iteration = false;
    retire(*vu);
  }
  run.done = true;
  check_finished();
}

void ScenarioWorkload::check_finished() {
  if (!running_) return;
  for (const auto& run : runs_) {
    if (run->done) continue;
    bool exhausted =
        run->run.executor.kind == Executor::Kind::kIterations && run->iterations_left == 0;
    if (!run->started || (run->accepting && !exhausted) || run->alive > 0) return;
    run->done = true;
  }
  stop();
}

void ScenarioWorkload::on_second() {
  current_.interval_index = interval_index_++;
  current_.vus = alive_vus();
  if (current_.sockets) current_.sockets->open = open_sockets_;
  sink_(current_, false);
  current_.clear();
  current_.peak_vus = alive_vus();  // those alive now count in the next interval too
  second_timer_.arm_at(start_ns_ + static_cast<int64_t>(interval_index_ + 1) * net::kNsPerSec);
}

void ScenarioWorkload::on_sweep() {
  int64_t now = net::now_ns();
  int64_t connect_timeout = share_.connect_timeout_us * net::kNsPerUs;
  for (auto& vu : vus_) {
    ClientConnection& c = vu->connection;
    if (c.busy() && now - c.sent_ns() >= vu->request_timeout_ns) {
      c.fail(ErrorCause::kTimeout);
    } else if (c.state() == ClientConnection::State::kConnecting &&
               now - c.connect_started_ns() >= connect_timeout && !c.connect_completed_unseen()) {
      c.fail(ErrorCause::kConnectTimeout);
    }
    if (http::SessionConnection* h2 = vu->h2.get()) {
      if (h2->opening() && now - h2->connect_started_ns() >= connect_timeout) {
        h2->fail(ErrorCause::kConnectTimeout);
      } else {
        h2->expire(now, vu->request_timeout_ns);
      }
    }
  }
  amqp_sweep(now);
  sweep_timer_.arm_at(now + kSweepNs);
}

void ScenarioWorkload::stop() {
  if (finished_) return;
  running_ = false;
  finished_ = true;
  // Counted now, closed in release(): what is cut off by the end is in the
  // final snapshot, and the closing is not part of the run.
  for (auto& vu : vus_) {
    if (vu->connection.busy()) ++current_.in_flight;
    vu->timer.cancel();
    if (vu->h2) {
      if (vu->h2->in_flight() > 0) ++current_.in_flight;
      vu->h2->close();
    }
    if (vu->socket) {
      SocketSession& s = *vu->socket;
      if (s.open) current_.sockets->add_disconnect(metrics::DisconnectCause::kLocalClose);
    }
    amqp_abandon(*vu);
  }
  if (amqp_) amqp_->stop();
  // Messages still held for nobody at the end were never claimed.
  for (CorrelationTable& table : correlations_) {
    current_.add_error(ErrorCause::kUnmatchedMessage, table.clear_held());
  }
  for (auto& run : runs_) {
    run->tick.cancel();
    run->end.cancel();
    run->hard_end.cancel();
  }
  second_timer_.cancel();
  sweep_timer_.cancel();
  end_timer_.cancel();
  current_.interval_index = interval_index_;
  current_.vus = 0;
  if (current_.sockets) current_.sockets->open = 0;
  sink_(current_, true);
  current_.clear();
}

void ScenarioWorkload::release() {
  for (auto& vu : vus_) {
    vu->connection.close();
    // Counted in stop(); this sends the WebSocket close frame and closes.
    if (vu->socket) end_socket(*vu, metrics::DisconnectCause::kLocalClose);
  }
  current_.clear();
}

}  // namespace millstone::scenario
