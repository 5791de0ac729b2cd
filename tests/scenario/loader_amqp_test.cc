// amqp: queue arguments, amqp.expect acknowledgements and amqp.publish
// confirms, compiled into the Plan (docs/amqp.md#scenario-steps).
#include <string>

#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::scenario {
namespace loader_amqp_test {

std::unique_ptr<Plan> parse(std::string_view text) {
  return parse_scenario(text, "s.yaml", MILLSTONE_SOURCE_DIR "/tests/scenario/data");
}

std::string error_of(std::string_view text) {
  try {
    parse(text);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(LoaderAmqp, QueueArgumentsBecomeTheDeclaredTable) {
  const auto plan = parse(R"(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues:
    - name: work
      message_ttl: 1500ms
      dead_letter_exchange: dlx
      dead_letter_routing_key: "dead.{{ worker }}"
      max_length: 1000
      arguments: {x-overflow: reject-publish, x-max-priority: 5, x-single-active-consumer: true, x-note: "42"}
    - {name: replicated, type: quorum}
flows: {a: {steps: [{amqp.publish: {routing_key: work}}]}}
)");
  const AmqpSettings::Queue& work = plan->amqp.queues[0];
  ASSERT_EQ(work.arguments.size(), 8u);
  auto field = [&](const AmqpSettings::Queue& q, const char* name) {
    const amqp::FieldValue* v = amqp::find_field(q.arguments, name);
    EXPECT_NE(v, nullptr) << name;
    return v != nullptr ? *v : amqp::FieldValue{};
  };
  EXPECT_EQ(field(work, "x-message-ttl"), amqp::FieldValue::of_long(1500));
  EXPECT_EQ(field(work, "x-dead-letter-exchange"), amqp::FieldValue::of_string("dlx"));
  EXPECT_EQ(field(work, "x-dead-letter-routing-key"),
            amqp::FieldValue::of_string("dead.{{ worker }}"));
  EXPECT_EQ(field(work, "x-max-length"), amqp::FieldValue::of_long(1000));
  EXPECT_EQ(field(work, "x-overflow"), amqp::FieldValue::of_string("reject-publish"));
  EXPECT_EQ(field(work, "x-max-priority"), amqp::FieldValue::of_long(5));
  EXPECT_EQ(field(work, "x-single-active-consumer"), amqp::FieldValue::of_bool(true));
  EXPECT_EQ(field(work, "x-note"), amqp::FieldValue::of_string("42"));  // quoted: text
  EXPECT_FALSE(work.durable);
  const AmqpSettings::Queue& replicated = plan->amqp.queues[1];
  EXPECT_EQ(field(replicated, "x-queue-type"), amqp::FieldValue::of_string("quorum"));
  EXPECT_TRUE(replicated.durable);  // the broker refuses a non-durable quorum queue
  EXPECT_FALSE(plan->amqp.confirms);
}

TEST(LoaderAmqp, AcknowledgementsAndConfirms) {
  const auto plan = parse(R"(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows:
  a:
    steps:
      - amqp.publish: {routing_key: work, correlation_id: "{{ corr }}", confirm: true}
      - amqp.expect: {queue: done, correlation_id: "{{ corr }}", on_match: nack, requeue: false, prefetch: 20}
      - amqp.expect: {queue: done, correlation_id: "{{ corr }}"}
      - amqp.expect: {queue: other, correlation_id: "{{ corr }}", on_match: reject, requeue: true}
      - amqp.expect: {queue: plain, correlation_id: "{{ corr }}"}
)");
  EXPECT_TRUE(plan->amqp.confirms);
  const Flow& flow = plan->flows[0];
  EXPECT_TRUE(flow.amqp_steps[0].confirm);
  EXPECT_EQ(flow.amqp_steps[1].on_match, AmqpStep::Settle::kNack);
  EXPECT_FALSE(flow.amqp_steps[1].requeue);
  EXPECT_EQ(flow.amqp_steps[2].on_match, AmqpStep::Settle::kAck);  // the queue's default
  EXPECT_EQ(flow.amqp_steps[3].on_match, AmqpStep::Settle::kReject);
  EXPECT_TRUE(flow.amqp_steps[3].requeue);
  ASSERT_EQ(plan->amqp.consumed.size(), 3u);
  EXPECT_TRUE(plan->amqp.consumed[0].manual_ack);
  EXPECT_EQ(plan->amqp.consumed[0].prefetch, 20);
  EXPECT_TRUE(plan->amqp.consumed[1].manual_ack);
  EXPECT_EQ(plan->amqp.consumed[1].prefetch, 0);
  EXPECT_FALSE(plan->amqp.consumed[2].manual_ack);
}

TEST(LoaderAmqp, RefusalsNameTheLineAndWhatWasExpected) {
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: q, correlation_id: x, on_match: drop}}]}}
)"),
            "s.yaml:3:75: on_match \"drop\" is unknown; expected ack, nack or reject");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: q, correlation_id: x, requeue: true}}]}}
)"),
            "s.yaml:3:65: requeue is for on_match: nack or reject; expected it with one of them");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: q, correlation_id: x, ack: auto, prefetch: 5}}]}}
)"),
            "s.yaml:3:76: prefetch with ack: auto; expected ack: manual (the broker does not bound "
            "what it sends without acknowledgements)");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows:
  a:
    steps:
      - amqp.expect: {queue: q, correlation_id: x, prefetch: 5}
      - amqp.expect: {queue: q, correlation_id: x, prefetch: 6}
)"),
            "s.yaml:7:22: amqp.expect on queue \"q\" acknowledges manually (prefetch 6), but the "
            "expect at s.yaml:6:22 on that queue manually (prefetch 5); expected one way per "
            "queue (one consumer reads it)");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: q, type: quorum, auto_delete: true}]
flows: {a: {steps: [{amqp.publish: {routing_key: q}}]}}
)"),
            "s.yaml:4:49: a quorum queue cannot be auto_delete; expected auto_delete: false");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: q, message_ttl: 1s, arguments: {x-message-ttl: 5}}]
flows: {a: {steps: [{amqp.publish: {routing_key: q}}]}}
)"),
            "s.yaml:4:51: amqp queue \"q\" sets x-message-ttl twice; expected it once (by its "
            "own key, such as message_ttl:, or under arguments:)");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: q, dead_letter_routing_key: dead}]
flows: {a: {steps: [{amqp.publish: {routing_key: q}}]}}
)"),
            "s.yaml:4:22: dead_letter_routing_key without dead_letter_exchange; expected both "
            "(the key is used when a message is dead-lettered to that exchange)");
  EXPECT_EQ(error_of(R"(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: q, type: lazy}]
flows: {a: {steps: [{amqp.publish: {routing_key: q}}]}}
)"),
            "s.yaml:4:28: amqp queue type \"lazy\" is unknown; expected classic, quorum or stream");
}

}  // namespace loader_amqp_test
}  // namespace millstone::scenario
