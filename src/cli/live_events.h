#pragma once
// `millstone run --live-events FILE`: the run as it goes, one JSON object per
// line (docs/serve.md#live-events): every merged second (the summary's
// timeline entry plus totals so far), drill actions as they happen, and the
// abort guard's trip. `millstone serve` reads it from a pipe to feed its
// Server-Sent Events.
//
// The file is opened non-blocking: a pipe that nobody drains makes lines wait
// in a bounded buffer (1 MiB) and then lose whole lines, counted, never
// stalling the coordinator.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/slo_summary.h"
#include "cli/summary.h"
#include "cluster/coordinator.h"
#include "drill/scheduler.h"

namespace millstone::cli {

class LiveEvents final : public cluster::ProgressSink, public drill::DrillObserver {
 public:
  // Null with *error naming the file when it cannot be opened.
  static std::unique_ptr<LiveEvents> open(const std::string& path, RunDescription run,
                                          std::vector<std::string> step_names, std::string* error);
  ~LiveEvents() override;
  LiveEvents(const LiveEvents&) = delete;
  LiveEvents& operator=(const LiveEvents&) = delete;

  // The guards' trip, when the scenario has guards; reported once.
  void watch_guards(const GuardProgress* guards) { guards_ = guards; }

  void on_start(int64_t start_ns) override;
  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot& total) override;
  void on_drill_event(const drill::DrillEvent& event) override;
  // Waits up to a second for what is still buffered.
  void on_finish() override;

  uint64_t dropped_lines() const;

  static constexpr size_t kMaxBuffered = 1 << 20;

 private:
  LiveEvents(int fd, RunDescription run, std::vector<std::string> step_names)
      : fd_(fd), run_(std::move(run)), step_names_(std::move(step_names)) {}
  void emit(const nlohmann::json& event);  // with mu_ held
  void flush();                            // with mu_ held

  mutable std::mutex mu_;
  int fd_;
  RunDescription run_;
  std::vector<std::string> step_names_;
  const GuardProgress* guards_ = nullptr;
  bool guard_reported_ = false;
  std::string pending_;
  uint64_t dropped_ = 0;
  bool broken_ = false;  // the reader went away (EPIPE)
};

}  // namespace millstone::cli
