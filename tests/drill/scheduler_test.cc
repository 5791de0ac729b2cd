// The drill scheduler on short real times with recorded actions: faults
// start and end on the run's clock, a hanging action delays no other
// drill, finish() undoes what is on and never starts what is not due.
#include "drill/scheduler.h"

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "net/clock.h"

namespace millstone::drill {
namespace scheduler_test {

using scenario::Drill;

constexpr int64_t kMs = 1000;  // microseconds

Drill make_drill(std::string name, int64_t start_ms, int64_t duration_ms,
                 Drill::Kind kind = Drill::Kind::kProxy) {
  Drill d;
  d.name = std::move(name);
  d.kind = kind;
  d.start_us = start_ms * kMs;
  d.duration_us = duration_ms < 0 ? -1 : duration_ms * kMs;
  d.timeout_us = 2'000 * kMs;
  return d;
}

// Records when each action ran; "hang" blocks until its deadline, "fail" fails.
class RecordedActions final : public Actions {
 public:
  struct Call {
    std::string what;  // "start NAME", "end NAME"
    int64_t at_ns;
  };
  ActionResult start(const Drill& d, int64_t deadline_ns) override {
    return act("start " + d.name, d.name, deadline_ns);
  }
  ActionResult end(const Drill& d, int64_t deadline_ns) override {
    return act("end " + d.name, d.name, deadline_ns);
  }
  bool has_end(const Drill& d) const override { return d.kind != Drill::Kind::kExec; }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int64_t at(const std::string& what) {
    for (const Call& c : calls()) {
      if (c.what == what) return c.at_ns;
    }
    return -1;
  }

 private:
  ActionResult act(const std::string& what, const std::string& name, int64_t deadline_ns) {
    {
      std::lock_guard lock(mu_);
      calls_.push_back({what, net::now_ns()});
    }
    if (name.starts_with("hang")) {
      while (net::now_ns() < deadline_ns)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::lock_guard lock(mu_);
      calls_.push_back({"returned " + name, net::now_ns()});
      return {false, "timed out", "", -1};
    }
    if (name.starts_with("fail") || what == "end badundo") return {false, "HTTP 500", "boom", -1};
    return {true, "ok", "", -1};
  }
  std::mutex mu_;
  std::vector<Call> calls_;
};

class EventLog final : public DrillObserver {
 public:
  void on_drill_event(const DrillEvent& e) override {
    std::lock_guard lock(mu_);
    events.push_back(e);
  }
  std::mutex mu_;
  std::vector<DrillEvent> events;
};

double ms_between(int64_t from_ns, int64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

TEST(DrillScheduler, StartsAndEndsOnTheRunsClock) {
  RecordedActions actions;
  EventLog log;
  DrillScheduler scheduler({make_drill("a", 50, 100), make_drill("b", 20, -1, Drill::Kind::kExec)},
                           actions, &log);
  const int64_t start = net::now_ns() + 10 * net::kNsPerMs;
  scheduler.start(start);
  while (actions.at("end a") < 0 && net::now_ns() < start + 2 * net::kNsPerSec) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  scheduler.finish();
  // Never early (how late is a matter of thread scheduling, not asserted).
  EXPECT_GE(ms_between(start, actions.at("start a")), 50);
  EXPECT_GE(ms_between(start, actions.at("end a")), 150);
  EXPECT_GE(ms_between(start, actions.at("start b")), 20);
  EXPECT_EQ(actions.at("end b"), -1);  // a one-off exec has nothing to undo

  const std::vector<DrillRecord> records = scheduler.records();
  EXPECT_EQ(records[0].status, DrillRecord::Status::kDone);
  EXPECT_FALSE(records[0].ended_by_run);
  EXPECT_EQ(records[1].status, DrillRecord::Status::kDone);
  const scenario::FaultWindows windows = scheduler.windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[0].name, "a");
  EXPECT_GE(windows[0].start_s, 0.05);
  // The end is due at 50 + 100 ms on the run's clock whenever the start
  // action returned, so a late start shortens the window, never moves its end.
  EXPECT_GE(windows[0].end_s, 0.15 - 0.001);
  EXPECT_TRUE(windows[1].ended());  // a one-off action is over when it returns
  ASSERT_EQ(log.events.size(), 3u);
}

TEST(DrillScheduler, FinishUndoesWhatIsOnAndSkipsWhatIsNotDue) {
  RecordedActions actions;
  EventLog log;
  DrillScheduler scheduler({make_drill("on", 0, 60'000), make_drill("later", 60'000, 1000),
                            make_drill("forever", 0, -1)},
                           actions, &log);
  scheduler.start(net::now_ns());
  while ((actions.at("start on") < 0 || actions.at("start forever") < 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  scheduler.finish();
  EXPECT_GE(actions.at("end on"), 0);
  EXPECT_GE(actions.at("end forever"), 0);  // no duration: on until the run ends
  EXPECT_EQ(actions.at("start later"), -1);
  const std::vector<DrillRecord> r = scheduler.records();
  EXPECT_EQ(r[0].status, DrillRecord::Status::kDone);
  EXPECT_TRUE(r[0].ended_by_run);
  EXPECT_EQ(r[1].status, DrillRecord::Status::kNotStarted);
  EXPECT_TRUE(r[2].ended_by_run);
  const scenario::FaultWindows w = scheduler.windows();
  ASSERT_EQ(w.size(), 2u);  // the one not started has no window
  EXPECT_FALSE(w[0].ended());
  EXPECT_FALSE(w[1].ended());
  int undone_at_end = 0;
  for (const DrillEvent& e : log.events) {
    if (e.kind == DrillEvent::Kind::kEnded && e.at_run_end) ++undone_at_end;
  }
  EXPECT_EQ(undone_at_end, 2);
}

TEST(DrillScheduler, AHangingActionDelaysNoOtherDrill) {
  RecordedActions actions;
  Drill hang = make_drill("hang", 0, -1);
  hang.timeout_us = 1000 * kMs;
  DrillScheduler scheduler({hang, make_drill("quick", 30, 30)}, actions, nullptr);
  const int64_t start = net::now_ns();
  scheduler.start(start);
  while (actions.at("end quick") < 0 && net::now_ns() < start + 2 * net::kNsPerSec) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  scheduler.finish();
  // The quick drill ran its whole course while the hanging action waited.
  EXPECT_GE(actions.at("end quick"), 0);
  EXPECT_LT(actions.at("end quick"), actions.at("returned hang"));
  const std::vector<DrillRecord> r = scheduler.records();
  EXPECT_EQ(r[0].status, DrillRecord::Status::kFailed);
  EXPECT_EQ(actions.at("end hang"), -1);  // a fault that did not start is not undone
  EXPECT_EQ(scheduler.windows().size(), 1u);
}

TEST(DrillScheduler, FailedActionsKeepTheirCause) {
  RecordedActions actions;
  EventLog log;
  DrillScheduler scheduler({make_drill("fail", 0, 10), make_drill("badundo", 0, 10)}, actions,
                           &log);
  scheduler.start(net::now_ns());
  while (actions.at("end badundo") < 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  scheduler.finish();
  const std::vector<DrillRecord> r = scheduler.records();
  EXPECT_EQ(r[0].status, DrillRecord::Status::kFailed);
  EXPECT_EQ(r[0].start_result.detail, "HTTP 500");
  EXPECT_EQ(r[0].start_result.output, "boom");
  EXPECT_EQ(actions.at("end fail"), -1);  // a fault that did not start is not undone
  EXPECT_EQ(r[1].status, DrillRecord::Status::kUndoFailed);
  ASSERT_TRUE(r[1].end_result.has_value());
  EXPECT_EQ(r[1].end_result->detail, "HTTP 500");
}

TEST(DrillScheduler, ARunThatNeverStartedStartsNothing) {
  RecordedActions actions;
  EventLog log;
  DrillScheduler scheduler({make_drill("a", 0, 10)}, actions, &log);
  scheduler.finish();
  EXPECT_TRUE(actions.calls().empty());
  EXPECT_EQ(scheduler.records()[0].status, DrillRecord::Status::kNotStarted);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].kind, DrillEvent::Kind::kNotStarted);
}

}  // namespace scheduler_test
}  // namespace millstone::drill
