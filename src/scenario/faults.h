#pragma once
// What a run's drills did, as the SLO phases see it: one window per fault
// (issue 12). The drill scheduler produces them; the SLO judge cuts the run
// into phases with them (before the first fault, during each, after it).
#include <string>
#include <vector>

namespace millstone::scenario {

struct FaultWindow {
  std::string name;    // the drill's name from the scenario file
  double start_s = 0;  // seconds since the run's start instant
  double end_s = -1;   // < 0: still on when the run ended
  bool ended() const { return end_s >= 0; }
};

using FaultWindows = std::vector<FaultWindow>;

}  // namespace millstone::scenario
