// The mock's control API (docs/mock.md#control-api) against the real binary
// with two workers. Which worker holds each client connection is read from
// the kernel (/proc/net/tcp and /proc/PID/fd), so a change is shown to reach
// both; what was served is checked against the mock's own stats and against
// the status and time each request saw here.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mock/control_client.h"
#include "support.h"

namespace millstone::testing {
namespace mock_control_test {

namespace control = mock::control;

const char* const kRoutes = R"(
routes:
  - path: /hello
    body: "hello\n"
  - path: /other
    body: "other\n"
)";

// One keep-alive HTTP/1.1 connection to the mock.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t length = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &length);
    local_port_ = ntohs(a.sin_port);
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  int local_port() const { return local_port_; }
  int fd() const { return fd_; }

  // GET path; the status (0: no answer within 5 s) and the time it took.
  int get(const std::string& path, double* elapsed_ms = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n";
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size()))
      return 0;
    std::string in;
    for (;;) {
      const size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        const size_t cl = in.find("Content-Length: ");
        const size_t body = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + body) break;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return 0;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return 0;
      in.append(buffer, static_cast<size_t>(n));
    }
    if (elapsed_ms) {
      *elapsed_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
    }
    return std::stoi(in.substr(9, 3));
  }

 private:
  int fd_ = -1;
  int local_port_ = 0;
};

// The process holding the server side of the connection from client_port
// to server_port: its socket's inode from /proc/net/tcp, then the process
// whose descriptors include it. 0 when not found.
pid_t server_side_owner(int server_port, int client_port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  std::string inode;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, node;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> node;
    const int lport = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
    const int rport = std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16);
    if (lport == server_port && rport == client_port) {
      inode = node;
      break;
    }
  }
  if (inode.empty()) return 0;
  const std::string target = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  pid_t owner = 0;
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    const std::string fd_dir = "/proc/" + std::string(entry->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* fd = readdir(fds)) {
      char link[64] = {};
      const std::string path = fd_dir + "/" + fd->d_name;
      if (readlink(path.c_str(), link, sizeof link - 1) > 0 && target == link) owner = pid;
    }
    closedir(fds);
    if (owner) break;
  }
  closedir(proc);
  return owner;
}

// Keep-alive connections spread over both workers, with the worker of each.
struct Spread {
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<pid_t> owners;
};

Spread connect_to_both_workers(int port) {
  Spread s;
  std::set<pid_t> seen;
  for (int i = 0; i < 40 && (seen.size() < 2 || s.clients.size() < 4); ++i) {
    auto client = std::make_unique<Client>(port);
    if (client->get("/other") != 200) continue;  // answered: accepted by a worker
    const pid_t owner = server_side_owner(port, client->local_port());
    if (owner == 0) continue;
    seen.insert(owner);
    s.owners.push_back(owner);
    s.clients.push_back(std::move(client));
  }
  return s;
}

const nlohmann::json& route_stats(const nlohmann::json& stats, const std::string& name) {
  for (const auto& r : stats["routes"])
    if (r["name"] == name) return r;
  static const nlohmann::json none;
  return none;
}

TEST(MockControl, PatchesReachBothWorkers) {
  MockServer mock(kRoutes, 2);
  Spread s = connect_to_both_workers(mock.port());
  ASSERT_EQ(std::set<pid_t>(s.owners.begin(), s.owners.end()).size(), 2u)
      << "could not get connections on both workers";
  const uint64_t before = route_stats(mock.stats(), "GET /hello")["requests"];

  // Status and latency: every later request, on either worker, sees both.
  control::Result r = control::apply("127.0.0.1", mock.port(), "GET /hello",
                                     R"({"status": 503, "latency": "150ms"})");
  ASSERT_TRUE(r.ok) << r.error;
  const nlohmann::json answer = nlohmann::json::parse(r.body);
  EXPECT_EQ(answer["workers"], 2);
  EXPECT_EQ(answer["route"]["status"], 503);
  EXPECT_EQ(answer["route"]["latency"]["value_us"], 150000);
  for (auto& client : s.clients) {
    double ms = 0;
    EXPECT_EQ(client->get("/hello", &ms), 503);
    EXPECT_GE(ms, 150.0);                   // a lower bound: the mock cannot answer earlier
    EXPECT_EQ(client->get("/other"), 200);  // other routes untouched
  }
  EXPECT_EQ(route_stats(mock.stats(), "GET /hello")["requests"], before + s.clients.size());

  // An error rate: the 500s seen here are the mock's own count, on both workers.
  r = control::apply(
      "127.0.0.1", mock.port(), "GET /hello",
      R"({"status": null, "latency": null, "errors": [{"rate": "50%", "status": 500}]})");
  ASSERT_TRUE(r.ok) << r.error;
  const uint64_t errors_before = route_stats(mock.stats(), "GET /hello")["error_status"];
  constexpr int kRequests = 400;
  int errors = 0;
  std::map<pid_t, std::set<int>> statuses;
  for (int i = 0; i < kRequests; ++i) {
    const size_t c = static_cast<size_t>(i) % s.clients.size();
    const int status = s.clients[c]->get("/hello");
    ASSERT_TRUE(status == 200 || status == 500) << status;
    errors += status == 500;
    statuses[s.owners[c]].insert(status);
  }
  const nlohmann::json stats = route_stats(mock.stats(), "GET /hello");
  EXPECT_EQ(stats["error_status"].get<uint64_t>() - errors_before, static_cast<uint64_t>(errors));
  // Binomial(400, 0.5): the standard deviation is 10; 6 of them either way.
  EXPECT_GT(errors, 140);
  EXPECT_LT(errors, 260);
  for (const auto& [owner, seen] : statuses)
    EXPECT_EQ(seen, (std::set<int>{200, 500})) << "worker " << owner;

  // Back to the file's config.
  r = control::reset("127.0.0.1", mock.port(), "GET /hello");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(nlohmann::json::parse(r.body)["route"]["changed"], nlohmann::json::array());
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(s.clients[static_cast<size_t>(i) % s.clients.size()]->get("/hello"), 200);
  EXPECT_EQ(route_stats(mock.stats(), "GET /hello")["error_status"], stats["error_status"]);
}

// A request already delayed when the route changes finishes as it began
// (its answer lives in the worker's old route table, kept alive for it);
// the next one meets the change. Over HTTP/2 too.
TEST(MockControl, DelayedAnswerOutlivesTheChange) {
  MockServer mock(kRoutes, 1);
  ASSERT_TRUE(control::apply("127.0.0.1", mock.port(), "GET /hello", R"({"latency": "300ms"})").ok);
  Client slow(mock.port());
  const std::string request = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(send(slow.fd(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  // Wait (bounded) until the mock has the request, then change the route.
  for (int i = 0; i < 200 && route_stats(mock.stats(), "GET /hello")["requests"] == 0; ++i)
    usleep(5000);
  ASSERT_EQ(route_stats(mock.stats(), "GET /hello")["requests"], 1);
  ASSERT_TRUE(
      control::apply("127.0.0.1", mock.port(), "GET /hello", R"({"status": 500, "latency": null})")
          .ok);
  std::string in;
  while (in.find("hello\n") == std::string::npos) {
    pollfd p{slow.fd(), POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 5000), 0) << in;
    char buffer[512];
    const ssize_t n = recv(slow.fd(), buffer, sizeof buffer, 0);
    ASSERT_GT(n, 0) << in;
    in.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(in.substr(0, 12), "HTTP/1.1 200") << in;
  EXPECT_EQ(slow.get("/hello"), 500);
  EXPECT_EQ(
      shell("curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge http://127.0.0.1:" +
            std::to_string(mock.port()) + "/hello"),
      "500");
  // The control API itself over HTTP/2.
  const std::string answer = shell(
      "curl -s --http2-prior-knowledge -X PATCH -d '{\"status\": 404}' "
      "http://127.0.0.1:" +
      std::to_string(mock.port()) + "/__millstone/routes/GET%20%2Fhello");
  EXPECT_EQ(nlohmann::json::parse(answer)["route"]["status"], 404) << answer;
  EXPECT_EQ(http_request(mock.port(), "GET", "/hello").status, 404);
}

TEST(MockControl, InvalidPatchesAreRejectedWithTheField) {
  MockServer mock(kRoutes, 2);
  HttpResponse r = http_request(mock.port(), "PATCH", "/__millstone/routes/GET%20%2Fhello",
                                R"({"latency": "20"})");
  EXPECT_EQ(r.status, 400);
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["field"], "latency");
  EXPECT_EQ(j["error"],
            "body:1:13: latency \"20\" has no unit; expected a number and a unit, such as 20ms, "
            "1.5s, 250us or 2m");

  control::Result c = control::apply("127.0.0.1", mock.port(), "GET /hello",
                                     R"({"errors": [{"rate": 0.1, "staus": 503}]})");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.status, 400);
  EXPECT_NE(c.error.find("unknown key \"staus\" in error rule (did you mean \"status\"?)"),
            std::string::npos)
      << c.error;
  EXPECT_NE(c.error.find("(field errors)"), std::string::npos) << c.error;

  c = control::apply("127.0.0.1", mock.port(), "GET /nope", "{}");
  EXPECT_EQ(c.status, 404);
  c = control::request("127.0.0.1", mock.port(), "PUT", "/__millstone/routes/GET%20%2Fhello", "{}");
  EXPECT_EQ(c.status, 405);

  // Nothing changed.
  j = nlohmann::json::parse(http_get(mock.port(), "/__millstone/routes"));
  EXPECT_EQ(j["generation"], 0);
  EXPECT_EQ(j["routes"][0]["changed"], nlohmann::json::array());
  EXPECT_EQ(http_request(mock.port(), "GET", "/hello").status, 200);
}

TEST(MockControl, TokenGuardsChanges) {
  MockServer mock(kRoutes, 1, {"--control-token", "s3cret"});
  control::Result r = control::apply("127.0.0.1", mock.port(), "GET /hello", R"({"status": 500})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.error.find("--control-token"), std::string::npos) << r.error;
  control::Options wrong;
  wrong.token = "s3creT";
  EXPECT_EQ(
      control::apply("127.0.0.1", mock.port(), "GET /hello", R"({"status": 500})", wrong).status,
      401);
  EXPECT_EQ(http_request(mock.port(), "GET", "/hello").status, 200);
  // Reading needs no token.
  EXPECT_EQ(http_request(mock.port(), "GET", "/__millstone/routes").status, 200);
  control::Options right;
  right.token = "s3cret";
  r = control::apply("127.0.0.1", mock.port(), "GET /hello", R"({"status": 500})", right);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(http_request(mock.port(), "GET", "/hello").status, 500);
  EXPECT_TRUE(control::reset_all("127.0.0.1", mock.port(), right).ok);
  EXPECT_EQ(http_request(mock.port(), "GET", "/hello").status, 200);
}

TEST(MockControl, ClientSaysWhenNothingListens) {
  int port = 0;
  close(listen_loopback(&port));
  const control::Result r = control::apply("127.0.0.1", static_cast<uint16_t>(port), "x", "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("cannot connect"), std::string::npos) << r.error;
}

TEST(MockControl, PushIntervalOfATcpRoute) {
  int tcp_port = 0;
  close(listen_loopback(&tcp_port));
  const std::string yaml = std::string(kRoutes) + "tcp:\n  - name: ticks\n    listen: 127.0.0.1:" +
                           std::to_string(tcp_port) + "\n    push: {every: 1h, message: tick}\n";
  MockServer mock(yaml, 2);
  Client ticks(tcp_port);
  control::Options socket;
  socket.socket_route = true;
  const control::Result r =
      control::apply("127.0.0.1", mock.port(), "ticks", R"({"push": {"every": "10ms"}})", socket);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(nlohmann::json::parse(r.body)["socket"]["push"]["every_us"], 10000);
  // With the file's hour, no tick would come; wait (bounded) for five.
  std::string in;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::count(in.begin(), in.end(), '\n') < 5 && std::chrono::steady_clock::now() < give_up) {
    char buffer[256];
    pollfd p{ticks.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      const ssize_t n = recv(ticks.fd(), buffer, sizeof buffer, 0);
      if (n <= 0) break;
      in.append(buffer, static_cast<size_t>(n));
    }
  }
  EXPECT_GE(std::count(in.begin(), in.end(), '\n'), 5) << in;
  EXPECT_GE(mock.stats()["sockets"][0]["pushes"].get<uint64_t>(), 5u);
}

}  // namespace mock_control_test
}  // namespace millstone::testing
