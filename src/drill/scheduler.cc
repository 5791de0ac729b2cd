#include "drill/scheduler.h"

#include <signal.h>

#include <chrono>

#include "net/clock.h"

namespace millstone::drill {

namespace {
// Past any run (runs are at most a week long): a fault without a duration
// stays on until finish().
constexpr int64_t kUntilTheRunEnds = int64_t{30} * 24 * 3600 * net::kNsPerSec;
}  // namespace

const char* status_name(DrillRecord::Status status) {
  switch (status) {
    case DrillRecord::Status::kPending:
      return "pending";
    case DrillRecord::Status::kStarting:
      return "starting";
    case DrillRecord::Status::kOn:
      return "on";
    case DrillRecord::Status::kDone:
      return "done";
    case DrillRecord::Status::kFailed:
      return "failed";
    case DrillRecord::Status::kUndoFailed:
      return "undo_failed";
    case DrillRecord::Status::kNotStarted:
      return "not_started";
  }
  return "?";
}

DrillScheduler::DrillScheduler(std::vector<scenario::Drill> drills, Actions& actions,
                               DrillObserver* observer)
    : drills_(std::move(drills)), actions_(actions), observer_(observer) {
  for (const scenario::Drill& d : drills_) {
    DrillRecord r;
    r.name = d.name;
    r.action = scenario::drill_kind_name(d.kind);
    r.location = d.location;
    r.planned_start_s = static_cast<double>(d.start_us) / 1e6;
    if (d.has_duration()) r.planned_end_s = static_cast<double>(d.end_us()) / 1e6;
    records_.push_back(std::move(r));
  }
}

DrillScheduler::~DrillScheduler() {
  finish();
}

void DrillScheduler::start(int64_t start_ns) {
  std::lock_guard lock(mu_);
  if (started_ || finishing_) return;
  started_ = true;
  start_ns_ = start_ns;
  // The coordinator reads SIGINT and SIGTERM from a signalfd: the drill
  // threads must not be where those signals land instead.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  for (size_t i = 0; i < drills_.size(); ++i) {
    threads_.emplace_back([this, i] { run_drill(i); });
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void DrillScheduler::finish() {
  std::lock_guard finishing(finish_mu_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (!finishing_) {
      finishing_ = true;
      finish_ns_ = net::now_ns();
      if (!started_) start_ns_ = finish_ns_;
    }
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (std::thread& t : threads)
    t.join();
  // Drills whose threads never ran (the run did not start).
  std::vector<DrillEvent> events;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < records_.size(); ++i) {
      if (records_[i].status != DrillRecord::Status::kPending) continue;
      records_[i].status = DrillRecord::Status::kNotStarted;
      events.push_back({DrillEvent::Kind::kNotStarted, i, records_[i].name, since_start(finish_ns_),
                        true, "the run ended before its start"});
    }
  }
  for (DrillEvent& e : events)
    emit(std::move(e));
}

double DrillScheduler::since_start(int64_t ns) const {
  return static_cast<double>(ns - start_ns_) / 1e9;
}

bool DrillScheduler::wait_until(int64_t at_ns) {
  std::unique_lock lock(mu_);
  const std::chrono::steady_clock::time_point at{std::chrono::nanoseconds(at_ns)};
  // steady_clock is CLOCK_MONOTONIC, the clock of net::now_ns().
  wake_.wait_until(lock, at, [&] { return finishing_ || net::now_ns() >= at_ns; });
  return !finishing_;
}

void DrillScheduler::emit(DrillEvent event) {
  if (observer_ != nullptr) observer_->on_drill_event(event);
}

void DrillScheduler::run_drill(size_t index) {
  const scenario::Drill& d = drills_[index];
  const int64_t timeout_ns = d.timeout_us * 1000;
  if (!wait_until(start_ns_ + d.start_us * 1000)) {
    double at = 0;
    {
      std::lock_guard lock(mu_);
      records_[index].status = DrillRecord::Status::kNotStarted;
      at = since_start(finish_ns_);
    }
    emit(
        {DrillEvent::Kind::kNotStarted, index, d.name, at, true, "the run ended before its start"});
    return;
  }
  const int64_t began = net::now_ns();
  {
    std::lock_guard lock(mu_);
    records_[index].status = DrillRecord::Status::kStarting;
    records_[index].start_s = since_start(began);
  }
  ActionResult started = actions_.start(d, began + timeout_ns);
  const int64_t done = net::now_ns();
  const bool ok = started.ok;
  const bool has_end = actions_.has_end(d);
  {
    std::lock_guard lock(mu_);
    DrillRecord& r = records_[index];
    r.start_result = started;
    r.status = ok ? DrillRecord::Status::kOn : DrillRecord::Status::kFailed;
    // A one-off action (no duration, nothing to undo) is over when it returns.
    if (ok && !d.has_duration() && !has_end) {
      r.status = DrillRecord::Status::kDone;
      r.end_s = since_start(done);
    }
  }
  emit({ok ? DrillEvent::Kind::kStarted : DrillEvent::Kind::kStartFailed, index, d.name,
        since_start(began), false, started.detail});
  if (!ok || (!d.has_duration() && !has_end)) return;

  // On until its duration is over, or (without one) until the run ends.
  const bool by_duration = d.has_duration() ? wait_until(start_ns_ + d.end_us() * 1000)
                                            : wait_until(start_ns_ + kUntilTheRunEnds);
  const int64_t ending = net::now_ns();
  {
    std::lock_guard lock(mu_);
    records_[index].end_s = since_start(ending);
    records_[index].ended_by_run = !by_duration;
  }
  std::optional<ActionResult> ended;
  if (has_end) ended = actions_.end(d, ending + timeout_ns);
  const bool end_ok = !ended || ended->ok;
  {
    std::lock_guard lock(mu_);
    DrillRecord& r = records_[index];
    r.end_result = ended;
    r.status = end_ok ? DrillRecord::Status::kDone : DrillRecord::Status::kUndoFailed;
  }
  emit({end_ok ? DrillEvent::Kind::kEnded : DrillEvent::Kind::kEndFailed, index, d.name,
        since_start(ending), !by_duration,
        ended ? ended->detail : std::string("its duration is over")});
}

std::vector<DrillRecord> DrillScheduler::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

scenario::FaultWindows DrillScheduler::windows() const {
  std::lock_guard lock(mu_);
  scenario::FaultWindows out;
  for (const DrillRecord& r : records_) {
    if (r.start_s < 0 || r.status == DrillRecord::Status::kFailed ||
        r.status == DrillRecord::Status::kStarting) {
      continue;
    }
    out.push_back({r.name, r.start_s, r.ended_by_run || r.end_s < 0 ? -1.0 : r.end_s});
  }
  return out;
}

}  // namespace millstone::drill
