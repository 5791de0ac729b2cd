#pragma once
// The body of a worker process: receives a RunPlan over its channel, runs the
// load generator on its own event loop, streams one snapshot per second back,
// and obeys Stop. Local workers and (later) remote agents run this same code.
namespace millstone::cluster {

// Returns the process exit code. `control_fd` is the worker's end of the channel.
int run_worker(int control_fd, unsigned worker_index);

}  // namespace millstone::cluster
