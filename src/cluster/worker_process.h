#pragma once
// The body of a worker process: says Hello over its link, receives Start (its
// share of the plan, the start instant, the data files), builds its workload,
// answers Ack, runs on its own event loop from the start instant, streams one
// snapshot per second of the coordinator's clock through a non-blocking
// outbox, and obeys Stop. Local workers and (later) remote agents run this code.
#include <cstdint>

#include "cluster/link.h"
#include "cluster/wire.h"
#include "net/clock.h"

namespace millstone::cluster {

struct WorkerOptions {
  // How long the coordinator may take to answer Hello with Start.
  int64_t start_timeout_ns = 60 * net::kNsPerSec;
  // Added to the coordinator's start instant to get this machine's clock
  // (0 for a local worker, which shares CLOCK_MONOTONIC; measured for an agent).
  int64_t clock_offset_ns = 0;
  // How long the final snapshots and Done may take to leave after the run.
  int64_t drain_timeout_ns = 10 * net::kNsPerSec;
  size_t max_pending_snapshots = SnapshotOutbox::kDefaultMaxPending;
  size_t outbox_high_water = SnapshotOutbox::kDefaultHighWater;
};

// Runs one worker's part of a run over `link`, announcing itself with
// `hello`. Returns the process exit code (0 ok, 1 failed; the coordinator
// was told why with an Error when the link still worked).
int serve_worker(WorkerLink& link, const Hello& hello, const WorkerOptions& options);

// A local worker: `control_fd` is its end of the socketpair.
int run_worker(int control_fd, unsigned worker_index);

}  // namespace millstone::cluster
