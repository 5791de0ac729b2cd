// The coordinator <-> worker handshake over an in-process socketpair: a real
// Coordinator or a real worker body on one end, a scripted peer on the other.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "cluster/coordinator.h"
#include "cluster/link.h"
#include "cluster/wire.h"
#include "cluster/worker_process.h"
#include "link_pair.h"
#include "net/clock.h"

namespace millstone::cluster {
namespace handshake_test {

engine::RunPlan share(uint64_t duration_ms = 1000) {
  engine::RunPlan plan;
  plan.address = "127.0.0.1";
  plan.port = 9;
  plan.duration_ms = duration_ms;
  plan.timeout_ms = 100;
  plan.connect_timeout_ms = 100;
  return plan;
}

CoordinatorOptions quick_options() {
  CoordinatorOptions o;
  o.hello_timeout_ns = 200 * net::kNsPerMs;
  o.ack_timeout_ns = 200 * net::kNsPerMs;
  o.start_lead_ns = 10 * net::kNsPerMs;
  o.stop_after_end_ns = 50 * net::kNsPerMs;
  o.finish_grace_ns = 500 * net::kNsPerMs;
  return o;
}

metrics::Snapshot second(uint64_t index, uint64_t requests) {
  metrics::Snapshot s;
  s.interval_index = index;
  s.requests = requests;
  s.latency.record(500);
  return s;
}

class Collect final : public ProgressSink {
 public:
  void on_second(uint64_t index, const metrics::Snapshot&, const metrics::Snapshot&) override {
    seconds.push_back(index);
    last = static_cast<int64_t>(index);
  }
  std::vector<uint64_t> seconds;
  std::atomic<int64_t> last{-1};  // the last second shown, for the worker threads
};

// A scripted worker: Hello, then checks Start, Ack, the given seconds,
// `before_done`, Done. Without `before_done`, the last second and Done go in
// one write, as a real worker's last partial second comes with its Done:
// otherwise whether the coordinator reads that second before or with the Done
// is up to the scheduler.
void play_worker(StreamLink& link, std::vector<metrics::Snapshot> seconds, Start* got_start,
                 std::function<void()> before_done = {}) {
  link.send(MessageType::kHello, encode_hello(local_hello(0)));
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(link, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kStart);
  ASSERT_TRUE(decode_start(payload, got_start));
  link.send(MessageType::kAck, encode_ack(Ack{net::now_ns()}));
  std::string last_and_done;
  if (!before_done && !seconds.empty()) {
    last_and_done = encode_frame(MessageType::kSnapshot, encode_snapshot(seconds.back()));
    seconds.pop_back();
  }
  for (const metrics::Snapshot& s : seconds)
    link.send(MessageType::kSnapshot, encode_snapshot(s));
  ASSERT_EQ(flush_until(link, in_seconds(5)), WaitResult::kOk);
  if (before_done) {
    before_done();
    link.send(MessageType::kDone, encode_done(Done{}));
    ASSERT_EQ(flush_until(link, in_seconds(5)), WaitResult::kOk);
    return;
  }
  last_and_done += encode_frame(MessageType::kDone, encode_done(Done{}));
  ASSERT_EQ(write(link.fd(), last_and_done.data(), last_and_done.size()),
            static_cast<ssize_t>(last_and_done.size()));
}

TEST(CoordinatorHandshake, StartCarriesTheShareTheStartInstantAndTheData) {
  LinkPair a = make_pair("worker 0");
  LinkPair b = make_pair("worker 1");
  Start start_a;
  Start start_b;
  // Worker 1 joined a second late: its first report is second 1.
  std::thread worker_a(play_worker, std::ref(*a.peer_side),
                       std::vector{second(0, 10), second(1, 11), second(2, 3)}, &start_a, nullptr);
  std::thread worker_b(play_worker, std::ref(*b.peer_side),
                       std::vector{second(1, 20), second(2, 5)}, &start_b, nullptr);
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(a.coordinator_side));
  links.push_back(std::move(b.coordinator_side));
  engine::RunPlan one = share();
  engine::RunPlan two = share();
  one.connections = 3;
  two.connections = 4;
  Collect progress;
  const int64_t before = net::now_ns();
  Coordinator coordinator(std::move(links), {one, two}, {{"users.csv", "name\nann\n"}},
                          quick_options(), &progress);
  RunResult result = coordinator.run();
  worker_a.join();
  worker_b.join();

  ASSERT_EQ(result.outcomes.size(), 2u);
  for (const WorkerOutcome& o : result.outcomes) {
    EXPECT_EQ(o.state, WorkerOutcome::State::kFinished) << o.reason;
    EXPECT_EQ(o.hello.pid, static_cast<uint64_t>(getpid()));
  }
  EXPECT_EQ(start_a.start_ns, start_b.start_ns);  // one instant for all
  EXPECT_GT(start_a.start_ns, before);
  EXPECT_EQ(start_a.plan.connections, 3u);
  EXPECT_EQ(start_b.plan.connections, 4u);
  ASSERT_EQ(start_b.data_files.size(), 1u);
  EXPECT_EQ(start_b.data_files[0].bytes, "name\nann\n");
  EXPECT_EQ(result.total.requests, 49u);
  EXPECT_EQ(result.seconds.at(0).requests, 10u);
  EXPECT_EQ(result.seconds.at(1).requests, 31u);
  EXPECT_EQ(result.seconds.at(2).requests, 8u);
  // Whole seconds in order; the last (partial, with Done) is not a whole second.
  EXPECT_EQ(progress.seconds, (std::vector<uint64_t>{0, 1}));
}

// Both workers joined late (their first report is second 2): the progress
// line goes on from second 2 while they run, instead of waiting for seconds
// nobody has until the end. Each worker holds its Done until second 3 is
// shown: a Done read first would make second 3 the partial last one.
TEST(CoordinatorHandshake, ProgressSkipsSecondsNoWorkerWasUpFor) {
  LinkPair a = make_pair("worker 0");
  LinkPair b = make_pair("worker 1");
  Start start_a;
  Start start_b;
  Collect progress;
  std::atomic<bool> shown_while_running{false};
  auto wait_for_progress = [&] {
    const int64_t deadline = in_seconds(3);
    while (progress.last < 3 && net::now_ns() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    shown_while_running = progress.last >= 3;
  };
  std::thread worker_a(play_worker, std::ref(*a.peer_side), std::vector{second(2, 1), second(3, 1)},
                       &start_a, wait_for_progress);
  std::thread worker_b(play_worker, std::ref(*b.peer_side), std::vector{second(2, 1), second(3, 1)},
                       &start_b, wait_for_progress);
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(a.coordinator_side));
  links.push_back(std::move(b.coordinator_side));
  RunResult result =
      Coordinator(std::move(links), {share(), share()}, {}, quick_options(), &progress).run();
  worker_a.join();
  worker_b.join();
  EXPECT_TRUE(shown_while_running);
  EXPECT_EQ(result.total.requests, 4u);
  EXPECT_EQ(progress.seconds, (std::vector<uint64_t>{2, 3}));
}

// A worker ready after the start instant is not a failure, but the run says so.
TEST(CoordinatorHandshake, AWorkerReadyLateIsNoted) {
  LinkPair p = make_pair("worker 0");
  std::thread worker([&] {
    p.peer_side->send(MessageType::kHello, encode_hello(local_hello(0)));
    MessageType type;
    std::string payload;
    Start start;
    ASSERT_EQ(receive_until(*p.peer_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    ASSERT_TRUE(decode_start(payload, &start));
    p.peer_side->send(MessageType::kAck, encode_ack(Ack{start.start_ns + 1500 * net::kNsPerMs}));
    p.peer_side->send(MessageType::kSnapshot, encode_snapshot(second(1, 4)));
    p.peer_side->send(MessageType::kDone, encode_done(Done{2, 4096, {}}));
    ASSERT_EQ(flush_until(*p.peer_side, in_seconds(5)), WaitResult::kOk);
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result = Coordinator(std::move(links), {share()}, {}, quick_options(), nullptr).run();
  worker.join();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished);
  EXPECT_EQ(result.outcomes[0].late_ns, 1500 * net::kNsPerMs);
  EXPECT_EQ(result.outcomes[0].done, (Done{2, 4096, {}}));
  EXPECT_TRUE(result.worker_failures.empty());
  EXPECT_EQ(result.worker_notes,
            (std::vector<std::string>{
                "worker 0's link was backed up: 2 of its seconds were merged into later ones "
                "(totals are exact, the per-second series is not)",
                "worker 0 was ready 1.5 s after the start; its share of the load is missing from "
                "the seconds before"}));
}

TEST(CoordinatorHandshake, AVersionMismatchIsRefusedNamingBothVersions) {
  LinkPair p = make_pair("worker 3");
  std::thread worker([&] {
    // Version 3's Hello: u32 version, u32 worker index.
    p.peer_side->send(MessageType::kHello, std::string("\x03\0\0\0\x03\0\0\0", 8));
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*p.peer_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kError);  // told why, not just dropped
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result = Coordinator(std::move(links), {share()}, {}, quick_options(), nullptr).run();
  worker.join();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFailed);
  EXPECT_EQ(result.outcomes[0].reason,
            "worker 3 speaks protocol version 3 (an older millstone), this coordinator " +
                std::to_string(kProtocolVersion) +
                " (millstone " MILLSTONE_VERSION "); run the same millstone version everywhere");
}

TEST(CoordinatorHandshake, GarbageInsteadOfHelloIsRefused) {
  LinkPair p = make_pair("worker 0");
  ASSERT_EQ(write(p.peer_side->fd(), "GET / HTTP/1.1\r\n\r\n", 18), 18);
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result = Coordinator(std::move(links), {share()}, {}, quick_options(), nullptr).run();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFailed);
  EXPECT_NE(result.outcomes[0].reason.find("worker 0 broke the protocol"), std::string::npos)
      << result.outcomes[0].reason;
}

TEST(CoordinatorHandshake, APeerThatNeverSaysHelloIsGivenUpOnInTime) {
  LinkPair p = make_pair("worker 3");
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result = Coordinator(std::move(links), {share()}, {}, quick_options(), nullptr).run();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFailed);
  EXPECT_EQ(result.outcomes[0].reason, "worker 3 did not answer Hello within 0.2 s");
}

TEST(CoordinatorHandshake, APeerThatNeverAcknowledgesStartIsGivenUpOn) {
  LinkPair p = make_pair("worker 1");
  p.peer_side->send(MessageType::kHello, encode_hello(local_hello(1)));
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result = Coordinator(std::move(links), {share()}, {}, quick_options(), nullptr).run();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].reason, "worker 1 did not acknowledge Start within 0.2 s");
}

TEST(CoordinatorHandshake, ALinkLostMidRunIsReportedAndTheOthersFinish) {
  LinkPair a = make_pair("worker 0");
  LinkPair b = make_pair("worker 1");
  Start start;
  std::thread finishing(play_worker, std::ref(*a.peer_side), std::vector{second(0, 7)}, &start,
                        nullptr);
  std::thread dying([&] {
    b.peer_side->send(MessageType::kHello, encode_hello(local_hello(1)));
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*b.peer_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    b.peer_side->send(MessageType::kAck, encode_ack(Ack{net::now_ns()}));
    b.peer_side->send(MessageType::kSnapshot, encode_snapshot(second(0, 5)));
    // Half a frame, then gone: a process killed mid-write.
    const std::string frame = encode_frame(MessageType::kSnapshot, encode_snapshot(second(1, 9)));
    ASSERT_EQ(flush_until(*b.peer_side, in_seconds(5)), WaitResult::kOk);
    ASSERT_GT(write(b.peer_side->fd(), frame.data(), frame.size() / 2), 0);
    b.peer_side->close();
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(a.coordinator_side));
  links.push_back(std::move(b.coordinator_side));
  RunResult result =
      Coordinator(std::move(links), {share(), share()}, {}, quick_options(), nullptr).run();
  finishing.join();
  dying.join();
  ASSERT_EQ(result.outcomes.size(), 2u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished);
  EXPECT_EQ(result.outcomes[1].state, WorkerOutcome::State::kFailed);
  EXPECT_NE(result.outcomes[1].reason.find("in the middle of a message"), std::string::npos)
      << result.outcomes[1].reason;
  EXPECT_EQ(result.total.requests, 12u);  // what it sent before dying is kept
}

// The worker's side of the handshake.
TEST(WorkerHandshake, SaysHelloAndRefusesAnythingButStart) {
  LinkPair p = make_pair("worker 0");
  int code = -1;
  std::thread worker([&] { code = serve_worker(*p.peer_side, local_hello(2), WorkerOptions{}); });
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kHello);
  Hello hello;
  ASSERT_TRUE(decode_hello(payload, &hello));
  EXPECT_EQ(hello.worker_index, 2u);
  EXPECT_EQ(hello.build_version, MILLSTONE_VERSION);
  p.coordinator_side->send(MessageType::kSnapshot, encode_snapshot(second(0, 1)));
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  worker.join();
  EXPECT_EQ(code, 1);
  ASSERT_EQ(type, MessageType::kError);
  std::string text;
  ASSERT_TRUE(decode_error(payload, &text));
  EXPECT_EQ(text,
            "the worker expected a valid Start from the coordinator, got a snapshot message of " +
                std::to_string(encode_snapshot(second(0, 1)).size()) + " bytes");
}

TEST(WorkerHandshake, ACoordinatorThatNeverAnswersIsGivenUpOn) {
  LinkPair p = make_pair("worker 0");
  WorkerOptions options;
  options.start_timeout_ns = 100 * net::kNsPerMs;
  EXPECT_EQ(serve_worker(*p.peer_side, local_hello(0), options), 1);
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kHello);
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kError);
}

}  // namespace handshake_test
}  // namespace millstone::cluster
