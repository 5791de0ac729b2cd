// The mock's amqp: side without a broker (docs/mock.md#amqp): nothing
// listens at the URL, so every publish is dropped and counted, the
// connection is retried, and the routes answer as ever, over HTTP/1.1 and
// HTTP/2. With a broker: AmqpBroker in amqp_test.cc.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support.h"

namespace millstone::testing {
namespace mock_amqp_test {

TEST(MockAmqp, ABrokerDownIsCountedAndTheRoutesStillAnswer) {
  int port = 0;
  const int closed = listen_loopback(&port);  // a free port, closed again: nobody listens
  close(closed);
  MockServer mock("amqp: amqp://guest:guest@127.0.0.1:" + std::to_string(port) + R"(/
routes:
  - method: POST
    path: /orders
    status: 202
    body: '{"reference":"{{ request.json.reference | json }}"}'
    publish:
      exchange: orders.events
      routing_key: order.processed
      body: '{"reference":"{{ request.json.reference | json }}"}'
      latency: 1ms
    errors:
      - {rate: 0.5, status: 503}
websockets:
  - path: /ws/orders
    amqp_push: {exchange: orders.events, key: {query: user}, match: {json: user}}
)");
  int answered = 0, refused = 0;
  for (int i = 0; i < 20; ++i) {
    const HttpResponse r = http_request(mock.port(), "POST", "/orders",
                                        R"({"reference":"r)" + std::to_string(i) + "\"}");
    answered += r.status == 202;
    refused += r.status == 503;
  }
  EXPECT_EQ(answered + refused, 20);
  // HTTP/2 routes publish too (curl speaks h2c by prior knowledge).
  const std::string h2 = shell(
      "curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "
      "-X POST -d '{\"reference\":\"h2\"}' " +
      mock.url("/orders"));
  ASSERT_TRUE(h2 == "202" || h2 == "503") << h2;
  answered += h2 == "202";
  nlohmann::json stats;
  for (int i = 0; i < 100; ++i) {
    stats = mock.stats();
    if (stats["amqp"]["publish_failed"] == answered) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Only the normal answers publish; each was due while the broker was down.
  EXPECT_EQ(stats["amqp"]["publish_failed"], answered) << stats["amqp"].dump();
  EXPECT_EQ(stats["amqp"]["published"], 0);
  EXPECT_EQ(stats["amqp"]["connected"], 0);
  EXPECT_GE(stats["amqp"]["connection_failures"].get<int>(), 1);
  EXPECT_EQ(stats["routes"][0]["error_status"], refused + (h2 == "503"));
  // A pushing route needs the key it pushes by.
  const HttpResponse upgrade = http_request(mock.port(), "GET", "/ws/orders", "",
                                            {{"Upgrade", "websocket"},
                                             {"Connection", "Upgrade"},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                             {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(upgrade.status, 400);
  EXPECT_NE(upgrade.body.find("named by the query parameter user"), std::string::npos)
      << upgrade.body;
}

// The scenario half of the example pair is valid without a broker or a mock
// (the pair runs against a real broker in amqp_test.cc, skipped without one).
TEST(MockAmqp, TheAsyncExampleScenarioValidates) {
  const ProcessResult r = run_millstone(
      {"validate", std::string(MILLSTONE_SOURCE_DIR) + "/examples/orders-async.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 request, 3 socket steps"), std::string::npos) << r.out;
}

}  // namespace mock_amqp_test
}  // namespace millstone::testing
