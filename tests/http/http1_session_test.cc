// http::Http1Session with canned server bytes: one request in flight, the
// prebuilt bytes written once, responses by token, and the HTTP/1.1 edges
// (Connection: close, a body delimited by the FIN, bytes after the response,
// a timeout) as the session's state rather than the connection's.
#include "http/http1_session.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace millstone::http {
namespace http1_session_test {

using metrics::ErrorCause;

struct Recorder : RequestListener {
  std::vector<std::pair<RequestToken, ResponseInfo>> responses;
  std::vector<std::pair<RequestToken, ErrorCause>> failures;
  void on_response(RequestToken token, const ResponseInfo& response, int64_t) override {
    responses.emplace_back(token, response);
  }
  void on_request_failed(RequestToken token, ErrorCause cause) override {
    failures.emplace_back(token, cause);
  }
};

struct Writes : Output {
  std::vector<std::string> writes;
  bool write(std::string_view bytes) override {
    writes.emplace_back(bytes);
    return true;
  }
};

const Http1Request kGet("GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);

TEST(Http1Session, OneSendPerRequestAndResponsesByToken) {
  Recorder recorder;
  Writes out;
  Http1Session session(recorder, true);
  EXPECT_EQ(session.capacity(), 1u);
  ASSERT_TRUE(session.submit(kGet, 42, 0, out));
  EXPECT_EQ(session.capacity(), 0u);
  EXPECT_FALSE(session.submit(kGet, 43, 0, out));
  ASSERT_EQ(out.writes.size(), 1u);
  EXPECT_EQ(out.writes[0], kGet.bytes());
  const std::string answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
  EXPECT_TRUE(session.on_read({answer.data(), 10}, out).ok);  // split anywhere
  EXPECT_TRUE(session.on_read({answer.data() + 10, answer.size() - 10}, out).ok);
  ASSERT_EQ(recorder.responses.size(), 1u);
  EXPECT_EQ(recorder.responses[0].first, 42u);
  EXPECT_EQ(recorder.responses[0].second.status, 404);
  EXPECT_EQ(recorder.responses[0].second.body_bytes, 3u);
  EXPECT_EQ(session.capacity(), 1u);
  EXPECT_FALSE(session.draining());
}

TEST(Http1Session, ConnectionCloseAndNoKeepaliveEndTheSession) {
  for (const bool keepalive : {true, false}) {
    Recorder recorder;
    Writes out;
    Http1Session session(recorder, keepalive);
    ASSERT_TRUE(session.submit(kGet, 1, 0, out));
    const std::string answer =
        keepalive ? "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                  : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    EXPECT_TRUE(session.on_read(answer, out).ok);
    EXPECT_EQ(recorder.responses.size(), 1u);
    EXPECT_TRUE(session.draining());
    EXPECT_EQ(session.capacity(), 0u);
  }
}

TEST(Http1Session, ABodyDelimitedByTheFinCompletesAtTheEnd) {
  Recorder recorder;
  Writes out;
  Http1Session session(recorder, true);
  ASSERT_TRUE(session.submit(kGet, 1, 0, out));
  EXPECT_TRUE(session.on_read(std::string("HTTP/1.1 200 OK\r\n\r\nuntil the end"), out).ok);
  EXPECT_TRUE(recorder.responses.empty());
  EXPECT_TRUE(session.on_end().ok);
  ASSERT_EQ(recorder.responses.size(), 1u);
  EXPECT_EQ(recorder.responses[0].second.body_bytes, 13u);
}

TEST(Http1Session, AFinBeforeTheResponseLosesTheRequest) {
  Recorder recorder;
  Writes out;
  Http1Session session(recorder, true);
  ASSERT_TRUE(session.submit(kGet, 1, 0, out));
  const SessionStatus status = session.on_end();
  EXPECT_FALSE(status.ok);
  EXPECT_EQ(status.cause, ErrorCause::kClosed);
  EXPECT_TRUE(recorder.responses.empty());
}

TEST(Http1Session, BytesWithNoRequestOrAfterTheResponseAreUnexpected) {
  Recorder recorder;
  Writes out;
  Http1Session idle(recorder, true);
  EXPECT_EQ(idle.on_read(std::string("HTTP/1.1 200 OK\r\n"), out).cause,
            ErrorCause::kUnexpectedData);
  Http1Session busy(recorder, true);
  ASSERT_TRUE(busy.submit(kGet, 1, 0, out));
  const SessionStatus status =
      busy.on_read(std::string("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra"), out);
  EXPECT_FALSE(status.ok);
  EXPECT_EQ(status.cause, ErrorCause::kUnexpectedData);
  EXPECT_TRUE(recorder.responses.empty());
}

TEST(Http1Session, MalformedResponsesAreClassified) {
  Recorder recorder;
  Writes out;
  Http1Session session(recorder, true);
  ASSERT_TRUE(session.submit(kGet, 1, 0, out));
  const SessionStatus status = session.on_read(std::string("SMTP ready\r\n"), out);
  EXPECT_FALSE(status.ok);
  EXPECT_EQ(status.cause, ErrorCause::kMalformedStatus);
}

TEST(Http1Session, ExpireFailsTheRequestAndEndsTheSession) {
  Recorder recorder;
  Writes out;
  Http1Session session(recorder, true);
  ASSERT_TRUE(session.submit(kGet, 7, 1'000, out));
  session.expire(1'500, 1'000, out);
  EXPECT_TRUE(recorder.failures.empty());
  session.expire(2'000, 1'000, out);
  ASSERT_EQ(recorder.failures.size(), 1u);
  EXPECT_EQ(recorder.failures[0], std::make_pair(RequestToken{7}, ErrorCause::kTimeout));
  EXPECT_TRUE(session.draining());  // a late answer would be unexpected data
  session.fail_all(ErrorCause::kReset);
  EXPECT_EQ(recorder.failures.size(), 1u);  // reported once
}

}  // namespace http1_session_test
}  // namespace millstone::http
