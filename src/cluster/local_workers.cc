#include "cluster/local_workers.h"

#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cluster/worker_process.h"
#include "net/clock.h"

namespace millstone::cluster {

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({})", sig, strsignal(sig));
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "ended abnormally";
}

InterruptSignals::InterruptSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &signals, &previous_mask_);
  fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
}

InterruptSignals::~InterruptSignals() {
  if (fd_ >= 0) close(fd_);
  sigprocmask(SIG_SETMASK, &previous_mask_, nullptr);
}

std::vector<LocalWorker> spawn_local_workers(uint32_t count, const sigset_t& worker_mask,
                                             const std::vector<int>& close_in_child) {
  std::vector<LocalWorker> workers(count);
  std::vector<int> parent_ends;
  for (uint32_t i = 0; i < count; ++i) {
    LocalWorker& w = workers[i];
    w.index = i;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      w.failure = fmt::format("worker {} could not be started: socketpair: {}", i, strerror(errno));
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      // Ctrl-C on a terminal reaches the whole process group; the coordinator
      // alone decides when workers stop, so they ignore it.
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_DFL);
      sigprocmask(SIG_SETMASK, &worker_mask, nullptr);
      close(pair[0]);
      for (int fd : parent_ends)
        close(fd);
      for (int fd : close_in_child) {
        if (fd >= 0) close(fd);
      }
      _exit(run_worker(pair[1], i));
    }
    close(pair[1]);
    if (pid < 0) {
      close(pair[0]);
      w.failure = fmt::format("worker {} could not be started: fork: {}", i, strerror(errno));
      continue;
    }
    w.pid = pid;
    parent_ends.push_back(pair[0]);
    w.link = StreamLink::over_socket(pair[0], fmt::format("worker {}", i));
  }
  return workers;
}

namespace {

// Waits for `pid`; one that has not exited within `patience_ns` is killed.
// Returns its wait status; *killed says whether this killed it.
int wait_or_kill(pid_t pid, int64_t patience_ns, bool* killed) {
  int status = 0;
  const int64_t deadline = net::now_ns() + patience_ns;
  *killed = false;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return status;
    if (r == 0 && net::now_ns() >= deadline) break;
    if (r == 0) usleep(10'000);
  }
  kill(pid, SIGKILL);
  *killed = true;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

std::vector<std::string> reap_local_workers(const std::vector<LocalWorker>& workers,
                                            const std::vector<WorkerOutcome>& outcomes) {
  std::vector<std::string> failures;
  size_t next_outcome = 0;
  for (const LocalWorker& w : workers) {
    if (w.pid <= 0) {
      failures.push_back(w.failure);
      continue;
    }
    const WorkerOutcome outcome =
        next_outcome < outcomes.size() ? outcomes[next_outcome] : WorkerOutcome{};
    ++next_outcome;
    // A finished worker is closing its connections: it may take its time. Any
    // other gets a second to exit on its own (its link is closed), then is
    // killed: it must not outlive the run.
    bool killed = false;
    int status = 0;
    if (outcome.state == WorkerOutcome::State::kFinished) {
      while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
      }
    } else {
      status = wait_or_kill(w.pid, net::kNsPerSec, &killed);
    }
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    switch (outcome.state) {
      case WorkerOutcome::State::kFinished:
        if (!clean) {
          failures.push_back(
              fmt::format("worker {} (pid {}) {}", w.index, w.pid, describe_exit(status)));
        }
        break;
      case WorkerOutcome::State::kLinkLost:
        failures.push_back(fmt::format(
            "worker {} (pid {}) died before finishing: {}; its results up to then are included",
            w.index, w.pid,
            killed ? std::string("it closed its link and was killed") : describe_exit(status)));
        break;
      case WorkerOutcome::State::kFailed:
        failures.push_back(fmt::format(
            "{} (pid {}, {}); its results up to then are included", outcome.reason, w.pid,
            killed ? std::string("killed by the coordinator") : describe_exit(status)));
        break;
    }
  }
  return failures;
}

RunResult run_local(const engine::RunPlan& plan, uint32_t workers, ProgressSink* progress,
                    std::vector<DataFile> data_files, const net::StopRequest* stop) {
  std::vector<engine::RunPlan> plans = split_plan(plan, workers);

  const InterruptSignals signals;
  std::vector<LocalWorker> local = spawn_local_workers(static_cast<uint32_t>(plans.size()),
                                                       signals.previous_mask(), {signals.fd()});
  std::vector<std::unique_ptr<WorkerLink>> links;
  std::vector<engine::RunPlan> shares;
  for (LocalWorker& w : local) {
    if (!w.link) continue;
    links.push_back(std::move(w.link));
    shares.push_back(plans[w.index]);
  }
  CoordinatorOptions options;
  options.interrupt_fd = signals.fd();
  options.stop = stop;
  Coordinator coordinator(std::move(links), std::move(shares), std::move(data_files), options,
                          progress);
  RunResult result = coordinator.run();
  result.workers = static_cast<uint32_t>(plans.size());
  result.worker_failures = reap_local_workers(local, result.outcomes);
  return result;
}

}  // namespace millstone::cluster
