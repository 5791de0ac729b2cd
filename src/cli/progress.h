#pragma once
// The live progress line: rewritten in place on a terminal, one line every
// few seconds otherwise (CI logs, pipes).
#include <cstdio>

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

}  // namespace millstone::cli
