#include "cluster/worker_process.h"

#include <memory>
#include <string>

#include "cluster/channel.h"
#include "engine/load_generator.h"
#include "http/url.h"
#include "net/event_loop.h"
#include "scenario/loader.h"
#include "scenario/workload.h"

namespace millstone::cluster {

namespace {

// Watches the control channel: Stop (or the coordinator vanishing) ends the run.
class ControlHandler final : public net::IoHandler {
 public:
  ControlHandler(Channel& channel, engine::Workload& generator)
      : channel_(channel), generator_(generator) {}
  void on_io(uint32_t) override {
    bool open = channel_.receive_available();
    MessageType type;
    std::string payload;
    while (channel_.reader().next(&type, &payload) == FrameReader::Next::kFrame) {
      if (type == MessageType::kStop) generator_.stop();
    }
    if (!open) generator_.stop();
  }

 private:
  Channel& channel_;
  engine::Workload& generator_;
};

}  // namespace

int run_worker(int control_fd, unsigned worker_index) {
  Channel channel(control_fd);
  channel.send(MessageType::kHello, encode_hello(Hello{kProtocolVersion, worker_index}));
  MessageType type;
  std::string payload;
  if (!channel.receive_blocking(&type, &payload)) return 1;
  if (type == MessageType::kStop) return 0;
  engine::RunPlan plan;
  if (type != MessageType::kStart || !decode_run_plan(payload, &plan)) {
    channel.send(MessageType::kError, encode_error("worker expected a valid start message"));
    return 1;
  }

  net::EventLoop loop;
  bool channel_ok = true;
  engine::Workload::SnapshotSink sink = [&](const metrics::Snapshot& snapshot, bool final) {
    channel_ok = channel_ok && channel.send(MessageType::kSnapshot, encode_snapshot(snapshot));
    if (final) {
      channel_ok = channel_ok && channel.send(MessageType::kDone, {});
      loop.stop();
    }
  };
  // A scenario compiles here, once, from the text the coordinator sent: a
  // remote agent will do the same without access to the coordinator's files.
  std::unique_ptr<scenario::Plan> scenario_plan;
  std::unique_ptr<engine::Workload> workload;
  if (!plan.scenario_source.empty()) {
    try {
      scenario::Overrides overrides;
      if (plan.scenario_vus > 0) overrides.vus = plan.scenario_vus;
      if (plan.scenario_duration_us > 0) {
        overrides.duration_us = static_cast<int64_t>(plan.scenario_duration_us);
      }
      if (plan.scenario_rate > 0) overrides.rate = plan.scenario_rate;
      scenario_plan = scenario::parse_scenario(
          plan.scenario_source, plan.scenario_path, plan.scenario_base_dir,
          scenario::Parameters(plan.scenario_parameters.begin(), plan.scenario_parameters.end()),
          overrides);
    } catch (const scenario::ScenarioError& e) {
      channel.send(MessageType::kError, encode_error(e.what()));
      return 1;
    }
    scenario::WorkerShare share;
    share.index = plan.worker_index;
    share.count = plan.worker_count;
    share.address = plan.address;
    share.port = plan.port;
    share.connect_timeout_us = static_cast<int64_t>(plan.connect_timeout_ms) * 1000;
    share.source_addresses = plan.source_addresses;
    if (!plan.target_override.empty()) {
      if (auto url = http::parse_url(plan.target_override, nullptr)) scenario_plan->target = *url;
    }
    workload = std::make_unique<scenario::ScenarioWorkload>(loop, *scenario_plan, share, sink);
  } else {
    workload = std::make_unique<engine::LoadGenerator>(loop, plan, sink);
  }
  engine::Workload& generator = *workload;
  ControlHandler control(channel, generator);
  uint64_t registration = loop.add(control_fd, EPOLLIN | EPOLLRDHUP, &control);
  std::string error;
  if (registration == 0 || !generator.start(&error)) {
    channel.send(MessageType::kError,
                 encode_error(error.empty() ? "worker cannot watch its control channel" : error));
    return 1;
  }
  if (!loop.run()) {
    channel.send(MessageType::kError, encode_error("worker event loop failed"));
    return 1;
  }
  loop.remove(registration, control_fd);
  return channel_ok ? 0 : 1;
}

}  // namespace millstone::cluster
