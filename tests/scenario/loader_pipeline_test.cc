// from: and until: (docs/scenarios.md#end-to-end-latency): what they compile
// to, and the load-time errors, with file:line.
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/loader.h"
#include "scenario_text.h"

namespace millstone::scenario {
namespace loader_pipeline_test {

using ::testing::HasSubstr;

using scenario_text::error_of;
using scenario_text::load;

const Instruction& instruction_of(const Plan& plan, std::string_view step) {
  for (const Flow& flow : plan.flows) {
    for (const Instruction& in : flow.program) {
      const bool named = in.op == Instruction::Op::kRequest || in.op == Instruction::Op::kSocket ||
                         in.op == Instruction::Op::kAmqp;
      if (named && plan.step_names[in.metric] == step) return in;
    }
  }
  ADD_FAILURE() << "no step " << step;
  static const Instruction none;
  return none;
}

TEST(LoaderPipelineTest, FromNamesAnEarlierStepOrTheLastRequest) {
  auto plan = load(R"yaml(target: http://127.0.0.1:8080
flows:
  order:
    steps:
      - ws.connect: /events
      - name: place
        post: /orders
        json: {id: "{{ corr }}"}
      - group: stages
        steps:
          - name: accepted
            ws.expect: {json: {"$.id": "{{ corr }}"}, from: place}
          - name: processed
            ws.expect: {contains: processed, from: request}
          - name: notified
            ws.expect: {contains: notified, from: accepted}
      - name: done
        get: /orders/{{ corr }}
        until: {json: {"$.state": done}, interval: 50ms, timeout: 3s, from: place}
      - ws.expect: {contains: bye}
)yaml");
  const Flow& flow = plan->flows[0];
  EXPECT_EQ(flow.origin_slots, 2u);
  const Instruction& place = instruction_of(*plan, "order/place");
  const Instruction& accepted = instruction_of(*plan, "order/stages/accepted");
  ASSERT_NE(place.mark_slot, Instruction::kNoSlot);
  ASSERT_NE(accepted.mark_slot, Instruction::kNoSlot);
  EXPECT_NE(place.mark_slot, accepted.mark_slot);
  EXPECT_EQ(accepted.from, Instruction::From::kStep);
  EXPECT_EQ(accepted.from_slot, place.mark_slot);
  EXPECT_EQ(instruction_of(*plan, "order/stages/processed").from, Instruction::From::kRequest);
  const Instruction& notified = instruction_of(*plan, "order/stages/notified");
  EXPECT_EQ(notified.from, Instruction::From::kStep);
  EXPECT_EQ(notified.from_slot, accepted.mark_slot);  // a name in the same group
  EXPECT_EQ(instruction_of(*plan, "order/ws.expect").from, Instruction::From::kDefault);

  const Instruction& done = instruction_of(*plan, "order/done");
  EXPECT_EQ(done.from, Instruction::From::kStep);
  EXPECT_EQ(done.from_slot, place.mark_slot);
  const HttpRequest& poll = flow.requests[done.arg];
  ASSERT_TRUE(poll.poll);
  EXPECT_EQ(poll.poll->interval_us, 50'000);
  EXPECT_EQ(poll.poll->timeout_us, 3'000'000);
  EXPECT_EQ(poll.poll->until.size(), 1u);
  EXPECT_EQ(plan->step_names[poll.poll->metric], "order/done poll");
  EXPECT_TRUE(poll.checks.empty());  // until: is not a check
}

TEST(LoaderPipelineTest, AmqpExpectTakesFrom) {
  auto plan = load(R"yaml(target: http://127.0.0.1:8080
amqp: {url: "amqp://127.0.0.1:5672"}
flows:
  order:
    steps:
      - name: place
        post: /orders
      - name: queued
        amqp.expect: {queue: q1, correlation_id: "{{ corr }}", from: place}
      - name: processed
        amqp.expect: {queue: q2, correlation_id: "{{ corr }}", from: place}
)yaml");
  const Instruction& place = instruction_of(*plan, "order/place");
  EXPECT_EQ(instruction_of(*plan, "order/queued").from_slot, place.mark_slot);
  EXPECT_EQ(instruction_of(*plan, "order/processed").from_slot, place.mark_slot);
  EXPECT_EQ(plan->flows[0].origin_slots, 1u);
}

TEST(LoaderPipelineTest, FromErrorsSayWhere) {
  EXPECT_EQ(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - ws.connect: /events
      - name: place
        post: /orders
      - ws.expect: {contains: x, from: plcae}
)yaml"),
            "s.yaml:8:40: from \"plcae\" names no step of flow \"f\"; expected request (the "
            "flow's last request) or the name of an earlier step, such as \"place\", "
            "\"ws.connect /events\"");
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - ws.connect: /events
      - ws.expect: {contains: x, from: later}
      - name: later
        post: /orders
)yaml"),
              HasSubstr("s.yaml:6:40: from \"later\" names a later step (line 7); expected an "
                        "earlier step"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - ws.connect: /events
      - name: me
        ws.expect: {contains: x, from: me}
)yaml"),
              HasSubstr("from \"me\" names this step itself"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - ws.connect: /events
      - ws.hold: {duration: 1s, from: request}
)yaml"),
              HasSubstr("s.yaml:6:33"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - ws.connect: /events
      - ws.expect: {from: ""}
)yaml"),
              HasSubstr("s.yaml:6:27: from is empty"));
}

TEST(LoaderPipelineTest, UntilErrorsSayWhere) {
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /orders/1
        until: {json: {"$.state": done}, interval: 500us}
)yaml"),
              HasSubstr("s.yaml:6:52: interval is under 1ms"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /orders/1
        until: {interval: 10ms}
)yaml"),
              HasSubstr("s.yaml:6:16: until has no check"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /orders/1
        until: {json: {"$.state": done}, interval: 1ms, timeout: 1h}
)yaml"),
              HasSubstr("more than 100000 polls"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /orders/1
        until: done
)yaml"),
              HasSubstr("s.yaml:6:16: until is a single value; expected a map of checks"));
  EXPECT_THAT(error_of(R"yaml(target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /orders/1
        until: {jsn: {"$.state": done}}
)yaml"),
              HasSubstr("s.yaml:6"));
}

}  // namespace loader_pipeline_test
}  // namespace millstone::scenario
