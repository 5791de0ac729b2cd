// `millstone amqp` against a real RabbitMQ (Debian's rabbitmq-server),
// started here on private ports with its data, logs, node name and epmd
// under a temporary directory. What millstone reports is checked against the
// broker's own queue depth (rabbitmqctl list_queues). Booting the broker
// costs about 10 s, so one test starts it once and runs every step on it.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "amqp/session.h"
#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace amqp_test {

constexpr const char* kBrokerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
constexpr const char* kCtlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl";
constexpr const char* kEpmd = "/usr/bin/epmd";

// A child in its own session (process group), so the group can be killed
// with everything the broker's scripts start; stdout and stderr to `log`.
pid_t spawn_group(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

void kill_group(pid_t pid) {
  if (pid <= 0) return;
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool wait_port(int port, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (wait_listening(port)) return true;  // tries for up to 2 s itself
  }
  return false;
}

class Broker {
 public:
  Broker() {
    dir_ = temp_dir();
    port_ = free_port();
    tls_port_ = free_port();
    // A TLS listener beside the plain one, with a self-signed certificate
    // for 127.0.0.1 (the broker reads its configuration once, at boot).
    shell(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
        dir_ + "/key.pem -out " + dir_ + "/cert.pem 2>/dev/null");
    std::ofstream(dir_ + "/rabbitmq.conf")
        << "listeners.ssl.default = 127.0.0.1:" << tls_port_ << "\n"
        << "ssl_options.cacertfile = " << dir_ << "/cert.pem\n"
        << "ssl_options.certfile = " << dir_ << "/cert.pem\n"
        << "ssl_options.keyfile = " << dir_ << "/key.pem\n"
        << "ssl_options.verify = verify_none\n"
        << "ssl_options.fail_if_no_peer_cert = false\n";
    epmd_port_ = free_port();
    const int dist_port = free_port();
    node_ = "millstone" + std::to_string(getpid()) + "@localhost";
    std::ofstream(dir_ + "/enabled_plugins") << "[].\n";
    // Every variable the scripts read, so nothing of a system broker is used.
    setenv("HOME", dir_.c_str(), 1);  // the Erlang cookie goes here
    setenv("ERL_EPMD_PORT", std::to_string(epmd_port_).c_str(), 1);
    setenv("RABBITMQ_NODENAME", node_.c_str(), 1);
    setenv("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1", 1);
    setenv("RABBITMQ_NODE_PORT", std::to_string(port_).c_str(), 1);
    setenv("RABBITMQ_DIST_PORT", std::to_string(dist_port).c_str(), 1);
    setenv("RABBITMQ_MNESIA_BASE", (dir_ + "/mnesia").c_str(), 1);
    setenv("RABBITMQ_LOG_BASE", (dir_ + "/log").c_str(), 1);
    setenv("RABBITMQ_PID_FILE", (dir_ + "/pid").c_str(), 1);
    setenv("RABBITMQ_ENABLED_PLUGINS_FILE", (dir_ + "/enabled_plugins").c_str(), 1);
    setenv("RABBITMQ_CONFIG_FILE", (dir_ + "/rabbitmq").c_str(), 1);
    setenv("RABBITMQ_ADVANCED_CONFIG_FILE", (dir_ + "/advanced.config").c_str(), 1);
    setenv("RABBITMQ_CONF_ENV_FILE", (dir_ + "/rabbitmq-env.conf").c_str(), 1);
    const auto begin = std::chrono::steady_clock::now();
    // Our own epmd in the foreground (a broker's would daemonize and outlive the test).
    epmd_ = spawn_group({kEpmd, "-port", std::to_string(epmd_port_)}, dir_ + "/epmd.log");
    if (!wait_port(epmd_port_, 5)) return;
    broker_ = spawn_group({kBrokerScript}, dir_ + "/broker.log");
    ready_ = wait_port(port_, 40);
    start_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  }
  ~Broker() {
    kill_group(broker_);
    kill_group(epmd_);
  }

  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string tls_url() const { return "amqps://127.0.0.1:" + std::to_string(tls_port_) + "/"; }
  std::string certificate() const { return dir_ + "/cert.pem"; }
  // SIGTERM to the broker's group: Erlang stops RabbitMQ in order, which
  // closes client connections with 320 CONNECTION_FORCED.
  void stop() const { kill(-broker_, SIGTERM); }
  double start_s() const { return start_s_; }
  std::string url(const std::string& user = "guest", const std::string& password = "guest") const {
    return "amqp://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/";
  }
  std::string log() const { return shell("tail -20 " + dir_ + "/broker.log"); }
  // `rabbitmqctl list_queues name COLUMNS`: a line per queue, tab-separated.
  std::string queues(const std::string& columns) const {
    return shell(std::string(kCtlScript) + " -q -n " + node_ + " list_queues name " + columns +
                 " 2>/dev/null");
  }
  // Client logins so far, by the broker's own log.
  int logins() const {
    return std::stoi("0" + shell("cat " + dir_ +
                                 "/log/*.log 2>/dev/null | grep -c "
                                 "'authenticated and granted access'"));
  }

  // The broker's own count of messages ready and unacknowledged in `queue`; -1 if unknown.
  long long queue_depth(const std::string& queue) const {
    const std::string out = queues("messages");
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      const size_t tab = line.find('\t');
      if (tab != std::string::npos && line.substr(0, tab) == queue) {
        return std::stoll(line.substr(tab + 1));
      }
    }
    return -1;
  }

 private:
  std::string dir_;
  std::string node_;
  int port_ = 0;
  int tls_port_ = 0;
  int epmd_port_ = 0;
  pid_t epmd_ = -1;
  pid_t broker_ = -1;
  bool ready_ = false;
  double start_s_ = 0;
};

// The test's own service for scenario pipelines: consumes `in`, and
// publishes each message's correlation id to `exchange` with its reply_to
// (else `key`) as the routing key exactly
// `delay` after it arrived (its own monotonic clock), so the end-to-end
// latency millstone measures has a known floor. Every `drop_every`-th
// message is dropped (a lost message: the expect must time out) and every
// `duplicate_every`-th of the first `duplicate_before` is answered twice
// (the copy finds no waiter: unmatched). Counts are the service's own.
class DelayService final : private amqp::SessionListener {
 public:
  struct Options {
    int port = 0;
    std::string in, exchange, key;
    std::chrono::nanoseconds delay{0};
    int drop_every = 0;
    int duplicate_every = 0;
    int duplicate_before = 0;
  };
  explicit DelayService(Options o) : o_(std::move(o)), session_(options_, *this) {}
  ~DelayService() override { stop(); }

  bool start() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o_.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    session_.start(now());
    write_out();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!consuming_ && !failed_ && std::chrono::steady_clock::now() < deadline)
      step(20'000'000);
    if (!consuming_) return false;
    thread_ = std::thread([this] {
      while (!stop_.load() && !failed_)
        step(5'000'000);
    });
    return true;
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int received() const { return received_; }
  int published() const { return published_; }
  int dropped() const { return dropped_; }
  int duplicated() const { return duplicated_; }

 private:
  struct Due {
    int64_t at_ns;
    std::string correlation_id;
    std::string routing_key;
    std::string body;
  };
  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // Waits for bytes or the next due answer (at most `max_wait_ns`), then
  // publishes what is due.
  void step(int64_t max_wait_ns) {
    int64_t wait = max_wait_ns;
    if (!due_.empty()) wait = std::clamp<int64_t>(due_.front().at_ns - now(), 0, max_wait_ns);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    pollfd p{fd_, POLLIN, 0};
    if (ppoll(&p, 1, &ts, nullptr) > 0) {
      char buf[65536];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        failed_ = true;
        return;
      }
      in_.append(buf, static_cast<size_t>(n));
      in_.erase(0, session_.on_read(in_, now()));
    }
    while (!due_.empty() && due_.front().at_ns <= now()) {
      amqp::BasicProperties props;
      props.correlation_id = due_.front().correlation_id;
      session_.publish(o_.exchange, due_.front().routing_key, false, props, due_.front().body);
      ++published_;
      due_.pop_front();
    }
    session_.tick(now());
    write_out();
  }
  void write_out() {
    std::string& out = session_.output();
    size_t at = 0;
    while (at < out.size()) {
      const ssize_t n = send(fd_, out.data() + at, out.size() - at, MSG_NOSIGNAL);
      if (n <= 0) {
        failed_ = true;
        break;
      }
      at += static_cast<size_t>(n);
    }
    out.clear();
  }
  void on_open(amqp::Session& s) override {
    amqp::ExchangeDeclare e;
    e.exchange = o_.exchange;
    s.declare_exchange(e);
    amqp::QueueDeclare q;
    q.queue = o_.in;
    s.declare_queue(q);
    amqp::BasicConsume c;
    c.queue = o_.in;
    c.no_ack = true;
    s.consume(c);
  }
  void on_reply(amqp::Session& s, const amqp::ServerMethod&) override {
    if (s.pending_calls() == 0) consuming_ = true;
  }
  void on_confirm(amqp::Session&, uint64_t, bool, bool) override {}
  void on_delivery(amqp::Session&, const amqp::Delivery& d) override {
    const int64_t at = now() + o_.delay.count();
    ++received_;
    if (o_.drop_every > 0 && received_ % o_.drop_every == 0) {
      ++dropped_;
      return;
    }
    const std::string id = d.properties->correlation_id.value_or("");
    const std::string key = d.properties->reply_to.value_or(o_.key);
    due_.push_back({at, id, key, std::string(d.body)});
    if (o_.duplicate_every > 0 && received_ % o_.duplicate_every == 3 &&
        received_ < o_.duplicate_before) {
      due_.push_back({at, id, key, std::string(d.body)});
      ++duplicated_;
    }
  }
  void on_return(amqp::Session&, const amqp::ServerMethod&) override {}
  void on_blocked(amqp::Session&, bool) override {}
  void on_failed(amqp::Session&, amqp::Failure, uint16_t, std::string_view) override {
    failed_ = true;
  }
  void on_closed(amqp::Session&) override { failed_ = true; }

  Options o_;
  amqp::SessionOptions options_;
  amqp::Session session_;
  int fd_ = -1;
  std::string in_;
  std::deque<Due> due_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool consuming_ = false;
  bool failed_ = false;
  int received_ = 0, published_ = 0, dropped_ = 0, duplicated_ = 0;
};

// The mock closes the loop (docs/mock.md#amqp): examples/orders-async.yaml
// against examples/orders-async-mock.yaml (two workers) and the broker.
// Each POST publishes a "processed" event after a drawn processing time; a
// tenth go through the retry queue first (a TTL, then dead-lettered back to
// the mock); each worker consumes its own queue and pushes to the
// WebSocket whose ?user= matches. The mock's own counts (published,
// pushed) equal what the scenario received, every retried order shows a
// latency of at least the TTL, and the broker's queues end empty.
void mock_closes_the_loop(const Broker& broker) {
  const std::string examples = std::string(MILLSTONE_SOURCE_DIR) + "/examples/";
  std::ifstream in(examples + "orders-async-mock.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  yaml = std::regex_replace(yaml, std::regex("amqp://guest:guest@127\\.0\\.0\\.1:5672/"),
                            broker.url());
  ASSERT_NE(yaml.find(broker.url()), std::string::npos);
  constexpr double kTtlMs = 1000;  // the example's message_ttl
  ASSERT_NE(yaml.find("message_ttl: 1s"), std::string::npos);
  MockServer mock(yaml, 2);
  // Both workers connected, declared and consuming before the first order.
  nlohmann::json stats;
  for (int i = 0; i < 250; ++i) {
    stats = mock.stats();
    if (stats["amqp"]["connected"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(stats["amqp"]["connected"], 2) << stats.dump();
  const std::string out = temp_dir() + "/orders-async.json";
  const auto began = std::chrono::steady_clock::now();
  // The example as shipped, 2 s instead of 20 s (50 orders a second).
  const ProcessResult run = run_millstone({"run", examples + "orders-async.yaml", "--target",
                                           mock.url(""), "-d", "2s", "-q", "-o", out},
                                          60);
  const double took_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const nlohmann::json j = read_json(out);
  stats = mock.stats();
  const nlohmann::json& amqp = stats["amqp"];
  nlohmann::json processed, place;
  for (const nlohmann::json& step : j["steps"]) {
    if (step["name"] == "order/processed") processed = step;
    if (step["name"] == "order/place order") place = step;
  }
  ASSERT_TRUE(processed.is_object()) << j["steps"].dump();
  const int orders = place["requests"];
  const int received = processed["requests"];
  EXPECT_GE(orders, 90);
  EXPECT_EQ(stats["routes"][0]["requests"], orders);  // the mock's own count
  EXPECT_EQ(received, orders) << j["errors"].dump();
  EXPECT_EQ(j["error_total"], 0) << j["errors"].dump();
  EXPECT_EQ(amqp["published"], received) << amqp.dump();
  EXPECT_EQ(amqp["pushed"], received) << amqp.dump();
  EXPECT_EQ(stats["sockets"][0]["messages_out"], received);
  // Every worker's queue gets every event; only the worker holding the
  // user's connection pushes it.
  EXPECT_EQ(amqp["consumed"], 2 * received) << amqp.dump();
  EXPECT_EQ(amqp["not_pushed"], received) << amqp.dump();
  EXPECT_EQ(amqp["publish_failed"], 0);
  EXPECT_EQ(amqp["unroutable"], 0);
  const int retried = amqp["retried"];
  EXPECT_EQ(amqp["returned"], retried);
  EXPECT_GT(retried, 0);
  EXPECT_LT(retried, orders / 3);
  // The retried share waited at least the TTL: the sum of all latencies
  // holds `retried` TTLs, the slowest order waited one, the median none.
  const nlohmann::json& latency = processed["latency_ms"];
  std::printf(
      "mock loop: %d orders, %d retried; end-to-end p50 %.1f ms p99 %.1f ms max %.1f ms; "
      "run %.1f s\n",
      orders, retried, latency["p50"].get<double>(), latency["p99"].get<double>(),
      latency["max"].get<double>(), took_s);
  EXPECT_GE(latency["mean"].get<double>() * received, retried * kTtlMs);
  EXPECT_GE(latency["max"].get<double>(), kTtlMs);
  EXPECT_LT(latency["p50"].get<double>(), kTtlMs);
  EXPECT_EQ(broker.queue_depth("orders.retry"), 0);
  EXPECT_EQ(broker.queue_depth("orders.retry.due"), 0);
}

TEST(AmqpBroker, CountsMatchTheBrokersAndRefusalsAreClassified) {
  if (access(kBrokerScript, X_OK) != 0 || access(kEpmd, X_OK) != 0) {
    GTEST_SKIP() << "rabbitmq-server is not installed (scripts/install-deps.sh installs it)";
  }
  Broker broker;
  ASSERT_TRUE(broker.ready()) << "the broker did not listen within 40 s:\n" << broker.log();
  std::printf("rabbitmq-server started in %.1f s\n", broker.start_s());
  const std::string dir = temp_dir();

  // 1. Publishers only: every confirmed message is in the queue, by the broker's count.
  const std::string first = dir + "/publish.json";
  ProcessResult run =
      run_millstone({"amqp", broker.url(), "--publishers", "2", "--consumers", "0", "--rate",
                     "2000", "--size", "100", "-d", "1s", "--queue", "itq", "-o", first},
                    30);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = read_json(first);
  const long long published = j["published"];
  EXPECT_GT(published, 1000);
  EXPECT_EQ(j["confirmed"], published);
  EXPECT_EQ(j["unconfirmed"], 0);
  EXPECT_EQ(j["error_total"], 0) << j["error_samples"];
  EXPECT_EQ(j["confirm_latency_ms"]["count"], published);
  EXPECT_EQ(j["broker"]["product"], "RabbitMQ");
  EXPECT_EQ(broker.queue_depth("itq"), published);

  // 2. Both: consumers drain the backlog (not timed: another run's messages)
  // and this run's messages; what is left is the broker's depth.
  const std::string second = dir + "/both.json";
  run = run_millstone({"amqp", broker.url(), "--publishers", "1", "--consumers", "2", "--rate",
                       "1000", "-d", "1s", "--queue", "itq", "--prefetch", "50", "-o", second},
                      30);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  j = read_json(second);
  const long long published2 = j["published"];
  const long long consumed = j["consumed"];
  EXPECT_EQ(j["confirmed"], published2);
  EXPECT_GT(consumed, published);
  EXPECT_EQ(j["foreign"], published);  // the first run's messages, consumed but not timed
  EXPECT_EQ(j["latency_ms"]["count"], consumed - published);
  EXPECT_EQ(j["error_total"], 0) << j["error_samples"];
  EXPECT_EQ(broker.queue_depth("itq"), published + published2 - consumed);

  // 3. A wrong password is a classified refusal, and the run measured nothing.
  run = run_millstone(
      {"amqp", broker.url("guest", "wrong"), "-d", "1s", "--queue", "itq", "-o", "-"}, 30);
  EXPECT_EQ(run.exit_code, 6) << run.out << run.err;
  j = nlohmann::json::parse(run.out);
  EXPECT_GE(j["errors"]["auth_failed"].get<int>(), 1) << j.dump();
  EXPECT_EQ(j["connections_ready"], 0);

  // 4. amqps: verified against the broker's certificate, it runs like plain
  // AMQP; without that CA the certificate is untrusted, a classified TLS
  // failure with its own exit code.
  run = run_millstone({"amqp", broker.tls_url(), "--cacert", broker.certificate(), "-d", "500ms",
                       "--rate", "200", "--queue", "tlsq", "-o", "-"},
                      30);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  j = nlohmann::json::parse(run.out);
  EXPECT_GT(j["confirmed"].get<int>(), 0);
  EXPECT_EQ(j["consumed"], j["confirmed"]);
  EXPECT_EQ(j["error_total"], 0) << j["error_samples"];
  run = run_millstone({"amqp", broker.tls_url(), "-d", "500ms", "--queue", "tlsq", "-o", "-"}, 30);
  EXPECT_EQ(run.exit_code, 8) << run.out << run.err;
  j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["errors"]["tls_certificate_untrusted"], 2) << j["errors"].dump();

  // 5. A scenario pipeline: VUs publish with {{ corr }} as the correlation
  // id; the test's service answers each exactly 20 ms later on a bound queue;
  // amqp.expect waits for the answer on its worker's own queue (two workers,
  // reply_to names the queue's binding). Counts are the service's own; the
  // end-to-end p50 sits within 3 ms above the service's delay. Every 25th
  // message is dropped (a message_timeout) and a few are answered twice
  // (duplicate_message, told apart from unmatched_message).
  {
    constexpr int kIterations = 200;
    DelayService service(
        {broker.port(), "pl.in", "pl.out", "done", std::chrono::milliseconds(20), 25, 20, 150});
    ASSERT_TRUE(service.start());
    const std::string scenario = dir + "/pipeline.yaml";
    std::ofstream(scenario) << "target: http://127.0.0.1:9\n"
                            << "amqp:\n  url: " << broker.url() << "\n"
                            << R"(  exchanges: [{name: pl.out}]
  queues:
    - {name: pl.in}
    - {name: "pl.done.{{ worker }}", bind: {exchange: pl.out, routing_key: "done.{{ worker }}"}}
flows:
  order:
    steps:
      - name: publish
        amqp.publish: {routing_key: pl.in, correlation_id: "{{ corr }}", reply_to: "done.{{ worker }}", body: '{"order": "{{ corr }}"}'}
      - name: processed
        amqp.expect: {queue: "pl.done.{{ worker }}", correlation_id: "{{ corr }}", contains: '"order"', timeout: 300ms}
scenarios:
  main: {executor: iterations, vus: 4, iterations: )"
                            << kIterations << "}\n";
    const std::string out = dir + "/pipeline.json";
    const auto began = std::chrono::steady_clock::now();
    run = run_millstone({"run", scenario, "-w", "2", "-q", "-o", out}, 30);
    const double took_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    service.stop();
    ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 99) << run.out << run.err;
    j = read_json(out);
    ASSERT_EQ(j["steps"].size(), 2u) << j.dump();
    const nlohmann::json& publish = j["steps"][0];
    const nlohmann::json& processed = j["steps"][1];
    EXPECT_EQ(publish["name"], "order/publish");
    EXPECT_EQ(processed["name"], "order/processed");
    EXPECT_EQ(service.received(), kIterations);  // the service's own count
    EXPECT_EQ(publish["requests"], kIterations);
    EXPECT_EQ(service.dropped(), kIterations / 25);
    EXPECT_EQ(processed["requests"].get<int>(), kIterations - service.dropped()) << processed;
    EXPECT_EQ(j["errors"]["message_timeout"], service.dropped()) << j["errors"].dump();
    EXPECT_GT(service.duplicated(), 0);
    EXPECT_EQ(j["errors"].value("duplicate_message", 0), service.duplicated())
        << j["errors"].dump();
    EXPECT_EQ(j["errors"].value("unmatched_message", 0), 0) << j["errors"].dump();
    EXPECT_EQ(j["errors"].value("amqp_error", 0), 0) << j["errors"].dump();
    const double p50 = processed["latency_ms"]["p50"];
    std::printf(
        "pipeline: end-to-end p50 %.2f ms p99 %.2f ms for a 20 ms service; run %.1f s; "
        "%d out of order\n",
        p50, processed["latency_ms"]["p99"].get<double>(), took_s,
        j["errors"].value("out_of_order_message", 0));
    EXPECT_GE(p50, 20.0);
    EXPECT_LE(p50, 23.0);
    EXPECT_EQ(broker.queue_depth("pl.in"), 0);
    EXPECT_EQ(broker.queue_depth("pl.done.0"), 0);
    EXPECT_EQ(broker.queue_depth("pl.done.1"), 0);
  }

  // 6. Acknowledgements, queue arguments, publisher confirms, over amqps://
  // (the scenario's defaults: tls: ca:). Each iteration publishes with a
  // confirm to a queue with a dead-letter exchange, nacks the message when
  // it comes back (requeue: false: the broker dead-letters it), publishes
  // to a quorum queue, and last to a queue of max_length 1 that rejects
  // what does not fit: the broker nacks every such publish but the first.
  // All counts are the broker's own.
  {
    constexpr int kIterations = 40;
    const std::string scenario = dir + "/acks.yaml";
    std::ofstream(scenario) << "target: http://127.0.0.1:9\n"
                            << "defaults: {tls: {ca: " << broker.certificate() << "}}\n"
                            << "amqp:\n  url: " << broker.tls_url() << "\n"
                            << R"(  exchanges: [{name: ack.dlx, type: fanout}]
  queues:
    - {name: ack.in, dead_letter_exchange: ack.dlx, message_ttl: 60s, max_length: 10000}
    - {name: ack.dead, bind: {exchange: ack.dlx}}
    - {name: ack.quorum, type: quorum}
    - {name: ack.full, max_length: 1, arguments: {x-overflow: reject-publish}}
flows:
  f:
    steps:
      - name: publish
        amqp.publish: {routing_key: ack.in, correlation_id: "{{ corr }}", body: x, confirm: true}
      - name: nack
        amqp.expect: {queue: ack.in, correlation_id: "{{ corr }}", on_match: nack, requeue: false, prefetch: 4, timeout: 2s}
      - name: quorum
        amqp.publish: {routing_key: ack.quorum, body: q, confirm: true}
      - name: full
        amqp.publish: {routing_key: ack.full, body: f, confirm: true}
scenarios:
  main: {executor: iterations, vus: 2, iterations: )"
                            << kIterations << "}\n";
    const std::string out = dir + "/acks.json";
    run = run_millstone({"run", scenario, "-w", "1", "-q", "-o", out}, 30);
    ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 99) << run.out << run.err;
    j = read_json(out);
    ASSERT_EQ(j["steps"].size(), 4u) << j.dump();
    EXPECT_EQ(j["steps"][0]["requests"], kIterations) << j["steps"][0];
    EXPECT_EQ(j["steps"][1]["requests"], kIterations) << j["steps"][1];
    EXPECT_EQ(j["steps"][2]["requests"], kIterations) << j["steps"][2];
    EXPECT_EQ(j["steps"][3]["requests"], 1) << j["steps"][3];
    EXPECT_EQ(j["steps"][3]["failed"], kIterations - 1) << j["steps"][3];
    EXPECT_EQ(j["errors"].value("publish_nacked", 0), kIterations - 1) << j["errors"].dump();
    EXPECT_EQ(j["errors"].size(), 1u) << j["errors"].dump();
    EXPECT_EQ(j["steps"][0]["latency_ms"]["count"], kIterations);  // the confirm latency
    // The broker's counts: nothing left or unacknowledged in ack.in, every
    // message dead-lettered, the quorum queue is one, the full one holds one.
    std::istringstream lines(broker.queues("messages messages_unacknowledged type arguments"));
    std::map<std::string, std::vector<std::string>> rows;
    for (std::string line; std::getline(lines, line);) {
      std::vector<std::string> cells;
      std::istringstream cols(line);
      for (std::string cell; std::getline(cols, cell, '\t');)
        cells.push_back(cell);
      if (cells.size() >= 5) rows[cells[0]] = cells;
    }
    ASSERT_EQ(rows.count("ack.in"), 1u);
    EXPECT_EQ(rows["ack.in"][1], "0");
    EXPECT_EQ(rows["ack.in"][2], "0");
    EXPECT_NE(rows["ack.in"][4].find("x-message-ttl"), std::string::npos) << rows["ack.in"][4];
    EXPECT_EQ(rows["ack.dead"][1], std::to_string(kIterations));
    // (A quorum queue's depth in list_queues lags by seconds: its type is
    // the broker's; its 40 publishes are the broker's own confirms.)
    EXPECT_EQ(rows["ack.quorum"][3], "quorum");
    EXPECT_EQ(rows["ack.full"][1], "1");
    std::printf("acks: confirm p50 %.2f ms, nack p50 %.2f ms\n",
                j["steps"][0]["latency_ms"]["p50"].get<double>(),
                j["steps"][1]["latency_ms"]["p50"].get<double>());

    // Without the CA the broker's certificate is untrusted: one line before
    // the run, exit 8, the classified cause.
    const std::string untrusted = dir + "/untrusted.yaml";
    std::ofstream(untrusted)
        << "target: http://127.0.0.1:9\n"
        << "amqp: " << broker.tls_url() << "\n"
        << "flows: {f: {steps: [{amqp.publish: {routing_key: q}}]}}\n"
        << "scenarios: {main: {executor: iterations, vus: 1, iterations: 1}}\n";
    run = run_millstone({"run", untrusted, "-q"}, 30);
    EXPECT_EQ(run.exit_code, 8) << run.out << run.err;
    EXPECT_NE(run.err.find("tls_certificate_untrusted"), std::string::npos) << run.err;
  }

  // 7. The mock publishes and pushes through the broker (examples/orders-async*.yaml).
  mock_closes_the_loop(broker);

  // 8. The broker stops mid-run: classified errors, reconnection attempts
  // refused, and the run still ends when its duration is over.
  const std::string fourth = dir + "/stopped.json";
  // Stopped once both connections are open: logged in (the broker's log
  // says so), not only TCP-connected, or a stop during the handshake would
  // look like a refused login.
  const int logins = broker.logins();
  Process stopped({"amqp", broker.url(), "--publishers", "1", "--consumers", "1", "--rate", "500",
                   "-d", "2s", "--queue", "itq", "-o", fourth});
  for (int i = 0; i < 500 && broker.logins() < logins + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(broker.logins(), logins + 2) << broker.log();
  broker.stop();
  run = stopped.wait(30);
  ASSERT_FALSE(run.timed_out);
  EXPECT_TRUE(run.exit_code == 0 || run.exit_code == 6) << run.exit_code << run.err;
  j = read_json(fourth);
  std::printf("broker stopped mid-run: errors %s\n", j["errors"].dump().c_str());
  EXPECT_GT(j["error_total"].get<int>(), 0);
  const bool dropped = j["errors"].contains("connection_forced") ||
                       j["errors"].contains("closed") || j["errors"].contains("reset");
  EXPECT_TRUE(dropped) << j["errors"].dump();
  for (const auto& [cause, count] : j["errors"].items()) {
    EXPECT_TRUE(cause == "connection_forced" || cause == "closed" || cause == "reset" ||
                cause == "connect_refused")
        << cause;
  }
}

}  // namespace amqp_test
}  // namespace millstone::testing
