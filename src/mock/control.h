#pragma once
// The mock's control API (docs/mock.md#control-api): a route's latency,
// status, error rules, or a socket route's push interval, changed while the
// mock serves, in every worker process.
//
// What is in force lives in shared memory as one YAML document, the patched
// fields per route over the file's config:
//   {http: {INDEX: {status: ..., latency: ..., errors: [...]}},
//    sockets: {INDEX: {push: {every: ...}}}}
// The worker that takes a control request validates the patch with the
// config parser's own code, merges it under a process-shared mutex, bumps the
// generation and wakes every worker through its eventfd. Each worker then
// reads the document once and builds its own immutable route table, swapped
// in between requests: requests never take a lock or read shared memory.
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "mock/config.h"

namespace millstone::mock {

inline constexpr std::string_view kControlPrefix = "/__millstone/";
// The largest control state: a patch is at most kMaxPatchBytes, and each
// route keeps only its last value per field.
inline constexpr size_t kMaxControlStateBytes = 4 << 20;

enum class ControlTarget : uint8_t { kHttp, kSocket };

// Validates `body` as a patch of route `index` (what the route would become,
// applied over `state`) and returns the merged state, or false with *error.
bool merge_patch(const MockConfig& file, std::string_view state, ControlTarget target, size_t index,
                 std::string_view body, std::string* merged, PatchError* error);
// The state with route `index` back to the file's config.
std::string reset_route(std::string_view state, ControlTarget target, size_t index);
// The file's config with the state applied: what the workers serve. A state
// written by merge_patch always applies; anything else yields the file's config.
MockConfig apply_state(const MockConfig& file, std::string_view state);
// JSON of one route as it is served now; `changed` lists the patched fields.
std::string route_json(const Route& route, std::string_view state, size_t index);
std::string socket_route_json(const MockConfig& config, std::string_view state, size_t index);
// GET /__millstone/routes.
std::string routes_json(const MockConfig& effective, std::string_view state, uint64_t generation);

// The shared part: the state text, its generation, a process-shared mutex,
// one eventfd per worker and the generation each worker has applied.
// Created before the workers fork.
class SharedControl {
 public:
  explicit SharedControl(uint32_t workers);
  ~SharedControl();
  SharedControl(const SharedControl&) = delete;
  SharedControl& operator=(const SharedControl&) = delete;

  bool ok() const { return block_ != nullptr && wake_ok_; }
  uint32_t workers() const { return workers_; }
  int wake_fd(uint32_t worker) const { return wake_fds_[worker]; }
  // A lock-free look at the generation (a worker's "anything new?").
  uint64_t generation() const;
  // A consistent copy of the state and its generation; UINT64_MAX when the
  // lock could not be had within 1 s.
  uint64_t read(std::string* state);
  // Under the lock: `change` turns the state into the next one (or returns
  // false, leaving everything as it was). Returns the new generation, or 0
  // (also when the lock could not be had within 1 s).
  uint64_t update(const std::function<bool(const std::string& state, std::string* next)>& change);
  void wake_all();
  // Wakes one worker (it applies the control state and accepts what waits:
  // a worker out of descriptors hands its waiting connections over this way).
  void wake(uint32_t worker);
  void set_applied(uint32_t worker, uint64_t generation);
  uint32_t applied_count(uint64_t generation) const;

 private:
  struct Block;
  bool lock();
  void unlock();

  uint32_t workers_;
  size_t bytes_ = 0;
  Block* block_ = nullptr;
  std::atomic<uint64_t>* applied_ = nullptr;
  char* text_ = nullptr;
  std::vector<int> wake_fds_;
  bool wake_ok_ = true;
};

struct ControlAnswer {
  int status = 200;
  std::string json;
};

// The HTTP side, one per worker. `apply_pending` makes the worker serve the
// newest generation (and mark it applied); it is called while a change waits
// for the other workers, so that two workers changing routes at once never
// wait for each other.
class ControlApi {
 public:
  ControlApi(const MockConfig& file, SharedControl& shared, std::string token,
             std::function<void()> apply_pending);
  // Not a control path (stats and unknown /__millstone/ paths included): nothing.
  std::optional<ControlAnswer> handle(std::string_view method, std::string_view target,
                                      std::string_view authorization, std::string_view body);

 private:
  ControlAnswer change(ControlTarget target, size_t index, std::optional<std::string_view> body);
  ControlAnswer reset_all();
  ControlAnswer wait_applied(uint64_t generation, ControlTarget target, size_t index);
  ControlAnswer current(ControlTarget target, size_t index, uint64_t generation);

  const MockConfig& file_;
  SharedControl& shared_;
  std::string token_;
  std::function<void()> apply_pending_;
};

}  // namespace millstone::mock
