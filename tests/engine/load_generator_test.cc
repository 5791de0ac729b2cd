// The load models against the real mock server, in-process loop, loopback only.
#include "engine/load_generator.h"

#include <gtest/gtest.h>

#include "http/request_builder.h"
#include "http/url.h"
#include "mock/server.h"
#include "net/clock.h"

namespace millstone::engine {
namespace load_generator_test {

class LoadGeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mock::MockConfig config = mock::parse_mock_config(
        "routes:\n"
        "  - path: /fast\n    body: ok\n"
        "  - path: /slow\n    body: ok\n    latency: 300ms\n",
        "test");
    mock::ServerOptions options;
    options.listen = *net::make_endpoint("127.0.0.1", 0);
    options.print_stats_on_exit = false;
    std::string error;
    pid_ = mock::start_mock_server(config, options, &bound_, &error);
    ASSERT_GT(pid_, 0) << error;
  }
  void TearDown() override { mock::stop_mock_server(pid_); }

  RunPlan plan_for(const std::string& path) {
    RunPlan plan;
    plan.address = "127.0.0.1";
    plan.port = bound_.port();
    std::string error;
    auto url = http::parse_url("http://127.0.0.1:" + std::to_string(plan.port) + path, &error);
    plan.request_bytes = http::build_request("GET", *url, {}, "");
    return plan;
  }

  struct Outcome {
    metrics::Snapshot total;
    int snapshots = 0;
    int finals = 0;
  };
  Outcome run(const RunPlan& plan) {
    net::EventLoop loop;
    Outcome outcome;
    LoadGenerator generator(loop, plan, [&](const metrics::Snapshot& s, bool final) {
      outcome.total.merge(s);
      ++outcome.snapshots;
      if (final) {
        ++outcome.finals;
        loop.stop();
      }
    });
    std::string error;
    EXPECT_TRUE(generator.start(millstone::net::now_ns(), &error)) << error;
    loop.run();
    EXPECT_TRUE(generator.finished());
    return outcome;
  }

  pid_t pid_ = -1;
  net::Endpoint bound_;
};

TEST_F(LoadGeneratorTest, ClosedModelKeepsEveryConnectionBusy) {
  RunPlan plan = plan_for("/fast");
  plan.connections = 4;
  plan.duration_ms = 1500;
  Outcome o = run(plan);
  EXPECT_EQ(o.finals, 1);
  EXPECT_EQ(o.snapshots, 2);  // one whole second, then the final half second
  EXPECT_GT(o.total.requests, 100u);
  EXPECT_EQ(o.total.status_counts[200], o.total.requests);
  EXPECT_EQ(o.total.errors, 0u);
  EXPECT_EQ(o.total.connections_opened, 4u);
  EXPECT_EQ(o.total.latency.count(), o.total.requests);
}

TEST_F(LoadGeneratorTest, OpenModelSendsOnScheduleAndCountsNothingLate) {
  RunPlan plan = plan_for("/fast");
  plan.connections = 4;
  plan.rate = 400;
  plan.duration_ms = 1000;
  Outcome o = run(plan);
  EXPECT_NEAR(static_cast<double>(o.total.scheduled), 400, 2);
  EXPECT_GE(o.total.requests + 4, o.total.scheduled);
  EXPECT_EQ(o.total.not_started, 0u);
  EXPECT_EQ(o.total.errors, 0u);
}

TEST_F(LoadGeneratorTest, OpenModelQueuesBehindASlowTargetAndReportsIt) {
  RunPlan plan = plan_for("/slow");
  plan.connections = 1;
  plan.rate = 20;  // one every 50 ms, served one per 300 ms
  plan.duration_ms = 1000;
  Outcome o = run(plan);
  EXPECT_NEAR(static_cast<double>(o.total.scheduled), 20, 1);
  EXPECT_LE(o.total.requests, 4u);
  EXPECT_GT(o.total.started_late, 0u);
  EXPECT_GT(o.total.not_started, 10u);
  // The second response was due at 50 ms and completed near 600 ms.
  EXPECT_GT(o.total.latency.max(), 500'000u);
}

TEST_F(LoadGeneratorTest, TimeoutsAreErrorsNotLatencies) {
  RunPlan plan = plan_for("/slow");
  plan.connections = 2;
  plan.timeout_ms = 100;
  plan.duration_ms = 700;
  Outcome o = run(plan);
  EXPECT_EQ(o.total.requests, 0u);
  EXPECT_GE(o.total.error_counts[static_cast<size_t>(metrics::ErrorCause::kTimeout)], 4u);
  EXPECT_EQ(o.total.latency.count(), 0u);
}

TEST_F(LoadGeneratorTest, RefusedConnectionsAreCountedWithBackoff) {
  RunPlan plan = plan_for("/fast");
  plan.port = 1;  // nothing listens on port 1
  plan.connections = 2;
  plan.duration_ms = 500;
  Outcome o = run(plan);
  uint64_t refused =
      o.total.error_counts[static_cast<size_t>(metrics::ErrorCause::kConnectRefused)];
  EXPECT_GT(refused, 2u);
  EXPECT_LT(refused, 100u) << "backoff keeps a dead target from being hammered";
}

TEST_F(LoadGeneratorTest, ConnectionsOpenInBatchesSoTheEndIsNotHeldUp) {
  // Opening every connection inside start() kept a worker with 20,000 of them
  // away from its end timer for seconds; the run must be able to end between
  // batches, and then say how few were attempted.
  RunPlan plan = plan_for("/slow");
  plan.connections = 3000;
  plan.duration_ms = 10'000;
  net::EventLoop loop;
  metrics::Snapshot final_snapshot;
  LoadGenerator generator(loop, plan, [&](const metrics::Snapshot& s, bool final) {
    if (final) final_snapshot = s;
  });
  std::string error;
  ASSERT_TRUE(generator.start(millstone::net::now_ns(), &error)) << error;
  generator.stop();
  EXPECT_GT(final_snapshot.connections_opened, 0u);
  EXPECT_LE(final_snapshot.connections_opened, 512u) << "start() opened the connections in one go";
}

TEST_F(LoadGeneratorTest, CountsEstablishedConnectionsAndRequestsInFlightAtTheEnd) {
  RunPlan plan = plan_for("/slow");  // 300 ms per response: in flight at 150 ms
  plan.connections = 3;
  plan.duration_ms = 150;
  Outcome o = run(plan);
  EXPECT_EQ(o.total.connections_opened, 3u);
  EXPECT_EQ(o.total.connections_established, 3u);
  EXPECT_EQ(o.total.requests, 0u);
  EXPECT_EQ(o.total.in_flight, 3u);
}

TEST_F(LoadGeneratorTest, RefusedConnectionsAreAttemptedButNotEstablished) {
  RunPlan plan = plan_for("/fast");
  plan.port = 1;
  plan.connections = 2;
  plan.duration_ms = 200;
  Outcome o = run(plan);
  EXPECT_GE(o.total.connections_opened, 2u);
  EXPECT_EQ(o.total.connections_established, 0u);
  EXPECT_EQ(o.total.in_flight, 0u);
}

}  // namespace load_generator_test
}  // namespace millstone::engine
