#pragma once
// The fault proxy on a thread of its own, for a process whose main thread
// has other work: `millstone run` with `proxies:` in its scenario file runs
// them in the coordinator for the length of the run, and its drill threads
// add and remove toxics through call(). Every FaultProxy method still runs
// on the proxy's loop thread; call() hands it over and waits for the answer.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "net/loop_inbox.h"
#include "proxy/fault_proxy.h"

namespace millstone::proxy {

class ProxyThread {
 public:
  // Creates the proxies (each listening once this returns) and starts the
  // loop's thread, which runs with every signal blocked. Null on the first
  // proxy that cannot be created: *status says why (cannot_listen for a
  // taken address), *failed names it.
  static std::unique_ptr<ProxyThread> start(const std::vector<ProxyConfig>& configs, uint64_t seed,
                                            Status* status, std::string* failed);
  ~ProxyThread();  // closes every proxy and its connections, joins the thread
  ProxyThread(const ProxyThread&) = delete;
  ProxyThread& operator=(const ProxyThread&) = delete;

  // Runs `task` on the loop's thread and returns its status, or nothing if
  // it had not run by `deadline_ns` (CLOCK_MONOTONIC). The task owns what it
  // uses: it may run after a caller that gave up has gone.
  std::optional<Status> call(std::function<Status(FaultProxy&)> task, int64_t deadline_ns);

 private:
  ProxyThread() = default;

  net::EventLoop loop_;
  std::unique_ptr<FaultProxy> proxies_;
  std::unique_ptr<net::LoopInbox> inbox_;
  std::thread thread_;
};

}  // namespace millstone::proxy
