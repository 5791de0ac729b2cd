// H2Connection in memory against libnghttp2's own client session: answers,
// per-stream delays, injected resets, templates and limits, with no socket.
#include "mock/h2_connection.h"

#include <nghttp2/nghttp2.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mock/config.h"
#include "net/clock.h"

namespace millstone::mock {
namespace h2_connection_test {

const char* const kYaml = R"(
routes:
  - path: /fast
    headers: {X-Mock: "yes", Keep-Alive: "timeout=5"}
    body: "fast\n"
  - path: /slow
    latency: 30ms
    body: "slow\n"
  - method: POST
    path: /echo/:id
    headers: {X-Id: "{{ path.id }}"}
    body: '{"id":"{{ path.id }}","n":{{ request.json.n }},"ua":"{{ request.header.user-agent }}"}'
  - path: /reset
    errors: [{rate: 1.0, reset: true}]
  - path: /empty
    status: 204
  - path: /who
    body: 'host={{ request.header.host }} cookie={{ request.header.cookie }}'
  - method: POST
    path: /who
    body: 'ua={{ request.header.user-agent }} body={{ request.body }}'
)";

class CountingHost final : public H2Host {
 public:
  void count(int route, Count what) override { ++counts[{route, static_cast<int>(what)}]; }
  std::string stats_json() override { return "{\"stats\":true}"; }
  bool websocket_path(std::string_view target) override { return target == "/ws"; }
  int requests(int route) { return counts[{route, static_cast<int>(Count::kRequest)}]; }
  std::map<std::pair<int, int>, int> counts;
};

class NoteWrites final : public H2Owner {
 public:
  void h2_wants_write() override { ++wakeups; }
  int wakeups = 0;
};

struct Answer {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  bool closed = false;
  uint32_t reset_code = 0;    // RST_STREAM error code, 0 when closed cleanly
  int order = 0;              // 1 for the first stream to finish, ...
  std::vector<int> statuses;  // informational ones (100) first
};

// The client side: nghttp2's client session, fed what the server wrote.
class Client {
 public:
  Client() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t nlen,
               const uint8_t* value, size_t vlen, uint8_t, void* self) {
          Answer& a = static_cast<Client*>(self)->answers[frame->hd.stream_id];
          std::string n(reinterpret_cast<const char*>(name), nlen);
          std::string v(reinterpret_cast<const char*>(value), vlen);
          if (n == ":status") {
            a.status = std::stoi(v);
            a.statuses.push_back(a.status);
          }
          a.headers[n] = v;
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* self) {
          static_cast<Client*>(self)->answers[id].body.append(reinterpret_cast<const char*>(data),
                                                              len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, int32_t id, uint32_t code, void* self) {
          Client& c = *static_cast<Client*>(self);
          Answer& a = c.answers[id];
          a.closed = true;
          a.reset_code = code;
          a.order = ++c.finished;
          return 0;
        });
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session_); }

  // A request; a body that does not `end` stays open (its stream waits for
  // more), and trailers, when given, follow the body.
  int32_t request(const std::string& method, const std::string& path,
                  std::vector<std::pair<std::string, std::string>> extra = {},
                  const std::string* body = nullptr, bool end = true,
                  std::vector<std::pair<std::string, std::string>> trailers = {}) {
    std::vector<std::pair<std::string, std::string>> fields{{":method", method},
                                                            {":scheme", "http"}};
    bool host = false;
    for (const auto& [n, v] : extra)
      host |= n == "host";
    if (!host) fields.emplace_back(":authority", "localhost");  // else only host: says it
    fields.emplace_back(":path", path);
    fields.insert(fields.end(), extra.begin(), extra.end());
    std::vector<nghttp2_nv> nv = to_nv(fields);
    nghttp2_data_provider provider{};
    if (body) {
      Upload& u = uploads_.emplace_back();
      u.body = *body;
      u.end = end;
      u.trailers = std::move(trailers);
      provider.source.ptr = &u;
      provider.read_callback = [](nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                                  uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
        Upload& u = *static_cast<Upload*>(source->ptr);
        const size_t n = std::min(length, u.body.size());
        std::memcpy(buf, u.body.data(), n);
        u.body.erase(0, n);
        if (!u.body.empty()) return static_cast<ssize_t>(n);
        if (!u.trailers.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<nghttp2_nv> t = to_nv(u.trailers);
          nghttp2_submit_trailer(session, id, t.data(), t.size());
        } else if (u.end) {
          *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
          return NGHTTP2_ERR_DEFERRED;
        }
        return static_cast<ssize_t>(n);
      };
    }
    return nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                  body ? &provider : nullptr, nullptr);
  }
  std::string output() {
    std::string out;
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0)
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    return out;
  }
  void input(const std::string& bytes) {
    nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                             bytes.size());
  }

  std::map<int32_t, Answer> answers;
  int finished = 0;

 private:
  struct Upload {
    std::string body;
    bool end = true;
    std::vector<std::pair<std::string, std::string>> trailers;
  };
  static std::vector<nghttp2_nv> to_nv(std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> nv;
    for (auto& [n, v] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                    n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nv;
  }
  nghttp2_session* session_ = nullptr;
  std::list<Upload> uploads_;
};

class MockH2Connection : public ::testing::Test {
 protected:
  MockH2Connection() : server_(context_, owner_) {}

  // Client -> server -> client until neither has anything to say.
  void pump() {
    for (int i = 0; i < 20; ++i) {
      const std::string to_server = client_.output();
      server_.receive(to_server);
      std::string to_client;
      server_.send(&to_client, SIZE_MAX);
      client_.input(to_client);
      if (to_server.empty() && to_client.empty()) return;
    }
  }
  // Runs the worker's loop (the per-stream timers) for up to ms.
  void run_loop_until(const std::function<bool()>& done, int ms) {
    const int64_t end = net::now_ns() + ms * net::kNsPerMs;
    while (!done() && net::now_ns() < end) {
      loop_.run_once(5 * net::kNsPerMs);
      pump();
    }
  }

  MockConfig config_ = parse_mock_config(kYaml, "<test>");
  Router router_{config_};
  Prng prng_ = Prng::for_worker(7, 0);
  std::vector<std::atomic<uint64_t>> sequences_ = std::vector<std::atomic<uint64_t>>(8);
  TemplateRenderer renderer_{prng_, sequences_, config_.routes.size()};
  net::EventLoop loop_;
  CountingHost host_;
  H2Counters counters_;
  H2Options options_{true, 100, 1024, 64};
  H2Responses responses_{config_};
  H2Context context_{&config_, router_,   renderer_, prng_,      loop_,
                     host_,    counters_, options_,  &responses_};
  NoteWrites owner_;
  H2Connection server_;
  Client client_;
};

TEST_F(MockH2Connection, AnswersWithLowerCaseHeadersAndNoConnectionFields) {
  const int32_t id = client_.request("GET", "/fast");
  pump();
  const Answer& a = client_.answers[id];
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "fast\n");
  EXPECT_EQ(a.headers.at("x-mock"), "yes");
  EXPECT_EQ(a.headers.at("content-length"), "5");
  EXPECT_EQ(a.headers.count("keep-alive"), 0u);  // connection-specific: forbidden in HTTP/2
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(host_.requests(0), 1);
  EXPECT_EQ(counters_.h2_requests.load(), 1u);
}

TEST_F(MockH2Connection, DelayedStreamDoesNotHoldUpTheNextOne) {
  const int32_t slow = client_.request("GET", "/slow");
  const int32_t fast = client_.request("GET", "/fast");
  pump();
  // The fast answer is out while the slow one still waits for its timer.
  EXPECT_TRUE(client_.answers[fast].closed);
  EXPECT_FALSE(client_.answers[slow].closed);
  run_loop_until([&] { return client_.answers[slow].closed; }, 2000);
  EXPECT_EQ(client_.answers[slow].body, "slow\n");
  EXPECT_EQ(client_.answers[fast].order, 1);
  EXPECT_EQ(client_.answers[slow].order, 2);
  EXPECT_GE(owner_.wakeups, 1);  // the timer asked the owner to write
  EXPECT_EQ(counters_.max_concurrent_streams.load(), 2u);
}

TEST_F(MockH2Connection, InjectedResetClosesOnlyItsStream) {
  const int32_t reset = client_.request("GET", "/reset");
  const int32_t fast = client_.request("GET", "/fast");
  pump();
  EXPECT_EQ(client_.answers[reset].reset_code, static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR));
  EXPECT_EQ(client_.answers[reset].status, 0);
  EXPECT_EQ(client_.answers[fast].body, "fast\n");
  EXPECT_EQ((host_.counts[{3, static_cast<int>(H2Host::Count::kErrorReset)}]), 1);
  EXPECT_EQ(counters_.streams_reset.load(), 1u);
  EXPECT_FALSE(server_.finished());
}

TEST_F(MockH2Connection, TemplatesSeeTheRequest) {
  const std::string body = R"({"n":5})";
  const int32_t id = client_.request("POST", "/echo/ab?x=1", {{"user-agent", "unit"}}, &body);
  pump();
  const Answer& a = client_.answers[id];
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"id":"ab","n":5,"ua":"unit"})");
  EXPECT_EQ(a.headers.at("x-id"), "ab");
  EXPECT_EQ(a.headers.at("content-length"), std::to_string(a.body.size()));
}

TEST_F(MockH2Connection, ExpectContinueGetsA100BeforeTheAnswer) {
  const std::string body = R"({"n":1})";
  const int32_t id = client_.request("POST", "/echo/c", {{"expect", "100-continue"}}, &body);
  pump();
  EXPECT_EQ(client_.answers[id].statuses, (std::vector<int>{100, 200}));
  EXPECT_EQ(client_.answers[id].body, R"({"id":"c","n":1,"ua":""})");
}

TEST_F(MockH2Connection, HeadAndBodilessStatusesSendNoData) {
  const int32_t head = client_.request("HEAD", "/fast");
  const int32_t empty = client_.request("GET", "/empty");
  pump();
  EXPECT_EQ(client_.answers[head].status, 200);
  EXPECT_EQ(client_.answers[head].body, "");
  EXPECT_EQ(client_.answers[head].headers.at("content-length"), "5");
  EXPECT_EQ(client_.answers[empty].status, 204);
  EXPECT_EQ(client_.answers[empty].headers.count("content-length"), 0u);
}

TEST_F(MockH2Connection, StatsUnmatchedAndWebSocketPaths) {
  const int32_t stats = client_.request("GET", "/__millstone/stats");
  const int32_t none = client_.request("GET", "/none");
  const int32_t ws = client_.request("GET", "/ws");
  pump();
  EXPECT_EQ(client_.answers[stats].body, "{\"stats\":true}");
  EXPECT_EQ(client_.answers[none].status, 404);
  EXPECT_EQ(client_.answers[ws].status, 426);
  EXPECT_EQ(host_.requests(H2Host::kUnmatched), 1);
  EXPECT_EQ(counters_.h2_requests.load(), 2u);  // the stats page is not counted
}

TEST_F(MockH2Connection, OversizedHeadersAndBodiesAreMalformedRequests) {
  const int32_t big_headers = client_.request("GET", "/fast", {{"x-big", std::string(2000, 'a')}});
  const std::string big_body(100, 'b');
  const int32_t big_body_id = client_.request("POST", "/echo/1", {}, &big_body);
  const int32_t fine = client_.request("GET", "/fast");
  pump();
  EXPECT_EQ(client_.answers[big_headers].status, 400);
  EXPECT_EQ(client_.answers[big_body_id].status, 400);
  EXPECT_EQ(client_.answers[fine].status, 200);
  EXPECT_EQ(host_.requests(H2Host::kMalformed), 2);
}

TEST_F(MockH2Connection, GarbageGetsGoawayAndFinishes) {
  server_.receive(std::string(kH2Preface) + std::string(30, '\0'));
  std::string out;
  server_.send(&out, SIZE_MAX);
  EXPECT_TRUE(server_.finished());
  EXPECT_EQ(counters_.protocol_errors.load(), 1u);
  EXPECT_EQ(counters_.goaways.load(), 1u);
}

TEST_F(MockH2Connection, GoawayOnShutdownLetsOpenStreamsFinish) {
  const int32_t slow = client_.request("GET", "/slow");
  pump();
  server_.goaway();
  pump();
  EXPECT_EQ(counters_.goaways.load(), 1u);
  EXPECT_EQ(counters_.protocol_errors.load(), 0u);
  run_loop_until([&] { return client_.answers[slow].closed; }, 2000);
  EXPECT_EQ(client_.answers[slow].body, "slow\n");
}

TEST_F(MockH2Connection, BodyOverTheLimitIsAnsweredAtOnceAndItsStreamReset) {
  // 100 bytes against a 64-byte limit, and the request never ends: the 400
  // must not wait for an END_STREAM that does not come.
  const std::string big(100, 'b');
  const int32_t id = client_.request("POST", "/echo/1", {}, &big, /*end=*/false);
  pump();
  const Answer& a = client_.answers[id];
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.reset_code, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  EXPECT_EQ(host_.requests(H2Host::kMalformed), 1);
  EXPECT_FALSE(server_.finished());
}

TEST_F(MockH2Connection, StreamsPastTheConnectionsBufferBudgetAreRefused) {
  // Each open upload keeps 53 bytes of fields (name + value) and 60 of body;
  // the three header blocks come first (159), then the bodies: two fit in
  // 300, the third does not and its stream is refused; the first two stay open.
  options_.max_buffered_bytes = 300;
  const std::string body(60, 'x');
  const int32_t first = client_.request("POST", "/echo/1", {}, &body, false);
  const int32_t second = client_.request("POST", "/echo/2", {}, &body, false);
  const int32_t third = client_.request("POST", "/echo/3", {}, &body, false);
  pump();
  EXPECT_FALSE(client_.answers[first].closed);
  EXPECT_FALSE(client_.answers[second].closed);
  EXPECT_TRUE(client_.answers[third].closed);
  EXPECT_EQ(client_.answers[third].reset_code, static_cast<uint32_t>(NGHTTP2_REFUSED_STREAM));
}

TEST_F(MockH2Connection, TrailersAreNotRequestFields) {
  // A user-agent and an expect in the trailers: the template does not see
  // the first, and the second asks for no 100.
  const std::string body = "payload";
  const int32_t id = client_.request("POST", "/who", {}, &body, true,
                                     {{"user-agent", "trailer"}, {"expect", "100-continue"}});
  pump();
  const Answer& a = client_.answers[id];
  EXPECT_EQ(a.statuses, (std::vector<int>{200}));
  EXPECT_EQ(a.body, "ua= body=payload");
}

TEST_F(MockH2Connection, TemplatesSeeTheHostFieldAndOneJoinedCookie) {
  // No :authority, a host field instead; cookies split in fields (RFC 9113 8.2.3).
  const int32_t id = client_.request(
      "GET", "/who", {{"host", "example.test"}, {"cookie", "a=1"}, {"cookie", "b=2"}});
  pump();
  EXPECT_EQ(client_.answers[id].body, "host=example.test cookie=a=1; b=2");
}

}  // namespace h2_connection_test
}  // namespace millstone::mock
