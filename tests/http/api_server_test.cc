#include "http/api_server.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::http {
namespace api_server_test {

// Answers every request with its method and path; /events starts a stream
// and /empty a 204.
class EchoHandler final : public ApiHandler {
 public:
  ApiReply handle(const RequestParser& request) override {
    ApiReply reply;
    if (request.path() == "/events") {
      reply.event_stream = "run-7";
      return reply;
    }
    if (request.path() == "/empty") {
      reply.status = 204;
      return reply;
    }
    reply.content_type = "text/plain";
    reply.body = std::string(request.method()) + " " + std::string(request.path());
    reply.headers.emplace_back("X-Seen", "1");
    return reply;
  }
};

TEST(ApiExchangeTest, AnswersPipelinedRequestsInOrder) {
  EchoHandler handler;
  ApiExchange exchange(handler, {});
  std::string out;
  const std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n";
  EXPECT_EQ(exchange.feed(two.data(), two.size(), &out), ApiExchange::Next::kMore);
  EXPECT_EQ(exchange.feed("Content-Length: 0\r\n\r\n", 21, &out), ApiExchange::Next::kMore);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
            "Cache-Control: no-store\r\nX-Seen: 1\r\n\r\nGET /a"
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n"
            "Cache-Control: no-store\r\nX-Seen: 1\r\n\r\nPOST /b");
}

TEST(ApiExchangeTest, HeadAndNoContentCarryNoBody) {
  EchoHandler handler;
  ApiExchange exchange(handler, {});
  std::string out;
  const std::string head = "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n";
  exchange.feed(head.data(), head.size(), &out);
  // HEAD: the size of the body, not the body.
  EXPECT_NE(out.find("Content-Length: 7\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
  out.clear();
  const std::string empty = "DELETE /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(exchange.feed(empty.data(), empty.size(), &out), ApiExchange::Next::kClose);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
}

TEST(ApiExchangeTest, AStreamRequestEndsTheExchangeAndNamesTheStream) {
  EchoHandler handler;
  ApiExchange exchange(handler, {});
  std::string out;
  const std::string get = "GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\n\r\n";
  EXPECT_EQ(exchange.feed(get.data(), get.size(), &out), ApiExchange::Next::kStream);
  EXPECT_EQ(exchange.stream_name(), "run-7");
  EXPECT_EQ(out.find("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"), 0u);
  // What follows a stream request is not a request.
  EXPECT_EQ(out.find("GET /a"), std::string::npos);
  EXPECT_EQ(exchange.feed("x", 1, &out), ApiExchange::Next::kStream);
}

TEST(ApiExchangeTest, BadRequestsGetAJsonErrorAndClose) {
  EchoHandler handler;
  ApiExchange exchange(handler, {.max_header_bytes = 1024, .max_body_bytes = 10});
  std::string out;
  const std::string big = "POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
  EXPECT_EQ(exchange.feed(big.data(), big.size(), &out), ApiExchange::Next::kClose);
  EXPECT_EQ(out.find("HTTP/1.1 413 Content Too Large\r\n"), 0u);
  EXPECT_NE(out.find(R"({"error":"request body larger than 10 bytes","status":413})"),
            std::string::npos)
      << out;
  ApiExchange garbage(handler, {});
  out.clear();
  EXPECT_EQ(garbage.feed("\x01\x02 \"x\r\n\r\n", 9, &out), ApiExchange::Next::kClose);
  EXPECT_EQ(out.find("HTTP/1.1 400 Bad Request\r\n"), 0u);
  EXPECT_NE(out.find(R"("status":400})"), std::string::npos);
}

}  // namespace api_server_test
}  // namespace millstone::http
