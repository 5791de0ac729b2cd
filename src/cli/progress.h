#pragma once
// The live progress line: rewritten in place on a terminal, one line every
// few seconds otherwise (CI logs, pipes).
#include <cstdio>
#include <vector>

#include "cluster/coordinator.h"

namespace millstone::cli {

class ConsoleProgress final : public cluster::ProgressSink {
 public:
  ConsoleProgress(std::FILE* out, bool terminal, double planned_s);
  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot& total) override;
  void on_finish() override;

  static constexpr uint64_t kLineEverySeconds = 5;

 private:
  std::FILE* out_;
  bool terminal_;
  double planned_s_;
  bool line_open_ = false;
};

// Passes each second on to several sinks (the console line, the live
// Prometheus exporter...).
class FanoutProgress final : public cluster::ProgressSink {
 public:
  void add(cluster::ProgressSink* sink) { sinks_.push_back(sink); }
  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot& total) override {
    for (cluster::ProgressSink* sink : sinks_)
      sink->on_second(index, second, total);
  }
  void on_finish() override {
    for (cluster::ProgressSink* sink : sinks_)
      sink->on_finish();
  }
  void on_start(int64_t start_ns) override {
    for (cluster::ProgressSink* sink : sinks_)
      sink->on_start(start_ns);
  }

 private:
  std::vector<cluster::ProgressSink*> sinks_;
};

}  // namespace millstone::cli
