#include "serve/run_queue.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "net/clock.h"

namespace millstone::serve {

std::string iso_time(int64_t unix_ms) {
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream content;
  content << in.rdbuf();
  *out = content.str();
  return true;
}

// Written whole and renamed over the old one: a crash leaves one or the other.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return;
  }
  ::rename(temp.c_str(), path.c_str());
}

// The last line the run printed that says something: why it failed.
std::string last_output_line(const std::string& path) {
  std::string text;
  if (!read_file(path, &text)) return {};
  size_t end = text.size();
  while (end > 0) {
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' '))
      --end;
    const size_t start = text.rfind('\n', end == 0 ? 0 : end - 1);
    const size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = text.substr(from, end - from);
    if (!line.empty()) return line.substr(0, 1000);
    end = from;
  }
  return {};
}

RunState state_from_name(const std::string& name) {
  for (RunState s : {RunState::kQueued, RunState::kRunning, RunState::kPassed, RunState::kFailed,
                     RunState::kError, RunState::kStopped, RunState::kAborted}) {
    if (name == run_state_name(s)) return s;
  }
  return RunState::kError;
}

// The run's exit code (docs/exit-codes.md) as a state.
RunState state_for_exit(int code) {
  switch (code) {
    case 0:
      return RunState::kPassed;
    case 5:   // incomplete: a worker died
    case 6:   // measured nothing
    case 9:   // degraded: an agent was lost
    case 97:  // an abort guard stopped it
    case 98:
    case 99:  // thresholds or SLOs failed
      return RunState::kFailed;
    case 130:
      return RunState::kStopped;
    default:
      return RunState::kError;
  }
}

}  // namespace

const char* run_state_name(RunState state) {
  switch (state) {
    case RunState::kQueued:
      return "queued";
    case RunState::kRunning:
      return "running";
    case RunState::kPassed:
      return "passed";
    case RunState::kFailed:
      return "failed";
    case RunState::kError:
      return "error";
    case RunState::kStopped:
      return "stopped";
    case RunState::kAborted:
      return "aborted";
  }
  return "error";
}

class RunQueue::Watch final : public net::IoHandler {
 public:
  explicit Watch(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  void on_io(uint32_t) override { on_ready_(); }

 private:
  std::function<void()> on_ready_;
};

RunQueue::RunQueue(net::EventLoop& loop, RunQueueOptions options)
    : loop_(loop), options_(std::move(options)) {}

RunQueue::~RunQueue() {
  for (auto& run : runs_) {
    if (run->pid_registration) loop_.remove(run->pid_registration, run->pidfd);
    if (run->live_registration) loop_.remove(run->live_registration, run->live_fd);
    if (run->pidfd >= 0) ::close(run->pidfd);
    if (run->live_fd >= 0) ::close(run->live_fd);
  }
}

bool RunQueue::open(std::string* error) {
  const std::string runs_dir = options_.data_dir + "/runs";
  for (const std::string& dir : {options_.data_dir, runs_dir}) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = fmt::format("--data-dir: cannot create {}: {}", dir, std::strerror(errno));
      return false;
    }
  }
  DIR* d = ::opendir(runs_dir.c_str());
  if (d == nullptr) {
    *error = fmt::format("--data-dir: cannot read {}: {}", runs_dir, std::strerror(errno));
    return false;
  }
  std::vector<std::unique_ptr<Run>> found;
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string text;
    if (!read_file(runs_dir + "/" + name + "/run.json", &text)) continue;
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || j["id"] != name) continue;
    auto run = std::make_unique<Run>();
    run->id = name;
    run->request = j.value("request", nlohmann::json::object());
    run->idempotency_key = j.value("idempotency_key", "");
    run->state = state_from_name(j.value("state", ""));
    run->created_ms = j.value("created_ms", int64_t{0});
    run->started_ms = j.value("started_ms", int64_t{0});
    run->ended_ms = j.value("ended_ms", int64_t{0});
    if (j.contains("exit_code") && j["exit_code"].is_number_integer())
      run->exit_code = j["exit_code"].get<int>();
    if (j.contains("signal") && j["signal"].is_number_integer())
      run->term_signal = j["signal"].get<int>();
    run->message = j.value("message", "");
    if (!run->ended()) {
      run->state = RunState::kError;
      run->message = "millstone serve stopped before this run ended";
      run->ended_ms = unix_ms_now();
    }
    const std::string dir = runs_dir + "/" + name;
    run->files = {dir,
                  dir + "/scenario.yaml",
                  dir + "/summary.json",
                  dir + "/report.html",
                  dir + "/junit.xml",
                  dir + "/output.log",
                  options_.data_dir + "/history.db"};
    found.push_back(std::move(run));
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(a->created_ms, a->id) < std::tie(b->created_ms, b->id);
  });
  for (auto& run : found) {
    save(*run);
    if (!run->idempotency_key.empty()) by_key_[run->idempotency_key] = run.get();
    runs_.push_back(std::move(run));
  }
  sequence_ = runs_.size();
  return true;
}

RunQueue::Submitted RunQueue::submit(RunRequest request, const std::string& idempotency_key,
                                     std::string* error) {
  if (!idempotency_key.empty()) {
    if (auto it = by_key_.find(idempotency_key); it != by_key_.end()) return {it->second, true};
  }
  auto run = std::make_unique<Run>();
  run->created_ms = unix_ms_now();
  // Sortable and unique on this machine: the UTC second and a sequence.
  const time_t seconds = static_cast<time_t>(run->created_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::string dir;
  for (;;) {
    run->id = fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}-{}", tm.tm_year + 1900, tm.tm_mon + 1,
                          tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ++sequence_);
    dir = options_.data_dir + "/runs/" + run->id;
    if (::mkdir(dir.c_str(), 0700) == 0) break;
    if (errno != EEXIST) {
      *error = fmt::format("cannot create the run's directory {}: {}", dir, std::strerror(errno));
      return {};
    }
  }
  run->files = {dir,
                dir + "/scenario.yaml",
                dir + "/summary.json",
                dir + "/report.html",
                dir + "/junit.xml",
                dir + "/output.log",
                options_.data_dir + "/history.db"};
  if (!request.scenario_yaml.empty()) {
    std::ofstream out(run->files.scenario, std::ios::binary | std::ios::trunc);
    out << request.scenario_yaml;
    if (!out) {
      *error = fmt::format("cannot write {}: {}", run->files.scenario, std::strerror(errno));
      return {};
    }
  }
  run->request = run_request_json(request);
  run->pending = std::move(request);
  run->idempotency_key = idempotency_key;
  Run* raw = run.get();
  runs_.push_back(std::move(run));
  if (!idempotency_key.empty()) by_key_[idempotency_key] = raw;
  queue_.push_back(raw);
  save(*raw);
  start_next();
  return {raw, false};
}

const Run* RunQueue::find(std::string_view id) const {
  for (const auto& run : runs_) {
    if (run->id == id) return run.get();
  }
  return nullptr;
}

std::vector<const Run*> RunQueue::newest_first() const {
  std::vector<const Run*> out;
  for (auto it = runs_.rbegin(); it != runs_.rend(); ++it)
    out.push_back(it->get());
  return out;
}

void RunQueue::start_next() {
  while (running_ == nullptr && !queue_.empty()) {
    Run& run = *queue_.front();
    queue_.pop_front();
    std::string error;
    if (spawn(run, &error)) {
      running_ = &run;
      run.state = RunState::kRunning;
      run.started_ms = unix_ms_now();
      save(run);
      publish(run, "state", nlohmann::json{{"state", "running"}}.dump());
      return;
    }
    run.state = RunState::kError;
    run.message = error;
    run.ended_ms = unix_ms_now();
    finish(run, -1);
  }
}

bool RunQueue::spawn(Run& run, std::string* error) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
    *error = fmt::format("cannot start the run: socketpair: {}", std::strerror(errno));
    return false;
  }
  // The run's end of the pair is made blocking by the run (LiveEvents sets it non-blocking).
  const int output =
      ::open(run.files.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (output < 0 || null_in < 0) {
    *error = fmt::format("cannot start the run: {}: {}", run.files.output, std::strerror(errno));
    for (int fd : {pair[0], pair[1], output, null_in})
      if (fd >= 0) ::close(fd);
    return false;
  }
  constexpr int kLiveFd = 3;
  std::vector<std::string> args = run_arguments(*run.pending, run.files, kLiveFd);
  args.insert(args.begin(), options_.program);
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    const int live = ::fcntl(pair[1], F_DUPFD, 10);
    ::dup2(null_in, 0);
    ::dup2(output, 1);
    ::dup2(output, 2);
    ::dup2(live, kLiveFd);
    ::execv(options_.program.c_str(), argv.data());
    const char message[] = "millstone serve: cannot execute the millstone binary\n";
    (void)!::write(2, message, sizeof message - 1);
    ::_exit(127);
  }
  const int saved = errno;
  ::close(pair[1]);
  ::close(output);
  ::close(null_in);
  if (pid < 0) {
    ::close(pair[0]);
    *error = fmt::format("cannot start the run: fork: {}", std::strerror(saved));
    return false;
  }
  ::setpgid(pid, pid);  // also here: a stop right after the fork finds the group
  run.pid = pid;
  run.live_fd = pair[0];
  run.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  run.pending.reset();
  Run* r = &run;
  run.live_watch = std::make_unique<Watch>([this, r] { on_live(*r); });
  run.live_registration = loop_.add(run.live_fd, EPOLLIN | EPOLLRDHUP, run.live_watch.get());
  if (run.pidfd >= 0) {
    run.pid_watch = std::make_unique<Watch>([this, r] { on_exit(*r); });
    run.pid_registration = loop_.add(run.pidfd, EPOLLIN, run.pid_watch.get());
  }
  if (run.pidfd < 0 || run.pid_registration == 0) {
    // No pidfd (a kernel before 5.3): the run cannot be watched; end it.
    ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    *error = fmt::format("cannot watch the run: pidfd_open: {}", std::strerror(errno));
    if (run.live_registration) loop_.remove(run.live_registration, run.live_fd);
    run.live_registration = 0;
    ::close(run.live_fd);
    run.live_fd = -1;
    if (run.pidfd >= 0) ::close(run.pidfd);
    run.pidfd = -1;
    return false;
  }
  return true;
}

void RunQueue::on_live(Run& run) {
  if (run.live_fd < 0) return;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(run.live_fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) {
        // The run closed its end (it ended, or all its processes did).
        loop_.remove(run.live_registration, run.live_fd);
        run.live_registration = 0;
        ::close(run.live_fd);
        run.live_fd = -1;
      }
      return;
    }
    run.live_partial.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t end; (end = run.live_partial.find('\n', start)) != std::string::npos;
         start = end + 1) {
      const std::string_view line(run.live_partial.data() + start, end - start);
      nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
      if (!event.is_object() || !event.contains("event") || !event["event"].is_string()) continue;
      const std::string name = event["event"].get<std::string>();
      if (name != "second" && name != "drill" && name != "guard" && name != "start") continue;
      event.erase("event");
      if (name == "second") run.latest_second = event;
      publish(run, name, event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    run.live_partial.erase(0, start);
    // One line is at most what LiveEvents buffers; more is not ours.
    if (run.live_partial.size() > (1u << 20)) run.live_partial.clear();
  }
}

void RunQueue::on_exit(Run& run) {
  // Seen but not reaped (WNOWAIT): while the zombie holds its pid, its
  // process group cannot be another's, so the SIGKILL to any workers it
  // left reaches only them.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(run.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != run.pid) {
    return;
  }
  ::kill(-run.pid, SIGKILL);
  int status = 0;
  if (::waitpid(run.pid, &status, 0) != run.pid) return;
  finish(run, status);
}

void RunQueue::finish(Run& run, int wait_status) {
  if (run.pid_registration) loop_.remove(run.pid_registration, run.pidfd);
  run.pid_registration = 0;
  if (run.pidfd >= 0) ::close(run.pidfd);
  run.pidfd = -1;
  if (run.live_fd >= 0) {
    on_live(run);  // what it wrote before it went
    if (run.live_registration) loop_.remove(run.live_registration, run.live_fd);
    run.live_registration = 0;
    if (run.live_fd >= 0) ::close(run.live_fd);
    run.live_fd = -1;
  }
  if (run.pid > 0) {
    run.pid = -1;
    run.ended_ms = unix_ms_now();
    if (WIFEXITED(wait_status)) {
      run.exit_code = WEXITSTATUS(wait_status);
      run.state = state_for_exit(*run.exit_code);
      if (run.state == RunState::kError || run.state == RunState::kFailed) {
        run.message = last_output_line(run.files.output);
      }
    } else if (WIFSIGNALED(wait_status)) {
      run.term_signal = WTERMSIG(wait_status);
      if (run.abort_requested) {
        run.state = RunState::kAborted;
        run.message = "SIGKILL to the run's process group";
      } else if (run.stop_requested && *run.term_signal == SIGINT) {
        run.state = RunState::kStopped;  // SIGINT before the run took it over
        run.message = "stopped before the run began";
      } else {
        run.state = RunState::kError;
        run.message = fmt::format("the run ended on signal {} ({})", *run.term_signal,
                                  ::strsignal(*run.term_signal));
      }
    }
  }
  if (running_ == &run) running_ = nullptr;
  publish_final_seconds(run);
  nlohmann::json end = {{"id", run.id}, {"state", run_state_name(run.state)}};
  end["exit_code"] = run.exit_code ? nlohmann::json(*run.exit_code) : nlohmann::json();
  if (!run.message.empty()) end["message"] = run.message;
  save(run);
  publish(run, "end", end.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  const std::vector<EventSink*> sinks = std::move(run.sinks);
  run.sinks.clear();
  for (EventSink* sink : sinks)
    sink->on_end();
  // The events go to the run's directory, for late subscribers and a later
  // serve, and out of memory: a server that has run thousands keeps none.
  std::string all;
  for (const std::string& e : run.events)
    all += e;
  write_file_atomically(run.files.dir + "/events.txt", all);
  run.events.clear();
  run.events.shrink_to_fit();
  run.event_bytes = 0;
  start_next();
}

// The run's last interval is not a whole second, so the run's live events
// leave it out (as its progress line does); its summary's timeline has it.
// Streamed too, the seconds add up to the summary's totals.
void RunQueue::publish_final_seconds(Run& run) {
  std::string text;
  if (!read_file(run.files.summary, &text)) return;
  const nlohmann::json summary = nlohmann::json::parse(text, nullptr, false);
  if (!summary.is_object() || !summary.contains("timeline") || !summary["timeline"].is_array())
    return;
  int64_t last = -1;
  nlohmann::json total = {{"requests", 0}, {"errors", 0}, {"http_failures", 0}};
  if (run.latest_second.is_object()) {
    last = run.latest_second.value("second", int64_t{-1});
    if (run.latest_second.contains("total")) total = run.latest_second["total"];
  }
  for (const nlohmann::json& entry : summary["timeline"]) {
    if (!entry.is_object() || entry.value("second", int64_t{-1}) <= last) continue;
    nlohmann::json second = entry;
    for (const char* field : {"requests", "errors", "http_failures"}) {
      total[field] = total.value(field, uint64_t{0}) + entry.value(field, uint64_t{0});
    }
    second["total"] = total;
    run.latest_second = second;
    publish(run, "second", second.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

void RunQueue::publish(Run& run, std::string_view name, const std::string& data) {
  std::string text =
      fmt::format("event: {}\nid: {}\ndata: {}\n\n", name, run.next_event_id++, data);
  if (run.event_bytes + text.size() <= kMaxKeptEventBytes || name == "end") {
    run.event_bytes += text.size();
    run.events.push_back(text);
  } else {
    ++run.events_dropped;
  }
  // A sink may unsubscribe (close) while being told: walk a copy.
  const std::vector<EventSink*> sinks = run.sinks;
  for (EventSink* sink : sinks) {
    if (std::find(run.sinks.begin(), run.sinks.end(), sink) != run.sinks.end()) {
      sink->on_event(text);
    }
  }
}

bool RunQueue::stop(std::string_view id, bool abort, std::string* error) {
  Run* run = nullptr;
  for (auto& r : runs_) {
    if (r->id == id) run = r.get();
  }
  if (run == nullptr) {
    *error = "no such run";
    return false;
  }
  if (run->ended()) {
    *error = fmt::format("the run has already ended ({})", run_state_name(run->state));
    return false;
  }
  if (run->state == RunState::kQueued) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), run));
    run->state = abort ? RunState::kAborted : RunState::kStopped;
    run->message = "removed from the queue before it started";
    run->ended_ms = unix_ms_now();
    run->pending.reset();
    finish(*run, -1);
    return true;
  }
  if (abort) {
    run->abort_requested = true;
    ::kill(-run->pid, SIGKILL);
  } else {
    run->stop_requested = true;
    ::kill(run->pid, SIGINT);
  }
  return true;
}

void RunQueue::subscribe(std::string_view id, EventSink* sink) {
  Run* run = nullptr;
  for (auto& r : runs_) {
    if (r->id == id) run = r.get();
  }
  if (run == nullptr) return;
  if (run->ended()) {
    // Its events are in its directory (events.txt ends with `end`).
    std::string events;
    if (read_file(run->files.dir + "/events.txt", &events) &&
        events.find("event: end\n") != std::string::npos) {
      sink->on_event(events);
    } else {
      nlohmann::json end = {{"id", run->id}, {"state", run_state_name(run->state)}};
      sink->on_event(fmt::format("event: end\ndata: {}\n\n", end.dump()));
    }
    sink->on_end();
    return;
  }
  for (const std::string& e : run->events)
    sink->on_event(e);
  run->sinks.push_back(sink);
}

void RunQueue::unsubscribe(EventSink* sink) {
  for (auto& run : runs_) {
    run->sinks.erase(std::remove(run->sinks.begin(), run->sinks.end(), sink), run->sinks.end());
  }
}

void RunQueue::shutdown(int64_t grace_ns) {
  while (!queue_.empty()) {
    Run* run = queue_.front();
    std::string error;
    stop(run->id, false, &error);
    run->message = "millstone serve stopped before the run started";
    save(*run);
  }
  if (running_ == nullptr) return;
  Run& run = *running_;
  run.stop_requested = true;
  ::kill(run.pid, SIGINT);
  const int64_t deadline = net::now_ns() + grace_ns;
  int status = 0;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(run.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == run.pid) {
      break;
    }
    if (net::now_ns() >= deadline) {
      run.abort_requested = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(-run.pid, SIGKILL);  // the workers it may have left (or all of it, late)
  ::waitpid(run.pid, &status, 0);
  queue_.clear();
  finish(run, status);
}

void RunQueue::save(const Run& run) const {
  nlohmann::json j = {{"id", run.id},
                      {"state", run_state_name(run.state)},
                      {"request", run.request},
                      {"created_ms", run.created_ms},
                      {"started_ms", run.started_ms},
                      {"ended_ms", run.ended_ms},
                      {"message", run.message}};
  if (!run.idempotency_key.empty()) j["idempotency_key"] = run.idempotency_key;
  if (run.exit_code) j["exit_code"] = *run.exit_code;
  if (run.term_signal) j["signal"] = *run.term_signal;
  write_file_atomically(run.files.dir + "/run.json",
                        j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json RunQueue::run_json(const Run& run, bool details) const {
  nlohmann::json j = {{"id", run.id}, {"state", run_state_name(run.state)}};
  j["created_at"] = iso_time(run.created_ms);
  j["started_at"] = run.started_ms ? nlohmann::json(iso_time(run.started_ms)) : nlohmann::json();
  j["ended_at"] = run.ended_ms ? nlohmann::json(iso_time(run.ended_ms)) : nlohmann::json();
  j["exit_code"] = run.exit_code ? nlohmann::json(*run.exit_code) : nlohmann::json();
  j["verdict"] = run.state == RunState::kPassed   ? nlohmann::json("pass")
                 : run.state == RunState::kFailed ? nlohmann::json("fail")
                                                  : nlohmann::json();
  j["message"] = run.message;
  j["target"] = run.request.contains("url")        ? run.request["url"]
                : run.request.contains("scenario") ? run.request["scenario"]
                                                   : nlohmann::json("(inline scenario)");
  if (run.state == RunState::kQueued) {
    const auto it = std::find(queue_.begin(), queue_.end(), &run);
    j["queue_position"] = static_cast<uint64_t>(it - queue_.begin()) + 1;
  }
  if (!details) return j;
  j["request"] = run.request;
  if (!run.idempotency_key.empty()) j["idempotency_key"] = run.idempotency_key;
  if (run.term_signal) j["signal"] = *run.term_signal;
  j["latest_second"] = run.latest_second;
  j["summary"] = nullptr;
  if (run.ended()) {
    std::string text;
    if (read_file(run.files.summary, &text)) {
      nlohmann::json summary = nlohmann::json::parse(text, nullptr, false);
      if (!summary.is_discarded()) j["summary"] = std::move(summary);
    }
  }
  return j;
}

}  // namespace millstone::serve
