// http2::Session against an in-process nghttp2 server session: the bytes of
// each side are handed to the other until both are quiet, so every frame is
// real HTTP/2 and nothing touches a socket.
#include "http2/session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace millstone::http2 {
namespace session_test {

using metrics::ErrorCause;

struct Recorder : http::RequestListener {
  std::vector<std::pair<http::RequestToken, http::ResponseInfo>> responses;
  std::vector<std::pair<http::RequestToken, ErrorCause>> failures;
  void on_response(http::RequestToken token, const http::ResponseInfo& response, int64_t) override {
    responses.emplace_back(token, response);
  }
  void on_request_failed(http::RequestToken token, ErrorCause cause) override {
    failures.emplace_back(token, cause);
  }
};

struct Buffer : http::Output {
  std::string bytes;
  bool write(std::string_view data) override {
    bytes.append(data);
    return true;
  }
};

// What the test server does with each complete request.
enum class Answer { kOk, kReset, kGoaway, kSilent };

class Server {
 public:
  explicit Server(Answer answer, uint32_t max_streams = 100, std::string body = "hello")
      : answer_(answer), body_(std::move(body)) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Server::frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Server::data_chunk);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Server::header);
    nghttp2_session_server_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry entries[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries, 1);
  }
  ~Server() { nghttp2_session_del(session_); }

  void feed(const std::string& bytes) {
    ASSERT_GE(nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size()),
              0);
  }
  std::string drain() {
    std::string out;
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) return out;
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
  }

  int requests = 0;
  uint64_t request_body_bytes = 0;
  int rst_received = 0;
  std::map<std::string, std::string> last_headers;

 private:
  static int frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Server*>(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM) ++self->rst_received;
    const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (!end || (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)) return 0;
    ++self->requests;
    const int32_t id = frame->hd.stream_id;
    switch (self->answer_) {
      case Answer::kOk: {
        const nghttp2_nv headers[] = {
            {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t*)"x-served", (uint8_t*)"yes", 8, 3, NGHTTP2_NV_FLAG_NONE}};
        nghttp2_data_provider provider{};
        provider.source.ptr = self;
        provider.read_callback = &Server::read_body;
        self->offsets_[id] = 0;
        nghttp2_submit_response(session, id, headers, 2, &provider);
        break;
      }
      case Answer::kReset:
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        break;
      case Answer::kGoaway:
        if (self->requests > 1) break;  // one GOAWAY, after the first request
        nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_ENHANCE_YOUR_CALM, nullptr, 0);
        break;
      case Answer::kSilent:
        break;
    }
    return 0;
  }
  static int header(nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    static_cast<Server*>(user)
        ->last_headers[std::string(reinterpret_cast<const char*>(name), namelen)] =
        std::string(reinterpret_cast<const char*>(value), valuelen);
    return 0;
  }
  static int data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t len,
                        void* user) {
    static_cast<Server*>(user)->request_body_bytes += len;
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* self = static_cast<Server*>(source->ptr);
    size_t& offset = self->offsets_[id];
    const size_t n = std::min(length, self->body_.size() - offset);
    std::memcpy(buf, self->body_.data() + offset, n);
    offset += n;
    if (offset == self->body_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  Answer answer_;
  std::string body_;
  std::map<int32_t, size_t> offsets_;
  nghttp2_session* session_ = nullptr;
};

class Http2SessionTest : public ::testing::Test {
 protected:
  void open(Answer answer, uint32_t streams, uint32_t server_max_streams = 100) {
    server_ = std::make_unique<Server>(answer, server_max_streams);
    Settings settings;
    settings.max_streams = streams;
    session_ = std::make_unique<Session>(settings, recorder_, stats_);
    ASSERT_TRUE(session_->on_open(out_).ok);
  }
  // Hands bytes back and forth until neither side has anything to say.
  http::SessionStatus pump() {
    http::SessionStatus status;
    for (int round = 0; round < 50; ++round) {
      session_->on_writable(out_);  // what submit() queued
      if (!out_.bytes.empty()) {
        server_->feed(out_.bytes);
        out_.bytes.clear();
      }
      const std::string answer = server_->drain();
      if (answer.empty() && out_.bytes.empty()) break;
      if (!answer.empty()) {
        status = session_->on_read(answer, out_);
        if (!status.ok) return status;
      }
    }
    return status;
  }

  Recorder recorder_;
  metrics::Snapshot stats_;
  Buffer out_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Session> session_;
};

http::RequestSpec get(std::string path = "/") {
  http::RequestSpec spec;
  spec.authority = "example.test";
  spec.path = std::move(path);
  return spec;
}

TEST_F(Http2SessionTest, MultiplexesRequestsAndReportsEachByToken) {
  open(Answer::kOk, 5);
  const Request request(get());
  EXPECT_EQ(session_->capacity(), 5u);
  for (http::RequestToken token = 1; token <= 5; ++token)
    ASSERT_TRUE(session_->submit(request, token, 0, out_));
  EXPECT_EQ(session_->capacity(), 0u);
  EXPECT_FALSE(session_->submit(request, 6, 0, out_));
  EXPECT_EQ(session_->in_flight(), 5u);
  ASSERT_TRUE(pump().ok);
  EXPECT_EQ(server_->requests, 5);
  ASSERT_EQ(recorder_.responses.size(), 5u);
  EXPECT_TRUE(recorder_.failures.empty());
  std::set<http::RequestToken> tokens;
  for (const auto& [token, response] : recorder_.responses) {
    tokens.insert(token);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body_bytes, 5u);
  }
  EXPECT_EQ(tokens, (std::set<http::RequestToken>{1, 2, 3, 4, 5}));
  EXPECT_EQ(session_->in_flight(), 0u);
  EXPECT_EQ(session_->capacity(), 5u);
}

TEST_F(Http2SessionTest, TheServersConcurrencyLimitLowersCapacity) {
  open(Answer::kOk, 10, 2);
  ASSERT_TRUE(pump().ok);  // the server's SETTINGS arrive
  EXPECT_EQ(session_->capacity(), 2u);
}

TEST_F(Http2SessionTest, SendsTheBodyAndHeaders) {
  open(Answer::kOk, 1);
  http::RequestSpec spec = get("/upload?x=1");
  spec.method = "POST";
  spec.body = std::string(100'000, 'b');  // more than one 64 KiB window: flow control
  spec.headers = {{"X-Test", "1"}, {"Connection", "keep-alive"}, {"Host", "other.test"}};
  const Request request(spec);
  ASSERT_TRUE(session_->submit(request, 7, 0, out_));
  ASSERT_TRUE(pump().ok);
  EXPECT_EQ(server_->request_body_bytes, 100'000u);
  EXPECT_EQ(server_->last_headers[":method"], "POST");
  EXPECT_EQ(server_->last_headers[":path"], "/upload?x=1");
  EXPECT_EQ(server_->last_headers[":authority"], "other.test");
  EXPECT_EQ(server_->last_headers["x-test"], "1");
  EXPECT_EQ(server_->last_headers["content-length"], "100000");
  EXPECT_EQ(server_->last_headers.count("connection"), 0u);
  ASSERT_EQ(recorder_.responses.size(), 1u);
  EXPECT_EQ(recorder_.responses[0].first, 7u);
}

TEST_F(Http2SessionTest, RstStreamFailsTheRequestAndIsCountedByCode) {
  open(Answer::kReset, 2);
  const Request request(get());
  ASSERT_TRUE(session_->submit(request, 1, 0, out_));
  ASSERT_TRUE(session_->submit(request, 2, 0, out_));
  ASSERT_TRUE(pump().ok);
  ASSERT_EQ(recorder_.failures.size(), 2u);
  EXPECT_EQ(recorder_.failures[0].second, ErrorCause::kStreamReset);
  EXPECT_EQ(stats_.h2_rst_stream[NGHTTP2_INTERNAL_ERROR], 2u);
  EXPECT_EQ(session_->capacity(), 2u);  // the connection itself is fine
}

TEST_F(Http2SessionTest, EarlyGoawayFailsUnprocessedRequestsAndDrains) {
  open(Answer::kGoaway, 3);
  const Request request(get());
  for (http::RequestToken token = 1; token <= 3; ++token)
    ASSERT_TRUE(session_->submit(request, token, 0, out_));
  pump();
  ASSERT_EQ(recorder_.failures.size(), 3u);
  for (const auto& [token, cause] : recorder_.failures)
    EXPECT_EQ(cause, ErrorCause::kGoaway);
  EXPECT_EQ(stats_.h2_goaway[NGHTTP2_ENHANCE_YOUR_CALM], 1u);
  EXPECT_TRUE(session_->draining());
  EXPECT_EQ(session_->capacity(), 0u);
  EXPECT_EQ(session_->in_flight(), 0u);
}

TEST_F(Http2SessionTest, ExpireTimesOutAndCancelsTheStream) {
  open(Answer::kSilent, 2);
  const Request request(get());
  ASSERT_TRUE(session_->submit(request, 1, 1'000, out_));
  ASSERT_TRUE(session_->submit(request, 2, 5'000, out_));
  ASSERT_TRUE(pump().ok);
  session_->expire(3'000, 2'000, out_);  // only the first is 2 us old
  ASSERT_EQ(recorder_.failures.size(), 1u);
  EXPECT_EQ(recorder_.failures[0], std::make_pair(http::RequestToken{1}, ErrorCause::kTimeout));
  ASSERT_TRUE(pump().ok);
  EXPECT_EQ(server_->rst_received, 1);
  EXPECT_EQ(session_->in_flight(), 1u);
}

TEST_F(Http2SessionTest, AnHttp11AnswerIsAProtocolError) {
  open(Answer::kOk, 1);
  const Request request(get());
  ASSERT_TRUE(session_->submit(request, 1, 0, out_));
  const std::string http11 = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  const http::SessionStatus status = session_->on_read(http11, out_);
  EXPECT_FALSE(status.ok);
  EXPECT_EQ(status.cause, ErrorCause::kProtocolError);
  EXPECT_EQ(session_->capacity(), 0u);
  session_->fail_all(status.cause);
  ASSERT_EQ(recorder_.failures.size(), 1u);
  EXPECT_EQ(recorder_.failures[0].second, ErrorCause::kProtocolError);
}

TEST_F(Http2SessionTest, FailAllReportsEveryRequestInFlightOnce) {
  open(Answer::kSilent, 3);
  const Request request(get());
  for (http::RequestToken token = 1; token <= 3; ++token)
    ASSERT_TRUE(session_->submit(request, token, 0, out_));
  session_->fail_all(ErrorCause::kReset);
  session_->fail_all(ErrorCause::kReset);
  EXPECT_EQ(recorder_.failures.size(), 3u);
  EXPECT_EQ(session_->in_flight(), 0u);
}

TEST(Http2ErrorCodeName, NamesTheRfcCodesAndHexForOthers) {
  EXPECT_EQ(error_code_name(0), "no_error");
  EXPECT_EQ(error_code_name(7), "refused_stream");
  EXPECT_EQ(error_code_name(0xd), "http_1_1_required");
  EXPECT_EQ(error_code_name(0x1f), "0x1f");
}

// Settings::capture (scenario steps): each response's fields and the start of
// its body reach the listener, and a listener that submits again from its
// callback (as a VU does) cannot take a slot whose outcome is still to be
// delivered, so the next response's capture is intact.
TEST(Http2Capture, FieldsAndBodyPrefixSurviveASubmitFromTheCallback) {
  struct Resubmitter : http::RequestListener {
    Session* session = nullptr;
    const Request* request = nullptr;
    Buffer* out = nullptr;
    int resubmits = 2;
    std::vector<std::string> bodies;
    std::vector<std::string> served;
    void on_response(http::RequestToken, const http::ResponseInfo& response, int64_t) override {
      ASSERT_NE(response.content, nullptr);
      bodies.push_back(response.content->body);
      for (const auto& [name, value] : response.content->headers) {
        if (name == "x-served") served.push_back(value);
      }
      if (resubmits-- > 0) {
        ASSERT_TRUE(session->submit(*request, 9, 0, *out));
      }
    }
    void on_request_failed(http::RequestToken, ErrorCause cause) override {
      ADD_FAILURE() << "failed: " << static_cast<int>(cause);
    }
  };
  Server server(Answer::kOk);
  Resubmitter listener;
  metrics::Snapshot stats;
  Buffer out;
  Settings settings;
  settings.max_streams = 2;
  settings.capture = true;
  settings.capture_body_bytes = 3;
  Session session(settings, listener, stats);
  const Request request(get());
  listener.session = &session;
  listener.request = &request;
  listener.out = &out;
  ASSERT_TRUE(session.on_open(out).ok);
  ASSERT_TRUE(session.submit(request, 1, 0, out));
  ASSERT_TRUE(session.submit(request, 2, 0, out));
  for (int round = 0; round < 50; ++round) {
    session.on_writable(out);
    if (!out.bytes.empty()) {
      server.feed(out.bytes);
      out.bytes.clear();
    }
    const std::string answer = server.drain();
    if (answer.empty()) break;
    ASSERT_TRUE(session.on_read(answer, out).ok);
  }
  EXPECT_EQ(server.requests, 4);
  EXPECT_EQ(listener.bodies, (std::vector<std::string>{"hel", "hel", "hel", "hel"}));
  EXPECT_EQ(listener.served, (std::vector<std::string>{"yes", "yes", "yes", "yes"}));
  EXPECT_EQ(session.in_flight(), 0u);
}

}  // namespace session_test
}  // namespace millstone::http2
