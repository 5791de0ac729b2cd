#pragma once
// How much one per-interval Snapshot may hold. The wire codec refuses a
// snapshot beyond these (a bad peer must not make the coordinator allocate a
// histogram per step for millions of steps), so the scenario loader refuses a
// file beyond them: a plan that loads is a plan whose snapshots arrive.
// One place for both, so they cannot drift apart.
#include <cstddef>

namespace millstone::metrics {

inline constexpr size_t kMaxSnapshotSteps = 1024;   // step metrics (requests and socket steps)
inline constexpr size_t kMaxSnapshotChecks = 4096;  // named checks
inline constexpr size_t kMaxSnapshotFlows = 256;    // flows

}  // namespace millstone::metrics
