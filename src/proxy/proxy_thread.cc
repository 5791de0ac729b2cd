#include "proxy/proxy_thread.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "net/clock.h"

namespace millstone::proxy {

namespace {

// What call() waits on; shared with the task so either may outlive the other.
struct Answer {
  std::mutex mu;
  std::condition_variable done;
  std::optional<Status> status;
};

}  // namespace

std::unique_ptr<ProxyThread> ProxyThread::start(const std::vector<ProxyConfig>& configs,
                                                uint64_t seed, Status* status,
                                                std::string* failed) {
  std::unique_ptr<ProxyThread> t(new ProxyThread());
  t->proxies_ = std::make_unique<FaultProxy>(
      t->loop_, FaultProxyOptions{.seed = seed, .open_listener = {}, .resolve = {}});
  t->inbox_ = std::make_unique<net::LoopInbox>(t->loop_);
  if (!t->inbox_->ready()) {
    *status = Status::error(500, "cannot make an eventfd for the proxy's thread");
    return nullptr;
  }
  for (const ProxyConfig& config : configs) {
    ProxyState state;
    *status = t->proxies_->create(config, &state);
    if (!status->ok()) {
      *failed = config.name;
      return nullptr;
    }
  }
  // Until the thread runs, this thread is the loop's: nothing else touches it.
  // The thread starts with every signal blocked, so a Ctrl-C meant for the
  // coordinator's signalfd is never delivered here.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  t->thread_ = std::thread([loop = &t->loop_] { loop->run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  *status = Status{};
  return t;
}

ProxyThread::~ProxyThread() {
  if (thread_.joinable()) {
    if (!inbox_->post([this] { loop_.stop(); })) loop_.stop();
    thread_.join();
  }
  // The loop has stopped: its owner's thread may now close the proxies.
  proxies_.reset();
  inbox_.reset();
}

std::optional<Status> ProxyThread::call(std::function<Status(FaultProxy&)> task,
                                        int64_t deadline_ns) {
  auto answer = std::make_shared<Answer>();
  FaultProxy* proxies = proxies_.get();
  const bool posted = inbox_->post([answer, proxies, task = std::move(task)] {
    Status status = task(*proxies);
    std::lock_guard<std::mutex> lock(answer->mu);
    answer->status = std::move(status);
    answer->done.notify_all();
  });
  if (!posted) return Status::error(500, "the proxy's thread cannot be reached");
  std::unique_lock<std::mutex> lock(answer->mu);
  const int64_t left_ns = deadline_ns - net::now_ns();
  answer->done.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(0, left_ns)),
                        [&] { return answer->status.has_value(); });
  return answer->status;
}

}  // namespace millstone::proxy
