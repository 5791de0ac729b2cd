#include "results/metrics_exporter.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "net/socket.h"

namespace millstone::results {
namespace {

// ---------------------------------------------------------------------------
// Exposition text (format 0.0.4)

using Label = std::pair<std::string_view, std::string_view>;

// Label values escape backslash, double quote and line feed.
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

std::string format_double(double v) {
  return fmt::format("{}", v);
}

class ExpositionWriter {
 public:
  explicit ExpositionWriter(std::string_view run_id) : run_id_(run_id) {}

  // HELP texts are constants here without backslashes or line feeds, so they
  // need no escaping.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    out_ += name;
    out_ += "{run_id=\"";
    append_label_value(out_, run_id_);
    out_ += '"';
    for (const auto& [key, label_value] : labels) {
      out_ += ',';
      out_ += key;
      out_ += "=\"";
      append_label_value(out_, label_value);
      out_ += '"';
    }
    out_ += "} ";
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    sample(name, labels, std::string_view(std::to_string(value)));
  }
  // One histogram's series. `step` empty: the series for all requests (no step label).
  void histogram(std::string_view name, std::string_view step, const metrics::Histogram& h);

  std::string take() { return std::move(out_); }

 private:
  std::string_view run_id_;
  std::string out_;
};

void ExpositionWriter::histogram(std::string_view name, std::string_view step,
                                 const metrics::Histogram& h) {
  const std::string bucket_name = std::string(name) + "_bucket";
  auto emit = [&](std::string_view series, std::string_view le, std::string_view value) {
    if (step.empty()) {
      if (le.empty())
        sample(series, {}, value);
      else
        sample(series, {{"le", le}}, value);
    } else {
      if (le.empty())
        sample(series, {{"step", step}}, value);
      else
        sample(series, {{"step", step}, {"le", le}}, value);
    }
  };
  // A millstone bucket counts under the first bound at or above its midpoint
  // (the value it reports for percentiles): buckets are under 1% wide, so
  // each `le` is exact to within that.
  const std::vector<metrics::Histogram::Bucket> buckets = h.nonzero_buckets();
  size_t next = 0;
  uint64_t cumulative = 0;
  for (double bound : duration_bucket_bounds()) {
    const double bound_us = bound * 1e6;
    while (next < buckets.size()) {
      const size_t index = buckets[next].index;
      const double midpoint = (static_cast<double>(metrics::Histogram::bucket_lowest(index)) +
                               static_cast<double>(metrics::Histogram::bucket_highest(index))) /
                              2;
      if (midpoint > bound_us) break;
      cumulative += buckets[next].count;
      ++next;
    }
    emit(bucket_name, format_double(bound), std::to_string(cumulative));
  }
  emit(bucket_name, "+Inf", std::to_string(h.count()));
  emit(std::string(name) + "_sum", "", format_double(static_cast<double>(h.sum()) / 1e6));
  emit(std::string(name) + "_count", "", std::to_string(h.count()));
}

std::string indexed_name(const std::vector<std::string>& names, size_t i) {
  return i < names.size() ? names[i] : "#" + std::to_string(i);
}

// ---------------------------------------------------------------------------
// The HTTP side: one thread, one poll loop, every connection non-blocking
// with its own deadline, so a client that sends slowly or never stops
// sending only ever costs its own connection.

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Connection {
  int fd = -1;
  int64_t deadline_ms = 0;
  bool writing = false;
  std::string in;
  std::string out;
  size_t written = 0;
};

std::string http_response(int status, std::string_view reason, std::string_view content_type,
                          const std::string& body, bool head_only,
                          std::string_view extra_headers = "") {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: "
      "close\r\n\r\n",
      status, reason, content_type, body.size(), extra_headers);
  if (!head_only) out += body;
  return out;
}

class Exporter final : public MetricsExporter {
 public:
  Exporter(ExporterLabels labels, const ExporterLimits& limits, int listen_fd, int wake_fd,
           std::string bound)
      : labels_(std::move(labels)),
        limits_(limits),
        listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        bound_(std::move(bound)) {
    for (const std::string& name : labels_.drill_names)
      drills_.push_back({name});
  }

  ~Exporter() override {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) {
      // An eventfd write only fails when the counter would overflow; the
      // thread is being woken anyway.
    }
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
    close(wake_fd_);
  }

  void run() {
    // The coordinator blocks SIGINT and SIGTERM on its own thread to read
    // them from a signalfd; this thread must not be where they land instead.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    thread_ = std::thread([this] { serve(); });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }

  std::string bound_address() const override { return bound_; }

  std::string exposition() const override {
    // Copy under the lock, render outside it: a scrape never holds up the
    // coordinator's once-a-second update for longer than the copy.
    metrics::Snapshot total;
    uint64_t vus = 0, sockets_open = 0;
    double elapsed_s = 0;
    std::vector<DrillGauge> drills;
    {
      std::lock_guard lock(mu_);
      drills = drills_;
      total = total_;
      vus = vus_;
      sockets_open = sockets_open_;
      elapsed_s = elapsed_s_;
    }
    return render_exposition(labels_, total, vus, elapsed_s, sockets_open, drills);
  }

  void on_drill(const std::string& name, bool active, bool failed) override {
    std::lock_guard lock(mu_);
    auto it = std::find_if(drills_.begin(), drills_.end(),
                           [&](const DrillGauge& d) { return d.name == name; });
    if (it == drills_.end()) it = drills_.insert(drills_.end(), DrillGauge{name});
    it->active = active;
    if (failed) ++it->failures;
  }

  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot& total) override {
    std::lock_guard lock(mu_);
    total_ = total;
    vus_ = second.vus;
    sockets_open_ = second.sockets ? second.sockets->open : 0;
    elapsed_s_ = static_cast<double>(index + 1);
  }

 private:
  void serve();
  void accept_all(std::deque<Connection>& connections);
  // Reads what is there; false when the connection is finished with.
  bool on_readable(Connection& c);
  bool on_writable(Connection& c);
  std::string answer(const std::string& request);

  const ExporterLabels labels_;
  const ExporterLimits limits_;
  const int listen_fd_;
  const int wake_fd_;
  const std::string bound_;
  std::thread thread_;

  mutable std::mutex mu_;
  metrics::Snapshot total_;
  uint64_t vus_ = 0;
  uint64_t sockets_open_ = 0;
  double elapsed_s_ = 0;
  std::vector<DrillGauge> drills_;
};

void Exporter::serve() {
  std::deque<Connection> connections;  // oldest first
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    int64_t now = now_ms();
    int64_t next_deadline = -1;
    for (const Connection& c : connections) {
      fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      if (next_deadline < 0 || c.deadline_ms < next_deadline) next_deadline = c.deadline_ms;
    }
    int timeout =
        next_deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, next_deadline - now));
    int ready = poll(fds.data(), fds.size(), timeout);
    if (ready < 0 && errno != EINTR) break;  // nothing sensible left to do; scrapes will fail
    if (fds[0].revents & POLLIN) break;      // the destructor asks us to stop
    now = now_ms();
    // Connections first (fds[2..] match `connections` as they were at poll time),
    // then new ones, so indexes stay valid.
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = connections[i];
      short revents = fds[i + 2].revents;
      bool keep = true;
      if (revents & (POLLERR | POLLNVAL)) {
        keep = false;
      } else if (revents & (POLLIN | POLLHUP) && !c.writing) {
        keep = on_readable(c);
      } else if (revents & (POLLOUT | POLLHUP) && c.writing) {
        keep = on_writable(c);
      }
      if (keep && now >= c.deadline_ms) keep = false;  // too slow: give its slot up
      if (!keep) {
        close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(connections, [](const Connection& c) { return c.fd < 0; });
    if (fds[1].revents & POLLIN) accept_all(connections);
  }
  for (Connection& c : connections)
    close(c.fd);
}

void Exporter::accept_all(std::deque<Connection>& connections) {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a client that went away: try again next round
    if (connections.size() >= limits_.max_connections) {
      // A client that holds connections open must not lock out the scraper.
      close(connections.front().fd);
      connections.pop_front();
    }
    Connection c;
    c.fd = fd;
    c.deadline_ms = now_ms() + limits_.read_timeout_ms;
    connections.push_back(std::move(c));
  }
}

bool Exporter::on_readable(Connection& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) return false;  // closed before a whole request
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.in.append(buf, static_cast<size_t>(n));
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end != std::string::npos) {
      c.out = answer(c.in.substr(0, end));
    } else if (c.in.size() > limits_.max_request_bytes) {
      c.out = http_response(431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
                            "request too large\n", false);
    } else {
      continue;
    }
    c.in.clear();
    c.writing = true;
    c.deadline_ms = now_ms() + limits_.write_timeout_ms;
    return on_writable(c);
  }
}

bool Exporter::on_writable(Connection& c) {
  while (c.written < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.written += static_cast<size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  return false;
}

std::string Exporter::answer(const std::string& request) {
  const std::string_view text = "text/plain; charset=utf-8";
  std::string_view line(request);
  line = line.substr(0, line.find_first_of("\r\n"));
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/")
    return http_response(400, "Bad Request", text, "bad request line\n", false);
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view path = target.substr(0, target.find('?'));
  bool head = method == "HEAD";
  if (path != "/metrics") return http_response(404, "Not Found", text, "try /metrics\n", head);
  if (method != "GET" && !head)
    return http_response(405, "Method Not Allowed", text, "GET or HEAD only\n", false,
                         "Allow: GET, HEAD\r\n");
  return http_response(200, "OK", kContentType, exposition(), head);
}

}  // namespace

const std::vector<double>& duration_bucket_bounds() {
  static const std::vector<double> bounds = {
      0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02,
      0.03,   0.05,  0.075,  0.1,   0.15,  0.2,   0.3,    0.5,  0.75,  1,
      1.5,    2,     3,      5,     7.5,   10,    15,     20,   30,    60};
  return bounds;
}

namespace {

// WebSocket and TCP steps: only in runs that have them.
void write_socket_families(ExpositionWriter& w, const metrics::SocketStats& s, uint64_t open) {
  w.family("millstone_sockets_open", "gauge",
           "WebSocket and TCP connections open at the end of the latest second.");
  w.sample("millstone_sockets_open", {}, open);
  w.family("millstone_socket_connections_total", "counter",
           "WebSocket and TCP connections established (WebSocket: handshake done).");
  w.sample("millstone_socket_connections_total", {}, s.connected);
  w.family("millstone_socket_messages_total", "counter", "Socket messages, by direction.");
  w.sample("millstone_socket_messages_total", {{"direction", "in"}}, s.messages_in);
  w.sample("millstone_socket_messages_total", {{"direction", "out"}}, s.messages_out);
  w.family("millstone_socket_payload_bytes_total", "counter",
           "WebSocket payload or TCP stream bytes, by direction.");
  w.sample("millstone_socket_payload_bytes_total", {{"direction", "in"}}, s.bytes_in);
  w.sample("millstone_socket_payload_bytes_total", {{"direction", "out"}}, s.bytes_out);
  w.family("millstone_socket_ignored_messages_total", "counter",
           "Messages an expect did not match (unmatched) or that no step waited for "
           "(unsolicited).");
  w.sample("millstone_socket_ignored_messages_total", {{"reason", "unmatched"}}, s.unmatched);
  w.sample("millstone_socket_ignored_messages_total", {{"reason", "unsolicited"}}, s.unsolicited);
  w.family("millstone_socket_disconnects_total", "counter", "Socket disconnects, by cause.");
  for (size_t i = 0; i < metrics::kDisconnectCauseCount; ++i) {
    w.sample("millstone_socket_disconnects_total",
             {{"cause", metrics::disconnect_cause_name(static_cast<metrics::DisconnectCause>(i))}},
             s.disconnects[i]);
  }
  w.family("millstone_socket_close_codes_total", "counter",
           "WebSocket close codes the servers sent.");
  for (const auto& [code, count] : s.close_codes) {
    w.sample("millstone_socket_close_codes_total", {{"code", std::to_string(code)}}, count);
  }
  w.family("millstone_socket_connect_duration_seconds", "histogram", "TCP connect time.");
  w.histogram("millstone_socket_connect_duration_seconds", "", s.connect_time);
  w.family("millstone_socket_handshake_duration_seconds", "histogram",
           "WebSocket upgrade request to 101 response.");
  w.histogram("millstone_socket_handshake_duration_seconds", "", s.handshake_time);
  w.family("millstone_socket_first_message_seconds", "histogram",
           "Time from connected to the first message received.");
  w.histogram("millstone_socket_first_message_seconds", "", s.first_message);
  w.family("millstone_socket_delivery_latency_seconds", "histogram",
           "Pushed messages: their send time (latency_from) to arrival.");
  w.histogram("millstone_socket_delivery_latency_seconds", "", s.delivery);
}

}  // namespace

std::string render_exposition(const ExporterLabels& labels, const metrics::Snapshot& total,
                              uint64_t vus, double elapsed_s, uint64_t sockets_open,
                              const std::vector<DrillGauge>& drills) {
  ExpositionWriter w(labels.run_id);
  const bool scenario = !labels.step_names.empty() || !total.steps.empty();

  w.family("millstone_run_info", "gauge", "Constant 1, labelled with what this run is.");
  w.sample("millstone_run_info", {{"name", labels.name}, {"version", MILLSTONE_VERSION}}, "1");
  w.family("millstone_run_elapsed_seconds", "gauge", "Seconds of the run reported so far.");
  w.sample("millstone_run_elapsed_seconds", {}, format_double(elapsed_s));
  w.family("millstone_vus", "gauge", "Virtual users alive at the end of the latest second.");
  w.sample("millstone_vus", {}, vus);

  const size_t steps = std::max(labels.step_names.size(), total.steps.size());
  w.family("millstone_requests_total", "counter",
           "Complete responses, any status. The series without a step label counts all "
           "requests; scenario runs add one series per step.");
  w.sample("millstone_requests_total", {}, total.requests);
  for (size_t i = 0; i < steps; ++i) {
    uint64_t n = i < total.steps.size() ? total.steps[i].requests : 0;
    std::string step = indexed_name(labels.step_names, i);
    w.sample("millstone_requests_total", {{"step", step}}, n);
  }

  w.family("millstone_request_errors_total", "counter",
           "Transport errors: requests that ended without a complete response, by cause.");
  for (size_t i = 0; i < metrics::kErrorCauseCount; ++i) {
    w.sample("millstone_request_errors_total",
             {{"cause", metrics::error_cause_name(static_cast<metrics::ErrorCause>(i))}},
             total.error_counts[i]);
  }

  w.family("millstone_http_failures_total", "counter",
           "HTTP failures: complete responses with a status of 400 or more.");
  w.sample("millstone_http_failures_total", {}, total.http_failures());

  w.family("millstone_responses_total", "counter", "Complete responses by HTTP status code.");
  for (const auto& [status, count] : total.status_counts) {
    std::string code = std::to_string(status);
    w.sample("millstone_responses_total", {{"status", code}}, count);
  }

  w.family("millstone_request_duration_seconds", "histogram",
           "Latency of complete responses. The series without a step label covers all "
           "requests; scenario runs add one series per step.");
  w.histogram("millstone_request_duration_seconds", "", total.latency);
  const metrics::Histogram empty;
  for (size_t i = 0; i < steps; ++i) {
    std::string step = indexed_name(labels.step_names, i);
    w.histogram("millstone_request_duration_seconds", step,
                i < total.steps.size() ? total.steps[i].latency : empty);
  }

  if (scenario) {
    w.family("millstone_step_failed_requests_total", "counter",
             "Scenario steps: transport errors plus responses with status 400 or above.");
    for (size_t i = 0; i < steps; ++i) {
      std::string step = indexed_name(labels.step_names, i);
      w.sample("millstone_step_failed_requests_total", {{"step", step}},
               i < total.steps.size() ? total.steps[i].failed : 0);
    }
    const size_t checks = std::max(labels.check_names.size(), total.checks.size());
    w.family("millstone_checks_total", "counter", "Scenario checks evaluated, by result.");
    for (size_t i = 0; i < checks; ++i) {
      std::string check = indexed_name(labels.check_names, i);
      const bool have = i < total.checks.size();
      w.sample("millstone_checks_total", {{"check", check}, {"result", "pass"}},
               have ? total.checks[i].passed : 0);
      w.sample("millstone_checks_total", {{"check", check}, {"result", "fail"}},
               have ? total.checks[i].failed : 0);
    }
    const size_t flows = std::max(labels.flow_names.size(), total.flows.size());
    w.family("millstone_iterations_total", "counter", "Scenario iterations completed, by flow.");
    for (size_t i = 0; i < flows; ++i) {
      std::string flow = indexed_name(labels.flow_names, i);
      w.sample("millstone_iterations_total", {{"flow", flow}},
               i < total.flows.size() ? total.flows[i].iterations : 0);
    }
    w.family("millstone_iterations_aborted_total", "counter",
             "Scenario iterations that ended early, by flow.");
    for (size_t i = 0; i < flows; ++i) {
      std::string flow = indexed_name(labels.flow_names, i);
      w.sample("millstone_iterations_aborted_total", {{"flow", flow}},
               i < total.flows.size() ? total.flows[i].aborted : 0);
    }
  }

  w.family("millstone_dropped_iterations_total", "counter",
           "Arrival-rate iterations that fell due while every VU was busy.");
  w.sample("millstone_dropped_iterations_total", {}, total.dropped_iterations);
  w.family("millstone_bytes_sent_total", "counter", "Bytes sent, headers included.");
  w.sample("millstone_bytes_sent_total", {}, total.bytes_sent);
  w.family("millstone_bytes_received_total", "counter", "Bytes received, headers included.");
  w.sample("millstone_bytes_received_total", {}, total.bytes_received);
  w.family("millstone_connections_opened_total", "counter",
           "Connection attempts, reconnections included.");
  w.sample("millstone_connections_opened_total", {}, total.connections_opened);
  w.family("millstone_connections_established_total", "counter",
           "Connection attempts whose TCP connect succeeded.");
  w.sample("millstone_connections_established_total", {}, total.connections_established);
  if (total.sockets) write_socket_families(w, *total.sockets, sockets_open);
  if (!drills.empty()) {
    w.family("millstone_drill_active", "gauge",
             "1 while the drill's fault is on (drills: in the scenario file), else 0.");
    for (const DrillGauge& d : drills)
      w.sample("millstone_drill_active", {{"drill", d.name}}, d.active ? 1 : 0);
    w.family("millstone_drill_action_failures_total", "counter",
             "Drill actions (start or undo) that failed.");
    for (const DrillGauge& d : drills)
      w.sample("millstone_drill_action_failures_total", {{"drill", d.name}}, d.failures);
  }
  return w.take();
}

MetricsExporter::~MetricsExporter() = default;

std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string& listen,
                                                        ExporterLabels labels, std::string* error,
                                                        const ExporterLimits& limits) {
  auto endpoint = net::parse_listen_address(listen, error);
  if (!endpoint) return nullptr;
  // Exclusive (no SO_REUSEPORT): a second run on the same address fails here
  // instead of splitting the scrapes with the first.
  int fd = net::listen_socket(*endpoint, 64);
  if (fd < 0) {
    *error = errno == EADDRINUSE
                 ? std::string("address already in use (another process listens there)")
                 : fmt::format("cannot listen on {}: {}", endpoint->to_string(), strerror(errno));
    return nullptr;
  }
  auto bound = net::local_endpoint(fd);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!bound || wake < 0) {
    *error = fmt::format("cannot set up the listener: {}", strerror(errno));
    close(fd);
    if (wake >= 0) close(wake);
    return nullptr;
  }
  auto exporter =
      std::make_unique<Exporter>(std::move(labels), limits, fd, wake, bound->to_string());
  exporter->run();
  return exporter;
}

}  // namespace millstone::results
