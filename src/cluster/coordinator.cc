#include "cluster/coordinator.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cluster/channel.h"
#include "cluster/worker_process.h"
#include "net/clock.h"

namespace millstone::cluster {

namespace {

struct WorkerHandle {
  uint32_t index = 0;
  pid_t pid = -1;
  std::unique_ptr<Channel> channel;
  bool done = false;    // sent kDone
  bool gone = false;    // channel closed (done or dead)
  std::string failure;  // why it failed, if it did
  uint64_t last_interval = 0;
};

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({})", sig, strsignal(sig));
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "ended abnormally";
}

uint64_t peak_total(const std::map<uint64_t, metrics::Snapshot>& seconds) {
  uint64_t peak = 0;
  for (const auto& [index, second] : seconds)
    peak = std::max(peak, second.peak_vus);
  return peak;
}

}  // namespace

std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t workers) {
  workers = std::max<uint32_t>(1, std::min(workers, std::max<uint32_t>(1, plan.connections)));
  std::vector<engine::RunPlan> plans;
  for (uint32_t i = 0; i < workers; ++i) {
    engine::RunPlan p = plan;
    p.connections = plan.connections / workers + (i < plan.connections % workers ? 1 : 0);
    p.rate = plan.rate / workers;
    p.worker_index = i;
    p.worker_count = workers;
    plans.push_back(std::move(p));
  }
  return plans;
}

RunResult run_local(const engine::RunPlan& plan, uint32_t workers, ProgressSink* progress) {
  RunResult result;
  std::vector<engine::RunPlan> plans = split_plan(plan, workers);
  result.workers = static_cast<uint32_t>(plans.size());

  // Signals arrive through a descriptor so they interrupt nothing midway.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous_mask;
  sigprocmask(SIG_BLOCK, &signals, &previous_mask);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

  std::vector<WorkerHandle> handles(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    int pair[2];
    WorkerHandle& h = handles[i];
    h.index = static_cast<uint32_t>(i);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      h.gone = true;
      h.failure = fmt::format("worker {} could not be started: socketpair: {}", i, strerror(errno));
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      // Worker: Ctrl-C on a terminal reaches the whole process group; the
      // coordinator alone decides when workers stop, so they ignore it.
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_DFL);
      sigprocmask(SIG_SETMASK, &previous_mask, nullptr);
      close(pair[0]);
      for (size_t j = 0; j < i; ++j) {
        if (handles[j].channel) close(handles[j].channel->fd());
      }
      if (signal_fd >= 0) close(signal_fd);
      _exit(run_worker(pair[1], static_cast<unsigned>(i)));
    }
    close(pair[1]);
    if (pid < 0) {
      close(pair[0]);
      h.gone = true;
      h.failure = fmt::format("worker {} could not be started: fork: {}", i, strerror(errno));
      continue;
    }
    h.pid = pid;
    h.channel = std::make_unique<Channel>(pair[0]);
  }

  int64_t start_ns = net::now_ns();
  for (size_t i = 0; i < handles.size(); ++i) {
    if (handles[i].channel) {
      handles[i].channel->send(MessageType::kStart, encode_run_plan(plans[i]));
    }
  }
  // Workers end on their own at the planned duration; past this deadline a
  // worker is presumed hung and is killed (and reported).
  int64_t grace_ns =
      static_cast<int64_t>(std::max<uint64_t>(plan.timeout_ms, plan.connect_timeout_ms)) *
          net::kNsPerMs +
      5 * net::kNsPerSec;
  int64_t planned_end_ns = start_ns + static_cast<int64_t>(plan.duration_ms) * net::kNsPerMs;
  int64_t deadline_ns = planned_end_ns + grace_ns;
  // Workers end on their own clock, which starts when each gets its plan; a
  // worker started late (dozens of them on a few cores) is told to stop shortly
  // after the run's end, so the duration holds for the run as a whole.
  int64_t stop_at_ns = planned_end_ns + 250 * net::kNsPerMs;
  bool stop_sent = false;
  int signals_seen = 0;

  std::map<uint64_t, uint32_t> reports;  // interval -> number of workers that sent it
  uint64_t next_progress = 0;
  auto emit_progress = [&](bool flush_all) {
    while (progress) {
      auto it = result.seconds.find(next_progress);
      if (it == result.seconds.end()) return;
      // Workers still running, and finished ones that reported this second.
      uint32_t expected = static_cast<uint32_t>(
          std::count_if(handles.begin(), handles.end(), [&](const WorkerHandle& h) {
            return !h.gone || (h.done && h.last_interval >= next_progress);
          }));
      if (!flush_all && reports[next_progress] < expected) return;
      // The last, partial interval comes with kDone; it is not a whole second.
      bool partial = std::any_of(handles.begin(), handles.end(), [&](auto& h) {
        return h.done && h.last_interval == next_progress;
      });
      if (!partial) progress->on_second(next_progress, it->second, result.total);
      ++next_progress;
    }
  };

  for (;;) {
    bool all_gone = std::all_of(handles.begin(), handles.end(), [](auto& h) { return h.gone; });
    if (all_gone) break;
    std::vector<pollfd> fds;
    std::vector<WorkerHandle*> owners;
    for (auto& h : handles) {
      if (h.gone) continue;
      fds.push_back({h.channel->fd(), POLLIN, 0});
      owners.push_back(&h);
    }
    if (signal_fd >= 0) fds.push_back({signal_fd, POLLIN, 0});
    int64_t wake_ns = stop_sent ? deadline_ns : stop_at_ns;
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>((wake_ns - net::now_ns()) / net::kNsPerMs + 1, 0, 200));
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;

    if (signal_fd >= 0 && (fds.back().revents & POLLIN)) {
      signalfd_siginfo info;
      while (read(signal_fd, &info, sizeof info) == sizeof info) {
        ++signals_seen;
        result.interrupted = true;
        for (auto& h : handles) {
          if (h.gone) continue;
          if (signals_seen == 1) {
            h.channel->send(MessageType::kStop, {});
          } else {
            kill(h.pid, SIGKILL);
          }
        }
      }
    }

    for (size_t i = 0; i < owners.size(); ++i) {
      if (!fds[i].revents) continue;
      WorkerHandle& h = *owners[i];
      bool open = h.channel->receive_available();
      MessageType type;
      std::string payload;
      FrameReader::Next next;
      while ((next = h.channel->reader().next(&type, &payload)) == FrameReader::Next::kFrame) {
        if (type == MessageType::kSnapshot) {
          metrics::Snapshot snapshot;
          if (!decode_snapshot(payload, &snapshot)) {
            h.failure = fmt::format("worker {} sent a snapshot that does not decode", h.index);
            continue;
          }
          result.total.merge(snapshot);
          metrics::Snapshot& second = result.seconds[snapshot.interval_index];
          second.merge(snapshot);
          second.interval_index = snapshot.interval_index;
          // Peaks add across workers within a second, but not across seconds.
          result.total.peak_vus = peak_total(result.seconds);
          ++reports[snapshot.interval_index];
          h.last_interval = snapshot.interval_index;
        } else if (type == MessageType::kDone) {
          h.done = true;
        } else if (type == MessageType::kError) {
          std::string text;
          decode_error(payload, &text);
          h.failure = fmt::format("worker {}: {}", h.index, text);
        }
      }
      if (next == FrameReader::Next::kError) {
        h.failure =
            fmt::format("worker {} broke the protocol: {}", h.index, h.channel->reader().error());
        kill(h.pid, SIGKILL);
        open = false;
      }
      if (!open || h.done) {
        h.gone = true;
        close(h.channel->fd());
      }
    }
    emit_progress(false);

    int64_t now = net::now_ns();
    if (!stop_sent && now >= stop_at_ns) {
      stop_sent = true;
      for (auto& h : handles) {
        if (!h.gone) h.channel->send(MessageType::kStop, {});
      }
    }
    if (now > deadline_ns) {
      for (auto& h : handles) {
        if (h.gone) continue;
        h.failure = fmt::format("worker {} did not finish in time and was killed", h.index);
        kill(h.pid, SIGKILL);
        h.gone = true;
        close(h.channel->fd());
      }
    }
  }
  result.duration_s = static_cast<double>(net::now_ns() - start_ns) / 1e9;
  if (!result.interrupted) {
    result.duration_s = std::min(result.duration_s, static_cast<double>(plan.duration_ms) / 1e3);
  }
  emit_progress(true);

  for (auto& h : handles) {
    if (h.pid <= 0) {
      if (!h.failure.empty()) result.worker_failures.push_back(h.failure);
      continue;
    }
    int status = 0;
    waitpid(h.pid, &status, 0);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!h.done && h.failure.empty()) {
      h.failure = fmt::format(
          "worker {} (pid {}) died before finishing: {}; its results up to "
          "then are included",
          h.index, h.pid, describe_exit(status));
    } else if (!clean && h.failure.empty()) {
      h.failure = fmt::format("worker {} (pid {}) {}", h.index, h.pid, describe_exit(status));
    }
    if (!h.failure.empty()) result.worker_failures.push_back(h.failure);
  }
  if (progress) progress->on_finish();
  if (signal_fd >= 0) close(signal_fd);
  sigprocmask(SIG_SETMASK, &previous_mask, nullptr);
  return result;
}

}  // namespace millstone::cluster
