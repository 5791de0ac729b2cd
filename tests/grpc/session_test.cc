// grpc::Session against an in-process nghttp2 server session, as the
// http2::Session tests do: every frame is real HTTP/2, no socket. The server
// answers each call with a scripted reply, valid gRPC or not.
#include "grpc/session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grpc/framing.h"

namespace millstone::grpc {
namespace session_test {

using metrics::ErrorCause;

struct Recorder : http::RequestListener {
  std::vector<http::ResponseInfo> responses;
  std::vector<ErrorCause> failures;
  void on_response(http::RequestToken, const http::ResponseInfo& response, int64_t) override {
    responses.push_back(response);
  }
  void on_request_failed(http::RequestToken, ErrorCause cause) override {
    failures.push_back(cause);
  }
};

struct Buffer : http::Output {
  std::string bytes;
  bool write(std::string_view data) override {
    bytes.append(data);
    return true;
  }
};

struct Reply {
  std::string status = "200";
  std::string content_type = "application/grpc";
  std::string body = frame_message("\x0a\x02hi");
  // Trailers after the body; empty: the body's DATA ends the stream.
  std::vector<std::pair<std::string, std::string>> trailers = {{"grpc-status", "0"}};
  // One HEADERS with END_STREAM and these fields (a trailers-only answer).
  bool trailers_only = false;
};

class Server {
 public:
  explicit Server(Reply reply) : reply_(std::move(reply)) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Server::frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Server::header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Server::data_chunk);
    nghttp2_session_server_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
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
  std::map<std::string, std::string> headers;
  std::string request_body;

 private:
  // Views, not std::string: a literal name bound to a const std::string& would
  // be a temporary that dies before nghttp2 copies the field.
  static nghttp2_nv nv(std::string_view name, std::string_view value) {
    return {(uint8_t*)name.data(), (uint8_t*)value.data(), name.size(), value.size(),
            NGHTTP2_NV_FLAG_NONE};
  }
  static int frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Server*>(user);
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    const Reply& r = self->reply_;
    std::vector<nghttp2_nv> fields = {nv(":status", r.status)};
    if (!r.content_type.empty()) fields.push_back(nv("content-type", r.content_type));
    if (r.trailers_only) {
      for (const auto& [name, value] : r.trailers)
        fields.push_back(nv(name, value));
      nghttp2_submit_response(session, frame->hd.stream_id, fields.data(), fields.size(), nullptr);
      return 0;
    }
    nghttp2_data_provider provider{};
    provider.source.ptr = self;
    provider.read_callback = &Server::read_body;
    self->offset_ = 0;
    nghttp2_submit_response(session, frame->hd.stream_id, fields.data(), fields.size(), &provider);
    return 0;
  }
  static int header(nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    static_cast<Server*>(user)->headers[std::string((const char*)name, namelen)] =
        std::string((const char*)value, valuelen);
    return 0;
  }
  static int data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t* data, size_t len,
                        void* user) {
    static_cast<Server*>(user)->request_body.append((const char*)data, len);
    return 0;
  }
  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* self = static_cast<Server*>(source->ptr);
    const std::string& body = self->reply_.body;
    const size_t n = std::min(length, body.size() - self->offset_);
    std::memcpy(buf, body.data() + self->offset_, n);
    self->offset_ += n;
    if (self->offset_ == body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!self->reply_.trailers.empty()) {
        // Trailers after the last DATA, as a server sends them.
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> trailers;
        for (const auto& [name, value] : self->reply_.trailers)
          trailers.push_back(nv(name, value));
        nghttp2_submit_trailer(session, id, trailers.data(), trailers.size());
      }
    }
    return static_cast<ssize_t>(n);
  }

  Reply reply_;
  size_t offset_ = 0;
  nghttp2_session* session_ = nullptr;
};

http::RequestSpec call_spec() {
  http::RequestSpec spec;
  spec.method = "POST";
  spec.authority = "127.0.0.1:50051";
  spec.path = "/millstone.test.Greeter/SayHello";
  spec.headers = {
      {"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-timeout", "100m"}};
  spec.body = frame_message(
      "\x0a\x03"
      "ada");
  return spec;
}

// The server's bytes reach the client one byte at a time when `trickle`, so
// every split of frames and messages is exercised.
class GrpcSessionTest : public ::testing::Test {
 protected:
  void run(Reply reply, bool trickle = false, Settings settings = {}) {
    Server server(std::move(reply));
    Session session(settings, recorder_, stats_);
    http2::Request request(call_spec());
    Buffer out;
    ASSERT_TRUE(session.on_open(out).ok);
    ASSERT_TRUE(session.submit(request, 7, 0, out));
    ASSERT_TRUE(session.on_writable(out).ok);
    for (int round = 0; round < 10; ++round) {
      server.feed(out.bytes);
      out.bytes.clear();
      const std::string answer = server.drain();
      if (answer.empty()) break;
      if (trickle) {
        for (char c : answer)
          ASSERT_TRUE(session.on_read(std::span<const char>(&c, 1), out).ok);
      } else {
        ASSERT_TRUE(session.on_read(answer, out).ok);
      }
    }
    server_headers_ = server.headers;
    server_body_ = server.request_body;
    in_flight_ = session.in_flight();
  }

  Recorder recorder_;
  metrics::Snapshot stats_;
  std::map<std::string, std::string> server_headers_;
  std::string server_body_;
  uint32_t in_flight_ = 0;
};

TEST_F(GrpcSessionTest, OkCallIsAResponseWithItsStatus) {
  run(Reply{});
  ASSERT_EQ(recorder_.responses.size(), 1u);
  EXPECT_TRUE(recorder_.failures.empty());
  EXPECT_EQ(recorder_.responses[0].grpc_status, 0);
  EXPECT_EQ(recorder_.responses[0].status, 200);
  EXPECT_EQ(recorder_.responses[0].body_bytes, 4u);
  EXPECT_EQ(in_flight_, 0u);
  // What went out is a gRPC call: POST, the path, the framed message.
  EXPECT_EQ(server_headers_[":method"], "POST");
  EXPECT_EQ(server_headers_[":path"], "/millstone.test.Greeter/SayHello");
  EXPECT_EQ(server_headers_["content-type"], "application/grpc");
  EXPECT_EQ(server_headers_["te"], "trailers");
  EXPECT_EQ(server_headers_["grpc-timeout"], "100m");
  EXPECT_EQ(server_body_, frame_message("\x0a\x03"
                                        "ada"));
}

TEST_F(GrpcSessionTest, EveryByteSplitStillReadsOneCall) {
  Reply reply;
  reply.content_type = "application/grpc+proto";
  run(reply, true);
  ASSERT_EQ(recorder_.responses.size(), 1u);
  EXPECT_EQ(recorder_.responses[0].grpc_status, 0);
}

TEST_F(GrpcSessionTest, NonOkStatusIsAResultByCode) {
  Reply trailers_only;
  trailers_only.trailers_only = true;
  trailers_only.trailers = {{"grpc-status", "14"}, {"grpc-message", "try%20later"}};
  run(trailers_only);
  Reply after_body;
  after_body.body.clear();
  after_body.trailers = {{"grpc-status", "4"}};
  run(after_body);
  ASSERT_EQ(recorder_.responses.size(), 2u);
  EXPECT_EQ(recorder_.responses[0].grpc_status, 14);
  EXPECT_EQ(recorder_.responses[1].grpc_status, 4);
  EXPECT_TRUE(recorder_.failures.empty());
}

TEST_F(GrpcSessionTest, AnswersThatAreNotGrpcAreClassifiedErrors) {
  struct Case {
    const char* what;
    Reply reply;
    ErrorCause cause;
  };
  std::vector<Case> cases;
  Reply http_503;
  http_503.status = "503";
  http_503.content_type = "text/plain";
  http_503.body = "busy";
  http_503.trailers.clear();
  cases.push_back({"HTTP 503", http_503, ErrorCause::kGrpcHttpStatus});
  Reply html;
  html.content_type = "text/html";
  cases.push_back({"content-type text/html", html, ErrorCause::kGrpcContentType});
  Reply no_type;
  no_type.content_type.clear();
  cases.push_back({"no content-type", no_type, ErrorCause::kGrpcContentType});
  Reply grpc_web;
  grpc_web.content_type = "application/grpc-web";
  cases.push_back({"grpc-web", grpc_web, ErrorCause::kGrpcContentType});
  Reply bad_prefix;
  bad_prefix.body = std::string("\x00\x00\x00\x00\x09hi", 7);  // says 9 bytes, has 2
  cases.push_back({"length past the end", bad_prefix, ErrorCause::kGrpcBadMessage});
  Reply bad_flag;
  bad_flag.body = std::string("\x05\x00\x00\x00\x00", 5);
  cases.push_back({"flag 5", bad_flag, ErrorCause::kGrpcBadMessage});
  Reply compressed;
  compressed.body = std::string("\x01\x00\x00\x00\x01x", 6);
  cases.push_back({"compressed unasked", compressed, ErrorCause::kGrpcBadMessage});
  Reply two;
  two.body = frame_message("a") + frame_message("b");
  cases.push_back({"unary OK with two messages", two, ErrorCause::kGrpcBadMessage});
  Reply none;
  none.body.clear();
  cases.push_back({"unary OK with no message", none, ErrorCause::kGrpcBadMessage});
  Reply no_trailers;
  no_trailers.trailers.clear();
  cases.push_back({"no trailers", no_trailers, ErrorCause::kGrpcMissingStatus});
  Reply word_status;
  word_status.trailers = {{"grpc-status", "OK"}};
  cases.push_back({"grpc-status OK in words", word_status, ErrorCause::kGrpcMissingStatus});
  for (const Case& c : cases) {
    recorder_ = Recorder{};
    run(c.reply);
    EXPECT_TRUE(recorder_.responses.empty()) << c.what;
    ASSERT_EQ(recorder_.failures.size(), 1u) << c.what;
    EXPECT_EQ(recorder_.failures[0], c.cause)
        << c.what << ": " << metrics::error_cause_name(recorder_.failures[0]);
    EXPECT_EQ(in_flight_, 0u) << c.what;
  }
}

TEST_F(GrpcSessionTest, ServerStreamingTakesAnyNumberOfMessages) {
  Settings streaming;
  streaming.unary = false;
  Reply three;
  three.body = frame_message("a") + frame_message("b") + frame_message("c");
  run(three, false, streaming);
  ASSERT_EQ(recorder_.responses.size(), 1u);
  EXPECT_EQ(recorder_.responses[0].grpc_status, 0);
}

TEST(GrpcCapturedCall, JudgedAsQuickModeJudgesAStream) {
  http::ResponseContent ok;
  ok.headers = {{"content-type", "application/grpc"}, {"grpc-status", "0"}};
  append_message(&ok.body, "hi");
  CapturedCall call;
  EXPECT_EQ(judge_captured_call(200, ok, true, kDefaultMaxMessageBytes, &call), std::nullopt);
  EXPECT_EQ(call.grpc_status, 0);
  ASSERT_EQ(call.messages.size(), 1u);
  EXPECT_EQ(call.messages[0], "hi");
  EXPECT_FALSE(call.has_grpc_message);

  http::ResponseContent failed;  // trailers-only, with a percent-encoded message
  failed.headers = {
      {"content-type", "application/grpc"}, {"grpc-status", "14"}, {"grpc-message", "try%20later"}};
  EXPECT_EQ(judge_captured_call(200, failed, true, kDefaultMaxMessageBytes, &call), std::nullopt);
  EXPECT_EQ(call.grpc_status, 14);
  EXPECT_TRUE(call.has_grpc_message);
  EXPECT_EQ(call.grpc_message, "try later");
  EXPECT_TRUE(call.messages.empty());

  http::ResponseContent streamed = ok;  // three messages: fine for a stream, not for unary
  append_message(&streamed.body, "b");
  append_message(&streamed.body, "c");
  EXPECT_EQ(judge_captured_call(200, streamed, false, kDefaultMaxMessageBytes, &call),
            std::nullopt);
  EXPECT_EQ(call.messages.size(), 3u);
  EXPECT_EQ(judge_captured_call(200, streamed, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcBadMessage);

  EXPECT_EQ(judge_captured_call(503, ok, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcHttpStatus);
  http::ResponseContent html = ok;
  html.headers[0].second = "text/html";
  EXPECT_EQ(judge_captured_call(200, html, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcContentType);
  http::ResponseContent cut = ok;
  cut.body.pop_back();
  EXPECT_EQ(judge_captured_call(200, cut, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcBadMessage);
  http::ResponseContent no_status = ok;
  no_status.headers.pop_back();
  EXPECT_EQ(judge_captured_call(200, no_status, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcMissingStatus);
  no_status.headers.emplace_back("grpc-status", "OK");
  EXPECT_EQ(judge_captured_call(200, no_status, true, kDefaultMaxMessageBytes, &call),
            ErrorCause::kGrpcMissingStatus);
}

TEST(GrpcContentType, AcceptsGrpcAndItsSubtypes) {
  EXPECT_TRUE(grpc_content_type("application/grpc"));
  EXPECT_TRUE(grpc_content_type("Application/GRPC"));
  EXPECT_TRUE(grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(grpc_content_type("application/grpc; charset=utf-8"));
  EXPECT_FALSE(grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(grpc_content_type("application/json"));
  EXPECT_FALSE(grpc_content_type("application/grp"));
  EXPECT_FALSE(grpc_content_type(""));
}

}  // namespace session_test
}  // namespace millstone::grpc
