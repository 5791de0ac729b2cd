// The control API: Toxiproxy's shapes and status codes (in process, through
// ControlApi and ApiSession), hostile input against the real process, and
// Toxiproxy's own npm client driving `millstone proxy`.
#include "proxy/api.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "net/event_loop.h"
#include "proxy/api_server.h"
#include "proxy/fault_proxy.h"

namespace millstone::proxy {
namespace api_test {

using nlohmann::json;

class ControlApiTest : public ::testing::Test {
 protected:
  ApiResponse call(std::string_view method, std::string_view path, std::string_view body = "") {
    return api_.handle({method, path, "test", body});
  }
  json call_json(std::string_view method, std::string_view path, std::string_view body = "",
                 int expected = 200) {
    ApiResponse r = call(method, path, body);
    EXPECT_EQ(r.status, expected) << method << " " << path << ": " << r.body;
    return r.body.empty() ? json() : json::parse(r.body);
  }
  void create_p() {
    call_json("POST", "/proxies", R"({"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"})",
              201);
  }

  net::EventLoop loop_;
  FaultProxy proxies_{loop_, FaultProxyOptions{.seed = 1, .open_listener = {}, .resolve = {}}};
  ControlApi api_{proxies_};
};

TEST_F(ControlApiTest, ProxyLifecycleWithToxiproxyShapes) {
  json created =
      call_json("POST", "/proxies",
                R"({"name":"redis","listen":"localhost:0","upstream":"127.0.0.1:6379"})", 201);
  EXPECT_EQ(created["name"], "redis");
  EXPECT_EQ(created["upstream"], "127.0.0.1:6379");
  EXPECT_EQ(created["enabled"], true);
  EXPECT_TRUE(created["toxics"].is_array());
  const std::string listen = created["listen"];
  EXPECT_EQ(listen.rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(listen, "127.0.0.1:0");  // the bound port

  json all = call_json("GET", "/proxies");
  ASSERT_TRUE(all.contains("redis"));
  EXPECT_EQ(all["redis"]["listen"], listen);

  json toxic = call_json("POST", "/proxies/redis/toxics",
                         R"({"type":"latency","attributes":{"latency":1000,"jitter":10}})");
  EXPECT_EQ(toxic["name"], "latency_downstream");
  EXPECT_EQ(toxic["stream"], "downstream");
  EXPECT_EQ(toxic["toxicity"], 1.0);
  EXPECT_EQ(toxic["attributes"]["latency"], 1000);
  EXPECT_EQ(toxic["attributes"]["jitter"], 10);

  json updated = call_json("POST", "/proxies/redis/toxics/latency_downstream",
                           R"({"attributes":{"latency":5}})");
  EXPECT_EQ(updated["attributes"]["latency"], 5);
  EXPECT_EQ(updated["attributes"]["jitter"], 10);  // a partial update keeps the rest
  json patched =
      call_json("PATCH", "/proxies/redis/toxics/latency_downstream", R"({"toxicity":0.5})");
  EXPECT_EQ(patched["toxicity"], 0.5);

  json listed = call_json("GET", "/proxies/redis/toxics");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(call_json("GET", "/proxies/redis/toxics/latency_downstream")["type"], "latency");
  EXPECT_EQ(call("DELETE", "/proxies/redis/toxics/latency_downstream").status, 204);
  EXPECT_EQ(call("DELETE", "/proxies/redis/toxics/latency_downstream").status, 404);

  json disabled = call_json("POST", "/proxies/redis", R"({"enabled":false})");
  EXPECT_EQ(disabled["enabled"], false);
  EXPECT_EQ(call("POST", "/reset").status, 204);
  EXPECT_EQ(call_json("GET", "/proxies/redis")["enabled"], true);
  EXPECT_EQ(call("DELETE", "/proxies/redis").status, 204);
  EXPECT_EQ(call("GET", "/proxies/redis").status, 404);
}

TEST_F(ControlApiTest, ErrorsAreToxiproxys) {
  create_p();
  json e = call_json("POST", "/proxies", R"({"name":"p","upstream":"127.0.0.1:9"})", 409);
  EXPECT_EQ(e["error"], "proxy already exists");
  EXPECT_EQ(e["status"], 409);
  EXPECT_EQ(call_json("POST", "/proxies", R"({"upstream":"127.0.0.1:9"})", 400)["error"],
            "missing required field: name");
  EXPECT_EQ(call_json("POST", "/proxies", R"({"name":"q"})", 400)["error"],
            "missing required field: upstream");
  EXPECT_EQ(call_json("GET", "/proxies/nope", "", 404)["error"], "proxy not found");
  EXPECT_EQ(call_json("GET", "/proxies/p/toxics/nope", "", 404)["error"], "toxic not found");
  EXPECT_EQ(call_json("POST", "/proxies/p/toxics", R"({"type":"latency","stream":"sideways"})",
                      400)["error"],
            "stream was invalid, can be either upstream or downstream");
  call_json("POST", "/proxies/p/toxics", R"({"type":"latency","stream":"UPSTREAM"})");
  EXPECT_EQ(call_json("POST", "/proxies/p/toxics", R"({"type":"latency","stream":"upstream"})",
                      409)["error"],
            "toxic already exists");
  EXPECT_EQ(call("PUT", "/proxies").status, 405);
  EXPECT_EQ(call("GET", "/nothing").status, 404);
  EXPECT_EQ(call("GET", "/proxies/p/extra").status, 404);
  EXPECT_EQ(api_.handle({"GET", "/proxies", "Mozilla/5.0 (X11)", ""}).status, 403);
}

// `millstone proxy --token-file`: a change without the token, or with
// another, is a 401 in Toxiproxy's error shape and changes nothing; reading
// stays open; with the token the change is made.
TEST_F(ControlApiTest, ATokenGuardsEveryChange) {
  api_.require_token("s3cret");
  const std::string body = R"({"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"})";
  for (const char* authorization :
       {"", "Bearer s3cre", "Bearer s3cret2", "bearer s3cret", "Basic s3cret", "Bearer  s3cret"}) {
    const ApiResponse r = api_.handle({"POST", "/proxies", "test", body, authorization});
    EXPECT_EQ(r.status, 401) << authorization;
    const json e = json::parse(r.body);
    EXPECT_EQ(e["status"], 401);
    EXPECT_EQ(e["error"],
              "changes need the proxy's --token-file token; expected a header "
              "Authorization: Bearer TOKEN");
  }
  for (const char* method : {"DELETE", "PATCH", "PUT"})
    EXPECT_EQ(api_.handle({method, "/proxies/p", "test", "", ""}).status, 401) << method;
  EXPECT_EQ(api_.handle({"POST", "/reset", "test", "", ""}).status, 401);
  EXPECT_EQ(call_json("GET", "/proxies"), json::object()) << "nothing was created";
  EXPECT_EQ(api_.handle({"POST", "/proxies", "test", body, "Bearer s3cret"}).status, 201);
  EXPECT_EQ(
      api_.handle({"POST", "/proxies/p/toxics", "test", R"({"type":"latency"})", "Bearer s3cret"})
          .status,
      200);
  EXPECT_EQ(call_json("GET", "/proxies/p/toxics").size(), 1u);
  EXPECT_EQ(
      api_.handle({"DELETE", "/proxies/p/toxics/latency_downstream", "test", "", "Bearer s3cret"})
          .status,
      204);
}

TEST_F(ControlApiTest, BadInputIsA400NamingTheField) {
  create_p();
  struct Case {
    const char* body;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "empty"},
           {"{", "not JSON"},
           {"[1,2]", "expected a JSON object"},
           {R"({"type":"latncy"})", "invalid toxic type: 'latncy'"},
           {R"({"type":"latency","attributes":{"latency":1.5}})", "attributes.latency"},
           {R"({"type":"latency","attributes":{"latency":"100"}})", "attributes.latency"},
           {R"({"type":"latency","attributes":{"latency":-1}})", "attributes.latency"},
           {R"({"type":"latency","attributes":{"latency":1e300}})", "attributes.latency"},
           {R"({"type":"latency","attributes":{"latency":99999999999999999999}})",
            "parsing a number"},
           {R"({"type":"latency","attributes":{"latency":9223372036854775807}})",
            "attributes.latency"},
           {R"({"type":"latency","attributes":[]})", "attributes must be an object"},
           {R"({"type":"latency","toxicity":"all"})", "toxicity"},
           {R"({"type":"latency","toxicity":7})", "toxicity"},
           {R"({"type":"slicer","attributes":{"average_size":0}})", "average_size"},
           {R"({"type":"slicer","attributes":{"average_size":5,"size_variation":5}})",
            "size_variation"},
           {R"({"type":"bandwidth","attributes":{"rate":-1}})", "rate"},
           {R"({"type":5})", "type must be a string"},
           {R"({"name":["x"],"type":"latency"})", "name must be a string"},
       }) {
    ApiResponse r = call("POST", "/proxies/p/toxics", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_NE(r.body.find(c.expected), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(call("POST", "/proxies", R"({"name":"x","upstream":"no-port"})").status, 400);
  EXPECT_EQ(call("POST", "/proxies", R"({"name":"x","upstream":"127.0.0.1:99999"})").status, 400);
  EXPECT_EQ(
      call("POST", "/proxies", R"({"name":"x","upstream":"127.0.0.1:1","enabled":"yes"})").status,
      400);
  EXPECT_EQ(call("POST", "/populate", R"({"name":"x"})").status, 400);
  EXPECT_EQ(call("POST", "/proxies/p/toxics/latency_downstream", "{}").status, 404);
  // Nothing was half-created on the way.
  EXPECT_TRUE(call_json("GET", "/proxies/p/toxics").empty());
}

TEST_F(ControlApiTest, PopulateCreatesKeepsAndReplaces) {
  json first = call_json("POST", "/populate",
                         R"([{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"},
                             {"name":"b","listen":"127.0.0.1:0","upstream":"127.0.0.1:2"}])",
                         201);
  ASSERT_EQ(first["proxies"].size(), 2u);
  const std::string a_listen = first["proxies"][0]["listen"];
  call_json("POST", "/proxies/a/toxics", R"({"type":"timeout"})");
  // Same listen and upstream: kept, toxics and all. Another upstream: replaced.
  json second = call_json(
      "POST", "/populate",
      json::array({{{"name", "a"}, {"listen", a_listen}, {"upstream", "127.0.0.1:1"}},
                   {{"name", "b"}, {"listen", "127.0.0.1:0"}, {"upstream", "127.0.0.1:3"}}})
          .dump(),
      201);
  EXPECT_EQ(second["proxies"][0]["toxics"].size(), 1u);
  EXPECT_EQ(second["proxies"][1]["upstream"], "127.0.0.1:3");
  json missing = call_json("POST", "/populate", R"([{"name":"c","upstream":"127.0.0.1:1"},
                                                    {"upstream":"127.0.0.1:1"}])",
                           400);
  EXPECT_EQ(missing["error"], "missing required field: name at proxy 2");
  EXPECT_EQ(call("GET", "/proxies/c").status, 404);
}

TEST_F(ControlApiTest, ListenInUseIs500WithGosMessageShape) {
  int port = 0;
  int taken = testing::listen_any(&port);
  json e = call_json("POST", "/proxies",
                     json{{"name", "x"},
                          {"listen", "127.0.0.1:" + std::to_string(port)},
                          {"upstream", "127.0.0.1:1"}}
                         .dump(),
                     500);
  EXPECT_EQ(e["error"],
            "listen tcp 127.0.0.1:" + std::to_string(port) + ": Address already in use");
  close(taken);
}

TEST_F(ControlApiTest, SessionHandlesPipeliningContinueAndLimits) {
  ApiSession session(api_);
  std::string out;
  // Two pipelined requests in one read, the second split across reads.
  const std::string both =
      "GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /proxies HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_TRUE(session.feed(both.data(), 40, &out));
  EXPECT_TRUE(session.feed(both.data() + 40, both.size() - 40, &out));
  EXPECT_NE(out.find("millstone-"), std::string::npos);
  EXPECT_EQ(out.find("HTTP/1.1 200 OK"), 0u);
  EXPECT_NE(out.find("HTTP/1.1 200 OK", 10), std::string::npos);
  out.clear();
  const std::string expect =
      "POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  EXPECT_TRUE(session.feed(expect.data(), expect.size(), &out));
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(session.feed("{}", 2, &out));
  EXPECT_NE(out.find("400 Bad Request"), std::string::npos);
  out.clear();
  const std::string huge = "POST /proxies HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n";
  EXPECT_FALSE(session.feed(huge.data(), huge.size(), &out));
  EXPECT_NE(out.find("413"), std::string::npos);
  EXPECT_NE(out.find("Connection: close"), std::string::npos);
  ApiSession garbage(api_);
  out.clear();
  EXPECT_FALSE(garbage.feed("\x01\x02 nonsense\r\n\r\n", 16, &out));
  EXPECT_NE(out.find("400"), std::string::npos);
}

// --- against the real process ---

using testing::http;
using testing::ProxyProcess;

TEST(ProxyApiHostile, GarbageNeverKillsTheServer) {
  ProxyProcess proxy;
  ASSERT_GT(proxy.api_port(), 0) << proxy.output();
  const int port = proxy.api_port();
  // Raw garbage, a header flood, a huge declared body, a slow half request.
  for (const std::string& raw :
       {std::string("\x16\x03\x01\x02\x00 TLS hello?\r\n\r\n"), std::string(100'000, 'A'),
        std::string("GET / HTTP/1.1\r\n") + std::string(70'000, 'h') + "\r\n\r\n",
        std::string("POST /proxies HTTP/1.1\r\nContent-Length: 5000000000\r\n\r\n"),
        std::string("POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        std::string("POST /proxies HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"na")}) {
    int fd = testing::connect_to(port);
    ASSERT_GE(fd, 0);
    testing::send_all(fd, raw);
    shutdown(fd, SHUT_WR);
    testing::ReadResult r = testing::read_until_end(fd);
    close(fd);
    if (!r.bytes.empty()) {
      const int status = std::atoi(r.bytes.c_str() + 9);
      EXPECT_GE(status, 400) << r.bytes.substr(0, 80);
      EXPECT_LT(status, 500) << r.bytes.substr(0, 80);
    }
  }
  // Deep nesting and a big (but allowed) body of nonsense.
  EXPECT_EQ(http(port, "POST", "/proxies", std::string(100'000, '[')).status, 400);
  EXPECT_EQ(http(port, "POST", "/populate", std::string(900'000, ' ') + "[]").status, 201);
  EXPECT_EQ(http(port, "POST", "/proxies", std::string(2'000'000, '{')).status, 413);
  EXPECT_EQ(http(port, "POST", "/proxies/%00%ff/toxics", R"({"type":"latency"})").status, 404);
  EXPECT_EQ(http(port, "GET", "/proxies", "", "User-Agent: Mozilla/5.0\r\n").status, 403);
  testing::HttpReply version = http(port, "GET", "/version");
  EXPECT_EQ(version.status, 200);
  EXPECT_NE(version.body.find("version"), std::string::npos);
  EXPECT_EQ(proxy.stop(), 0);
}

// Toxiproxy's npm client (toxiproxy-node-client, pinned in
// tests/interop/package.json) drives the proxy; the script checks every
// answer, and the proxy's own state shows what the client did.
TEST(ProxyApiInterop, ToxiproxyNodeClient) {
  if (system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const std::string module =
      std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/node_modules/toxiproxy-node-client";
  if (access(module.c_str(), R_OK) != 0) {
    GTEST_SKIP() << "run `npm ci` in tests/interop (scripts/install-deps.sh does)";
  }
  ProxyProcess proxy;
  ASSERT_GT(proxy.api_port(), 0) << proxy.output();
  int upstream_port = 0;
  int upstream = testing::listen_any(&upstream_port);
  const std::string log = "/tmp/millstone-toxiproxy-client-" + std::to_string(getpid()) + ".log";
  const std::string command =
      "timeout 60 node " + std::string(MILLSTONE_SOURCE_DIR) +
      "/tests/interop/toxiproxy_client.js http://127.0.0.1:" + std::to_string(proxy.api_port()) +
      " 127.0.0.1:" + std::to_string(upstream_port) + " > " + log + " 2>&1";
  const int status = system(command.c_str());
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unlink(log.c_str());
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0) << output;
  EXPECT_NE(output.find("toxiproxy-node-client: all steps passed"), std::string::npos) << output;
  // What the client left behind, read back from the proxy itself.
  testing::HttpReply state = http(proxy.api_port(), "GET", "/proxies/interop_kept");
  ASSERT_EQ(state.status, 200) << state.body;
  json kept = json::parse(state.body);
  ASSERT_EQ(kept["toxics"].size(), 1u);
  EXPECT_EQ(kept["toxics"][0]["type"], "bandwidth");
  EXPECT_EQ(kept["toxics"][0]["attributes"]["rate"], 64);
  EXPECT_EQ(http(proxy.api_port(), "GET", "/proxies/interop_removed").status, 404);
  close(upstream);
  EXPECT_EQ(proxy.stop(), 0);
}

}  // namespace api_test
}  // namespace millstone::proxy
