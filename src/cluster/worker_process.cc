#include "cluster/worker_process.h"

#include <string>

#include "cluster/channel.h"
#include "engine/load_generator.h"
#include "net/event_loop.h"

namespace millstone::cluster {

namespace {

// Watches the control channel: Stop (or the coordinator vanishing) ends the run.
class ControlHandler final : public net::IoHandler {
 public:
  ControlHandler(Channel& channel, engine::LoadGenerator& generator)
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
  engine::LoadGenerator& generator_;
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
  engine::LoadGenerator generator(loop, plan, [&](const metrics::Snapshot& snapshot, bool final) {
    channel_ok = channel_ok && channel.send(MessageType::kSnapshot, encode_snapshot(snapshot));
    if (final) {
      channel_ok = channel_ok && channel.send(MessageType::kDone, {});
      loop.stop();
    }
  });
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
