#pragma once
// The runs of `millstone serve` (docs/serve.md): one at a time per machine,
// the rest queued in order. Each run is a child process of this binary
// (`millstone run ... --live-events /dev/fd/3`) in its own process group and
// its own directory under the data directory, watched from the event loop
// through a pidfd (its end) and a socket (its live events), so a run that
// crashes is a failed run and never takes the server with it.
//
// Live events become Server-Sent Events kept in memory for the run (bounded)
// and handed to every subscriber; a subscriber that goes away or cannot keep
// up costs the run nothing (the socket from the run is read regardless).
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/event_loop.h"
#include "serve/run_request.h"

namespace millstone::serve {

enum class RunState { kQueued, kRunning, kPassed, kFailed, kError, kStopped, kAborted };
const char* run_state_name(RunState state);

// "2026-12-04T04:01:01.123Z" (UTC, milliseconds), as the API writes times.
std::string iso_time(int64_t unix_ms);

// A Server-Sent Events stream of one run.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // One whole event ("event: second\nid: 3\ndata: {...}\n\n").
  virtual void on_event(std::string_view text) = 0;
  // The `end` event was the last one: the stream is over.
  virtual void on_end() = 0;
};

struct Run;

struct RunQueueOptions {
  std::string data_dir;  // runs go in data_dir/runs/ID/
  std::string program;   // the millstone binary the runs execute
  std::string base_dir;  // relative scenario paths are read from here
};

class RunQueue {
 public:
  RunQueue(net::EventLoop& loop, RunQueueOptions options);
  ~RunQueue();
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Creates the directories and reads the runs an earlier serve left there
  // (those it did not see end are `error`). False with *error naming the path.
  bool open(std::string* error);

  const RunQueueOptions& options() const { return options_; }

  struct Submitted {
    const Run* run = nullptr;  // null: *error says why (the run's directory)
    bool existing = false;     // the idempotency key named an earlier run
  };
  // Queues the run, and starts it when nothing runs.
  Submitted submit(RunRequest request, const std::string& idempotency_key, std::string* error);

  const Run* find(std::string_view id) const;
  std::vector<const Run*> newest_first() const;

  // SIGINT to the run (it stops and writes its partial results), or SIGKILL
  // to its process group. A queued run leaves the queue. False with *error
  // when the run has already ended.
  bool stop(std::string_view id, bool abort, std::string* error);

  // Replays the run's events so far, then follows it; a finished run's
  // stream is its kept events and `end` at once. The sink must unsubscribe
  // before it goes.
  void subscribe(std::string_view id, EventSink* sink);
  void unsubscribe(EventSink* sink);

  // Serve is ending: queued runs are stopped, the running one gets SIGINT,
  // then SIGKILL after `grace_ns`. Blocks until it is reaped.
  void shutdown(int64_t grace_ns);

  // The run as the API shows it; `details` adds the request, the latest
  // second and (once ended) the summary.
  nlohmann::json run_json(const Run& run, bool details) const;

  // The kept events of one run (bounded), for the record: at most this many bytes.
  static constexpr size_t kMaxKeptEventBytes = 16 << 20;

 private:
  class Watch;
  void start_next();
  bool spawn(Run& run, std::string* error);
  void on_live(Run& run);
  void on_exit(Run& run);
  void finish(Run& run, int wait_status);
  void publish(Run& run, std::string_view name, const std::string& data);
  void publish_final_seconds(Run& run);
  void save(const Run& run) const;

  net::EventLoop& loop_;
  RunQueueOptions options_;
  std::vector<std::unique_ptr<Run>> runs_;  // in the order they were submitted
  std::deque<Run*> queue_;
  Run* running_ = nullptr;
  std::map<std::string, Run*, std::less<>> by_key_;
  uint64_t sequence_ = 0;
};

struct Run {
  std::string id;
  nlohmann::json request;             // as given (run_request_json)
  std::optional<RunRequest> pending;  // until it starts
  std::string idempotency_key;
  RunState state = RunState::kQueued;
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  std::optional<int> exit_code;
  std::optional<int> term_signal;
  std::string message;  // why it ended so (error, stopped, aborted)
  RunFiles files;
  bool stop_requested = false;
  bool abort_requested = false;
  // While it runs.
  pid_t pid = -1;
  int pidfd = -1;
  int live_fd = -1;
  uint64_t pid_registration = 0;
  uint64_t live_registration = 0;
  std::unique_ptr<net::IoHandler> pid_watch;
  std::unique_ptr<net::IoHandler> live_watch;
  std::string live_partial;
  // Server-Sent Events so far, for subscribers that come late; once it has
  // ended, they are in files.dir/events.txt instead.
  std::vector<std::string> events;
  size_t event_bytes = 0;
  uint64_t events_dropped = 0;
  uint64_t next_event_id = 0;
  nlohmann::json latest_second;  // null before the first
  std::vector<EventSink*> sinks;
  bool ended() const { return state != RunState::kQueued && state != RunState::kRunning; }
};

}  // namespace millstone::serve
