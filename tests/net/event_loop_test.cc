#include "net/event_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "net/clock.h"

namespace millstone::net {
namespace event_loop_test {

// Every test runs on both backends: epoll, and io_uring (whose readiness
// registrations sit on an epoll descriptor the ring watches).
class TimerOn : public ::testing::TestWithParam<IoBackend> {};
class EventLoopOn : public ::testing::TestWithParam<IoBackend> {};

std::string backend_name(const ::testing::TestParamInfo<IoBackend>& info) {
  return std::string(io_backend_name(info.param));
}

TEST_P(TimerOn, FiresInDeadlineOrderAndFifoForEqualDeadlines) {
  EventLoop loop(GetParam());
  ASSERT_TRUE(loop.ok()) << loop.error();
  std::vector<int> order;
  int64_t now = now_ns();
  Timer a(loop, [&] { order.push_back(1); });
  Timer b(loop, [&] { order.push_back(2); });
  Timer c(loop, [&] { order.push_back(3); });
  Timer d(loop, [&] { order.push_back(4); });
  c.arm_at(now + 3 * kNsPerMs);
  a.arm_at(now + 1 * kNsPerMs);
  b.arm_at(now + 2 * kNsPerMs);
  d.arm_at(now + 2 * kNsPerMs);  // same deadline as b, armed later
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_at(now + 10 * kNsPerMs);
  ASSERT_TRUE(loop.run());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 4, 3}));
}

TEST_P(TimerOn, CancelAndDestroyPreventFiring) {
  EventLoop loop(GetParam());
  ASSERT_TRUE(loop.ok()) << loop.error();
  int fired = 0;
  Timer kept(loop, [&] { ++fired; });
  kept.arm_after(kNsPerMs);
  {
    Timer destroyed(loop, [&] { fired += 100; });
    destroyed.arm_after(kNsPerMs);
  }
  Timer cancelled(loop, [&] { fired += 10; });
  cancelled.arm_after(kNsPerMs);
  cancelled.cancel();
  EXPECT_FALSE(cancelled.armed());
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_after(5 * kNsPerMs);
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(loop.armed_timers(), 0u);
}

TEST_P(TimerOn, RearmMovesTheDeadlineAndManyTimersKeepHeapOrder) {
  EventLoop loop(GetParam());
  ASSERT_TRUE(loop.ok()) << loop.error();
  std::vector<int64_t> fired_at;
  std::vector<std::unique_ptr<Timer>> timers;
  int64_t base = now_ns() + kNsPerMs;
  for (int i = 0; i < 200; ++i) {
    timers.push_back(std::make_unique<Timer>(loop, [&, i] { fired_at.push_back(i); }));
    // A scrambled order of deadlines, then every third one re-armed later.
    timers.back()->arm_at(base + ((i * 37) % 200) * 10'000);
  }
  for (int i = 0; i < 200; i += 3)
    timers[i]->arm_at(base + 3 * kNsPerMs + i);
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_at(base + 10 * kNsPerMs);
  loop.run();
  ASSERT_EQ(fired_at.size(), 200u);
  auto deadline = [&](int i) {
    return i % 3 == 0 ? base + 3 * kNsPerMs + i : base + ((i * 37) % 200) * 10'000;
  };
  for (size_t k = 1; k < fired_at.size(); ++k) {
    EXPECT_LE(deadline(static_cast<int>(fired_at[k - 1])), deadline(static_cast<int>(fired_at[k])));
  }
}

class Recorder : public IoHandler {
 public:
  void on_io(uint32_t events) override { seen.push_back(events); }
  std::vector<uint32_t> seen;
};

TEST_P(EventLoopOn, DeliversReadinessAndDropsEventsAfterRemove) {
  EventLoop loop(GetParam());
  ASSERT_TRUE(loop.ok()) << loop.error();
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
  Recorder recorder;
  uint64_t registration = loop.add(pair[0], EPOLLIN, &recorder);
  ASSERT_NE(registration, 0u);
  ASSERT_EQ(write(pair[1], "x", 1), 1);
  loop.run_once(10 * kNsPerMs);
  ASSERT_EQ(recorder.seen.size(), 1u);
  EXPECT_TRUE(recorder.seen[0] & EPOLLIN);
  loop.remove(registration, pair[0]);
  ASSERT_EQ(write(pair[1], "y", 1), 1);
  loop.run_once(10 * kNsPerMs);
  EXPECT_EQ(recorder.seen.size(), 1u);
  // A removed registration id stays dead even when its slot is reused.
  Recorder other;
  uint64_t again = loop.add(pair[0], EPOLLIN, &other);
  EXPECT_NE(again, registration);
  loop.remove(registration, pair[0]);  // stale id: no effect
  ASSERT_EQ(write(pair[1], "z", 1), 1);
  loop.run_once(10 * kNsPerMs);
  EXPECT_EQ(other.seen.size(), 1u);
  close(pair[0]);
  close(pair[1]);
}

TEST_P(EventLoopOn, AddFailsCleanlyOnABadDescriptor) {
  EventLoop loop(GetParam());
  ASSERT_TRUE(loop.ok()) << loop.error();
  Recorder recorder;
  EXPECT_EQ(loop.add(-1, EPOLLIN, &recorder), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, TimerOn, ::testing::Values(IoBackend::kEpoll, IoBackend::kUring),
                         backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, EventLoopOn,
                         ::testing::Values(IoBackend::kEpoll, IoBackend::kUring), backend_name);

TEST(EventLoop, AnUnavailableUringIsAnErrorNotACrash) {
  // Where io_uring works the loop is ok; where it does not, error() says why.
  EventLoop loop(IoBackend::kUring);
  EXPECT_EQ(loop.ok(), uring_unavailable_reason().empty()) << loop.error();
  EXPECT_EQ(parse_io_backend("uring"), IoBackend::kUring);
  EXPECT_EQ(parse_io_backend("epoll"), IoBackend::kEpoll);
  EXPECT_FALSE(parse_io_backend("poll"));
}

}  // namespace event_loop_test
}  // namespace millstone::net
