// The amqp: block, a route's publish: and a WebSocket route's amqp_push: of
// a mock config (docs/mock.md#amqp), and the key a pushing route reads from
// the upgrade request.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config_text.h"
#include "mock/config.h"
#include "mock/socket_routes.h"

namespace millstone::mock {
namespace amqp_config_test {

using ::testing::HasSubstr;

using config_text::error_of;
using config_text::parse;

constexpr std::string_view kAmqp = R"(
amqp:
  url: amqp://u:p@127.0.0.1:5673/vh
  queues:
    - {name: r.wait, message_ttl: 300ms, dead_letter_exchange: "", dead_letter_routing_key: r.due}
    - {name: r.due}
)";

TEST(AmqpConfigTest, TheExampleParses) {
  const MockConfig config =
      load_mock_config_file(MILLSTONE_SOURCE_DIR "/examples/orders-async-mock.yaml");
  ASSERT_TRUE(config.amqp);
  const MockAmqp& amqp = *config.amqp;
  EXPECT_EQ(amqp.url_display, "amqp://guest@127.0.0.1:5672/");
  EXPECT_EQ(amqp.password, "guest");
  ASSERT_EQ(amqp.exchanges.size(), 1u);
  EXPECT_EQ(amqp.exchanges[0].type, "topic");
  ASSERT_EQ(amqp.queues.size(), 2u);
  EXPECT_EQ(amqp.queues[0].message_ttl_ms, 1000);
  EXPECT_EQ(amqp.queues[0].dead_letter_exchange, "");
  EXPECT_EQ(amqp.queues[0].dead_letter_routing_key, "orders.retry.due");
  EXPECT_EQ(amqp.queues[1].message_ttl_ms, -1);
  ASSERT_EQ(config.routes.size(), 1u);
  ASSERT_TRUE(config.routes[0].publish);
  const RoutePublish& p = *config.routes[0].publish;
  EXPECT_EQ(p.exchange, "orders.events");
  EXPECT_EQ(p.routing_key.literal_text(), "order.processed");
  EXPECT_DOUBLE_EQ(p.fail, 0.1);
  EXPECT_EQ(p.retry_queue, "orders.retry");
  EXPECT_EQ(p.retry_returns_to, "orders.retry.due");
  EXPECT_EQ(p.content_type, "application/json");
  EXPECT_TRUE(p.correlation_id);
  ASSERT_EQ(p.headers.size(), 1u);
  EXPECT_EQ(p.headers[0].first, "user");
  EXPECT_TRUE(p.body.uses_json());
  ASSERT_EQ(config.websockets.size(), 1u);
  ASSERT_TRUE(config.websockets[0].amqp_push);
  const SocketAmqpPush& push = *config.websockets[0].amqp_push;
  EXPECT_EQ(push.exchange, "orders.events");
  EXPECT_EQ(push.routing_key, "order.processed");
  EXPECT_EQ(push.key_from, SocketAmqpPush::KeyFrom::kQuery);
  EXPECT_EQ(push.key_name, "user");
  EXPECT_EQ(push.match, SocketAmqpPush::Match::kJson);
  EXPECT_EQ(push.match_name, "/user");
}

TEST(AmqpConfigTest, ShortFormsAndBindings) {
  const MockConfig config = parse(R"(
amqp: amqp://127.0.0.1/
websockets:
  - path: /ws/all
    amqp_push: {exchange: ev}
  - path: /ws/one
    amqp_push: {exchange: ev, routing_key: "a.#", key: {header: X-User}, match: correlation_id}
  - path: /ws/deep
    amqp_push: {exchange: ev, key: {query: id}, match: {json: "$.order.items.0/x"}}
)");
  ASSERT_TRUE(config.amqp);
  EXPECT_EQ(config.amqp->port, 5672);
  EXPECT_EQ(config.amqp->vhost, "/");
  EXPECT_EQ(config.websockets[0].amqp_push->key_from, SocketAmqpPush::KeyFrom::kNone);
  EXPECT_EQ(config.websockets[1].amqp_push->key_from, SocketAmqpPush::KeyFrom::kHeader);
  EXPECT_EQ(config.websockets[1].amqp_push->match, SocketAmqpPush::Match::kCorrelationId);
  EXPECT_EQ(config.websockets[2].amqp_push->match_name, "/order/items/0~1x");

  const MockConfig bound = parse(R"(
amqp:
  url: amqp://127.0.0.1/
  exchanges: [{name: ev, type: fanout, durable: true}]
  queues:
    - {name: q1, bind: {exchange: ev}}
    - {name: q2, durable: true, bind: [{exchange: ev, routing_key: k1}, {exchange: ev, routing_key: k2}]}
routes:
  - {path: /x, publish: {exchange: ev, body: "{{ request.path }}"}}
)");
  ASSERT_EQ(bound.amqp->queues[0].bind.size(), 1u);
  EXPECT_EQ(bound.amqp->queues[0].bind[0].routing_key, "q1");  // the queue's name by default
  ASSERT_EQ(bound.amqp->queues[1].bind.size(), 2u);
  EXPECT_EQ(bound.amqp->queues[1].bind[1].routing_key, "k2");
  EXPECT_TRUE(bound.amqp->exchanges[0].durable);
  EXPECT_EQ(bound.routes[0].publish->fail, 0);
}

TEST(AmqpConfigTest, MistakesAreNamedWithTheirPlace) {
  EXPECT_THAT(error_of("routes:\n  - {path: /x, publish: {exchange: e, body: b}}\n"),
              HasSubstr("mock.yaml:2:5: route \"GET /x\" publishes, but the config has no amqp "
                        "block"));
  EXPECT_THAT(error_of("websockets:\n  - {path: /ws, amqp_push: {exchange: e}}\n"),
              HasSubstr("mock.yaml:2:5: websocket route \"ws /ws\" has amqp_push, but the config "
                        "has no amqp block"));
  EXPECT_THAT(error_of("amqp: amqps://127.0.0.1/\nwebsockets:\n  - {path: /ws, echo: true}\n"),
              HasSubstr("is amqps://, which the mock does not speak yet"));
  EXPECT_THAT(error_of("amqp: http://x/\nwebsockets:\n  - {path: /ws, echo: true}\n"),
              HasSubstr("mock.yaml:1:7: amqp url \"http://x/\""));
  const std::string amqp(kAmqp);
  EXPECT_THAT(
      error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e, body: b, fail: 10%}}\n"),
      HasSubstr("publish has fail but no retry"));
  EXPECT_THAT(
      error_of(amqp +
               "routes:\n  - {path: /x, publish: {exchange: e, body: b, retry: {queue: r.wait, "
               "returns_to: r.due}}}\n"),
      HasSubstr("publish has retry but no fail"));
  EXPECT_THAT(
      error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e, body: b, fail: 1%, retry: "
                      "{queue: nope, returns_to: r.due}}}\n"),
      HasSubstr("retries through \"nope\", which amqp: queues does not declare"));
  EXPECT_THAT(
      error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e, body: b, fail: 1%, retry: "
                      "{queue: r.due, returns_to: r.wait}}}\n"),
      HasSubstr("retry queue \"r.due\" has no message_ttl or no dead_letter_exchange"));
  EXPECT_THAT(
      error_of("amqp:\n  url: amqp://h/\n  queues:\n    - {name: w, message_ttl: 1s, "
               "dead_letter_exchange: \"\", dead_letter_routing_key: other}\n    - {name: d}\n"
               "routes:\n  - {path: /x, publish: {exchange: e, body: b, fail: 1%, retry: "
               "{queue: w, returns_to: d}}}\n"),
      HasSubstr("dead-letters to the default exchange with routing key \"other\", not to \"d\""));
  EXPECT_THAT(error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e}}\n"),
              HasSubstr("publish has no body"));
  EXPECT_THAT(error_of(amqp + "routes:\n  - {path: /x, publish: {body: b}}\n"),
              HasSubstr("publish has neither exchange nor routing_key"));
  EXPECT_THAT(
      error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e, body: '{{ nope }}'}}\n"),
      HasSubstr("unknown expression \"nope\""));
  EXPECT_THAT(error_of(amqp + "routes:\n  - {path: /x, publish: {exchange: e, body: b, headers: "
                              "{x-millstone-exchange: v}}}\n"),
              HasSubstr("starts with x-millstone-"));
  EXPECT_THAT(error_of(amqp + "websockets:\n  - {path: /ws, amqp_push: {exchange: e, key: {query: "
                              "u}}}\n"),
              HasSubstr("amqp_push has only one of key and match"));
  EXPECT_THAT(error_of(amqp + "websockets:\n  - {path: /ws, amqp_push: {exchange: e, key: {query: "
                              "u}, match: reply_to}}\n"),
              HasSubstr("match \"reply_to\" is unknown"));
  EXPECT_THAT(error_of(amqp + "tcp:\n  - {listen: 127.0.0.1:9, amqp_push: {exchange: e}}\n"),
              HasSubstr("unknown key \"amqp_push\""));
  EXPECT_THAT(error_of("amqp:\n  url: amqp://h/\n  queues: [{name: q, message_ttl: 1500us}]\n"
                       "websockets:\n  - {path: /ws, echo: true}\n"),
              HasSubstr("message_ttl is not whole milliseconds"));
  EXPECT_THAT(
      error_of("amqp:\n  url: amqp://h/\n  queues: [{name: q, dead_letter_routing_key: k}]\n"
               "websockets:\n  - {path: /ws, echo: true}\n"),
      HasSubstr("dead_letter_routing_key without dead_letter_exchange"));
  EXPECT_THAT(error_of("amqp:\n  url: amqp://h/\n  exchanges: [{name: amq.topic}]\n"
                       "websockets:\n  - {path: /ws, echo: true}\n"),
              HasSubstr("one of the broker's own"));
}

TEST(AmqpConfigTest, TheConnectionsKeyComesFromTheUpgradeRequest) {
  SocketAmqpPush push;
  push.key_from = SocketAmqpPush::KeyFrom::kQuery;
  push.key_name = "user";
  const auto no_headers = [](std::string_view) { return std::string_view(); };
  EXPECT_EQ(amqp_push_key(push, "/ws?user=42", no_headers), "42");
  EXPECT_EQ(amqp_push_key(push, "/ws?a=1&user=a%20b+c&user=2", no_headers), "a b c");
  EXPECT_EQ(amqp_push_key(push, "/ws?users=1", no_headers), "");
  EXPECT_EQ(amqp_push_key(push, "/ws", no_headers), "");
  push.key_from = SocketAmqpPush::KeyFrom::kHeader;
  push.key_name = "x-user";
  EXPECT_EQ(amqp_push_key(push, "/ws?user=42",
                          [](std::string_view name) {
                            return name == "x-user" ? std::string_view("7") : std::string_view();
                          }),
            "7");
}

}  // namespace amqp_config_test
}  // namespace millstone::mock
