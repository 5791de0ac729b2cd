#include "cluster/worker_process.h"

#include <sys/resource.h>

#include <memory>
#include <string>

#include <fmt/format.h>

#include "engine/load_generator.h"
#include "http/url.h"
#include "net/event_loop.h"
#include "scenario/loader.h"
#include "scenario/workload.h"

namespace millstone::cluster {

namespace {

// Watches the link inside the event loop: Stop (or the coordinator vanishing)
// ends the run; EPOLLOUT moves waiting snapshots out. Nothing here blocks.
class LinkHandler final : public net::IoHandler {
 public:
  LinkHandler(WorkerLink& link, SnapshotOutbox& outbox, std::function<void()> stop)
      : link_(link), outbox_(outbox), stop_(std::move(stop)) {}
  void on_io(uint32_t) override {
    if (!outbox_.pump()) {
      stop_();
      return;
    }
    MessageType type;
    std::string payload;
    for (;;) {
      const WorkerLink::Receive r = link_.receive(&type, &payload);
      if (r == WorkerLink::Receive::kNothing) return;
      // Stop, an Error (the coordinator gave up on us), EOF or garbage all end the run.
      if (r != WorkerLink::Receive::kMessage || type == MessageType::kStop ||
          type == MessageType::kError) {
        stop_();
        if (r != WorkerLink::Receive::kMessage) return;
      }
    }
  }

 private:
  WorkerLink& link_;
  SnapshotOutbox& outbox_;
  std::function<void()> stop_;
};

// The worker watching itself (docs/monitoring.md#the-generator): per
// snapshot, the CPU time the process used, how much of the time its loop
// was not waiting for events, and the most a timer fired late. A tick every
// 50 ms makes sure there is a timer whose lateness shows a loop that is
// stuck in long batches even when the workload arms none.
class SelfWatch {
 public:
  explicit SelfWatch(net::EventLoop& loop)
      : loop_(loop), tick_(loop, [this] { tick_.arm_after(kTickNs); }) {}

  void start() {
    last_wall_ns_ = net::now_ns();
    last_cpu_us_ = cpu_us();
    last_waited_ns_ = loop_.waited_ns();
    loop_.take_max_timer_lag_ns();
    tick_.arm_after(kTickNs);
  }

  // The load since the last call (or start()).
  void fill(metrics::GeneratorLoad* load) {
    const int64_t wall_ns = net::now_ns();
    const uint64_t cpu = cpu_us();
    const int64_t waited = loop_.waited_ns();
    const uint64_t wall_us =
        static_cast<uint64_t>(std::max<int64_t>(1, (wall_ns - last_wall_ns_) / 1000));
    const uint64_t used_us = cpu - std::min(cpu, last_cpu_us_);
    const uint64_t waited_us =
        static_cast<uint64_t>(std::max<int64_t>(0, (waited - last_waited_ns_) / 1000));
    const uint64_t busy_us = wall_us - std::min(wall_us, waited_us);
    last_wall_ns_ = wall_ns;
    last_cpu_us_ = cpu;
    last_waited_ns_ = waited;
    load->cpu_us = used_us;
    load->wall_us = wall_us;
    load->busy_us = busy_us;
    load->max_cpu_permille = std::min<uint64_t>(1000, used_us * 1000 / wall_us);
    load->max_busy_permille = busy_us * 1000 / wall_us;
    load->max_loop_lag_us =
        static_cast<uint64_t>(std::max<int64_t>(0, loop_.take_max_timer_lag_ns() / 1000));
    load->saturated =
        metrics::saturated(load->max_cpu_permille, load->max_busy_permille, load->max_loop_lag_us)
            ? 1
            : 0;
  }

 private:
  static constexpr int64_t kTickNs = 50 * net::kNsPerMs;
  static uint64_t cpu_us() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto us = [](const timeval& t) {
      return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_usec);
    };
    return us(usage.ru_utime) + us(usage.ru_stime);
  }

  net::EventLoop& loop_;
  net::Timer tick_;
  int64_t last_wall_ns_ = 0;
  uint64_t last_cpu_us_ = 0;
  int64_t last_waited_ns_ = 0;
};

// Says why, then gives up.
int refuse(WorkerLink& link, const std::string& why) {
  link.send(MessageType::kError, encode_error(why));
  flush_until(link, net::now_ns() + net::kNsPerSec);
  return 1;
}

std::unique_ptr<engine::Workload> build_workload(net::EventLoop& loop, Start& start,
                                                 const engine::Workload::SnapshotSink& sink,
                                                 std::unique_ptr<scenario::Plan>* scenario_plan,
                                                 std::string* error) {
  const engine::RunPlan& plan = start.plan;
  // The bytes move into the tables: one copy per worker, however large.
  scenario::DataFileSet data_files;
  for (DataFile& file : start.data_files)
    data_files[file.path] = scenario::DataBytes::own(std::move(file.bytes));
  start.data_files.clear();
  if (plan.scenario_source.empty())
    return std::make_unique<engine::LoadGenerator>(loop, plan, sink);
  // A scenario compiles here, once, from the text the coordinator sent, with
  // the data files it sent: a remote agent has no access to its files.
  try {
    scenario::Overrides overrides;
    if (plan.scenario_vus > 0) overrides.vus = plan.scenario_vus;
    if (plan.scenario_duration_us > 0) {
      overrides.duration_us = static_cast<int64_t>(plan.scenario_duration_us);
    }
    if (plan.scenario_rate > 0) overrides.rate = plan.scenario_rate;
    *scenario_plan = scenario::parse_scenario(
        plan.scenario_source, plan.scenario_path, plan.scenario_base_dir,
        scenario::Parameters(plan.scenario_parameters.begin(), plan.scenario_parameters.end()),
        overrides, &data_files);
  } catch (const scenario::ScenarioError& e) {
    *error = e.what();
    return nullptr;
  }
  scenario::WorkerShare share;
  share.index = plan.worker_index;
  share.count = plan.worker_count;
  share.address = plan.address;
  share.port = plan.port;
  share.connect_timeout_us = static_cast<int64_t>(plan.connect_timeout_ms) * 1000;
  share.source_addresses = plan.source_addresses;
  if (!plan.target_override.empty()) {
    if (auto url = http::parse_url(plan.target_override, nullptr)) (*scenario_plan)->target = *url;
  }
  return std::make_unique<scenario::ScenarioWorkload>(loop, **scenario_plan, share, sink);
}

}  // namespace

int serve_worker(WorkerLink& link, const Hello& hello, const WorkerOptions& options) {
  // The handshake runs before the event loop exists: blocking, but bounded.
  link.send(MessageType::kHello, encode_hello(hello));
  MessageType type;
  std::string payload;
  switch (receive_until(link, net::now_ns() + options.start_timeout_ns, &type, &payload)) {
    case WaitResult::kOk:
      break;
    case WaitResult::kTimedOut:
      return refuse(link, fmt::format("the coordinator did not answer Hello within {} s",
                                      options.start_timeout_ns / net::kNsPerSec));
    case WaitResult::kClosed:
    case WaitResult::kBroken:
      return 1;
  }
  if (type == MessageType::kStop || type == MessageType::kError) return 0;
  Start start;
  if (type != MessageType::kStart || !decode_start(payload, &start)) {
    return refuse(link, fmt::format("the worker expected a valid Start from the {}, got a {} "
                                    "message of {} bytes",
                                    link.name(), message_type_name(type), payload.size()));
  }
  payload = std::string();  // the data files' bytes live on in `start` alone
  const int64_t start_ns = start.start_ns + options.clock_offset_ns;

  net::EventLoop loop(start.plan.io_backend);
  if (!loop.ok()) {
    return refuse(link, fmt::format("--io {}: {}", net::io_backend_name(start.plan.io_backend),
                                    loop.error()));
  }
  SnapshotOutbox outbox(link, options.max_pending_snapshots, options.outbox_high_water);
  bool link_ok = true;
  bool finished = false;
  SelfWatch watch(loop);
  engine::Workload::SnapshotSink sink = [&](const metrics::Snapshot& snapshot, bool final) {
    metrics::Snapshot with_load = snapshot;
    watch.fill(&with_load.generator);
    link_ok = outbox.push(with_load) && link_ok;
    if (final) {
      finished = true;
      loop.stop();
    }
  };
  std::unique_ptr<scenario::Plan> scenario_plan;
  std::string error;
  std::unique_ptr<engine::Workload> workload =
      build_workload(loop, start, sink, &scenario_plan, &error);
  if (!workload) return refuse(link, error);
  link.send(MessageType::kAck, encode_ack(Ack{net::now_ns() - options.clock_offset_ns}));

  bool started = false;
  auto stop = [&] {
    if (started) {
      workload->stop();
    } else {
      // Stopped before the start instant: nothing ran, nothing to report.
      finished = true;
      loop.stop();
    }
  };
  LinkHandler handler(link, outbox, stop);
  const uint64_t registration = loop.add(link.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, &handler);
  if (registration == 0) return refuse(link, "worker cannot watch its link");
  bool start_failed = false;
  net::Timer start_timer(loop, [&] {
    started = true;
    watch.start();
    if (!workload->start(start_ns, &error)) {
      start_failed = true;
      loop.stop();
    }
  });
  start_timer.arm_at(start_ns);
  const bool loop_ok = loop.run();
  loop.remove(registration, link.fd());
  if (start_failed) return refuse(link, error);
  if (!loop_ok) return refuse(link, "worker event loop failed");
  if (!finished) return 1;

  // The run is over: what waits in the outbox leaves now, then Done.
  const int64_t deadline = net::now_ns() + options.drain_timeout_ns;
  while (link_ok && outbox.pending() > 0) {
    link_ok = outbox.pump() && flush_until(link, deadline) == WaitResult::kOk;
  }
  if (!link_ok) return 1;
  Done done;
  done.snapshots_coalesced = outbox.coalesced();
  done.outbox_peak_bytes = link.peak_queued_bytes();
  link.send(MessageType::kDone, encode_done(done));
  const bool sent = flush_until(link, deadline) == WaitResult::kOk;
  // The coordinator has this worker's whole run: the connections close now.
  workload->release();
  return sent ? 0 : 1;
}

int run_worker(int control_fd, unsigned worker_index) {
  std::unique_ptr<StreamLink> link = StreamLink::over_socket(control_fd, "coordinator");
  return serve_worker(*link, local_hello(worker_index), WorkerOptions{});
}

}  // namespace millstone::cluster
