#include "mock/control.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "http/syntax.h"
#include "mock/template.h"
#include "net/clock.h"

namespace millstone::mock {
namespace {

using nlohmann::json;

const char* section_of(ControlTarget target) {
  return target == ControlTarget::kHttp ? "http" : "sockets";
}

// The state document; an unreadable one (never written by merge_patch) is empty.
YAML::Node load_state(std::string_view state) {
  if (state.empty()) return YAML::Node(YAML::NodeType::Map);
  try {
    YAML::Node root = YAML::Load(std::string(state));
    if (root.IsMap()) return root;
  } catch (const YAML::Exception&) {
  }
  return YAML::Node(YAML::NodeType::Map);
}

// The patched fields of one route, as a patch document ("" when none).
std::string entry_text(YAML::Node root, ControlTarget target, size_t index) {
  YAML::Node section = root[section_of(target)];
  if (!section.IsMap()) return {};
  YAML::Node entry = section[std::to_string(index)];
  if (!entry.IsMap()) return {};
  return YAML::Dump(entry);
}

std::vector<std::string> changed_fields(std::string_view state, ControlTarget target,
                                        size_t index) {
  std::vector<std::string> fields;
  YAML::Node section = load_state(state)[section_of(target)];
  if (!section.IsMap()) return fields;
  YAML::Node entry = section[std::to_string(index)];
  if (!entry.IsMap()) return fields;
  for (const auto& item : entry)
    fields.push_back(item.first.Scalar());
  return fields;
}

Route effective_route(const MockConfig& file, YAML::Node root, size_t index) {
  Route route = file.routes[index];
  const std::string text = entry_text(root, ControlTarget::kHttp, index);
  PatchError ignored;
  if (!text.empty()) patch_route(text, "state", file, &route, &ignored);
  return route;
}

const SocketRoute& file_socket(const MockConfig& config, size_t row) {
  return row < config.websockets.size() ? config.websockets[row]
                                        : config.tcp[row - config.websockets.size()];
}

SocketRoute effective_socket(const MockConfig& file, YAML::Node root, size_t row) {
  SocketRoute route = file_socket(file, row);
  const std::string text = entry_text(root, ControlTarget::kSocket, row);
  PatchError ignored;
  if (!text.empty()) patch_socket_route(text, "state", &route, &ignored);
  return route;
}

json latency_json(const LatencyModel& m) {
  using D = LatencyModel::Distribution;
  const auto us = [](double v) { return std::llround(v); };
  switch (m.distribution) {
    case D::kFixed:
      return {{"distribution", "fixed"}, {"value_us", us(m.value_us)}};
    case D::kUniform:
      return {{"distribution", "uniform"}, {"min_us", us(m.min_us)}, {"max_us", us(m.max_us)}};
    case D::kNormal:
      return {
          {"distribution", "normal"}, {"mean_us", us(m.mean_us)}, {"stddev_us", us(m.stddev_us)}};
    case D::kLognormal:
      return {{"distribution", "lognormal"}, {"median_us", us(std::exp(m.mu))}, {"sigma", m.sigma}};
    case D::kExponential:
      return {{"distribution", "exponential"}, {"mean_us", us(m.mean_us)}};
  }
  return {};
}

json error_json(const ErrorRule& rule) {
  json out = {{"rate", rule.rate}};
  switch (rule.kind) {
    case ErrorRule::kStatus:
      out["status"] = rule.status;
      break;
    case ErrorRule::kReset:
      out["reset"] = true;
      break;
    case ErrorRule::kStall:
      if (rule.stall_us == kStallForever) {
        out["stall"] = "forever";
      } else {
        out["stall_us"] = rule.stall_us;
      }
      break;
  }
  return out;
}

json route_object(const Route& route, std::string_view state, size_t index) {
  json errors = json::array();
  for (const ErrorRule& rule : route.errors)
    errors.push_back(error_json(rule));
  return {{"name", route.name},
          {"method", route.method},
          {"path", route.path + (route.prefix ? "*" : "")},
          {"status", route.status},
          {"latency", latency_json(route.latency)},
          {"errors", std::move(errors)},
          {"changed", changed_fields(state, ControlTarget::kHttp, index)}};
}

json socket_object(const MockConfig& config, const SocketRoute& route, std::string_view state,
                   size_t row) {
  const bool ws = row < config.websockets.size();
  json out = {{"name", route.name}, {"kind", ws ? "websocket" : "tcp"}};
  out[ws ? "path" : "listen"] = ws ? route.path : route.listen_text;
  out["push"] = route.push ? json{{"every_us", route.push->every_us}} : json(nullptr);
  out["changed"] = changed_fields(state, ControlTarget::kSocket, row);
  return out;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ControlAnswer error_answer(int status, std::string_view message, std::string_view field = {}) {
  json j = {{"error", message}};
  if (!field.empty()) j["field"] = field;
  return ControlAnswer{status, dump(j) + "\n"};
}

}  // namespace

bool merge_patch(const MockConfig& file, std::string_view state, ControlTarget target, size_t index,
                 std::string_view body, std::string* merged, PatchError* error) {
  YAML::Node root = load_state(state);
  // Validated on what the route would become, by the config parser's code.
  if (target == ControlTarget::kHttp) {
    Route route = effective_route(file, root, index);
    if (!patch_route(body, "body", file, &route, error)) return false;
  } else {
    SocketRoute route = effective_socket(file, root, index);
    if (!patch_socket_route(body, "body", &route, error)) return false;
  }
  YAML::Node patch;
  try {
    patch = YAML::Load(std::string(body));
  } catch (const YAML::Exception& e) {
    *error = PatchError{"", fmt::format("body: invalid YAML: {}", e.msg)};
    return false;
  }
  if (!patch.IsMap()) {  // an empty body: a valid patch that changes nothing
    *merged = std::string(state);
    return true;
  }
  YAML::Node section = root[section_of(target)];
  if (!section.IsMap()) {
    root[section_of(target)] = YAML::Node(YAML::NodeType::Map);
    section = root[section_of(target)];
  }
  const std::string key = std::to_string(index);
  YAML::Node entry = section[key];
  if (!entry.IsMap()) {
    section[key] = YAML::Node(YAML::NodeType::Map);
    entry = section[key];
  }
  for (const auto& item : patch) {
    const std::string field = item.first.Scalar();
    if (item.second.IsNull()) {
      entry.remove(field);
    } else {
      entry[field] = YAML::Clone(item.second);
    }
  }
  if (entry.size() == 0) section.remove(key);
  if (section.size() == 0) root.remove(section_of(target));
  *merged = root.size() == 0 ? std::string() : YAML::Dump(root);
  if (merged->size() > kMaxControlStateBytes) {
    *error = PatchError{"", fmt::format("body: the routes' changes would take {} bytes; expected "
                                        "at most {} (reset some routes first)",
                                        merged->size(), kMaxControlStateBytes)};
    return false;
  }
  return true;
}

std::string reset_route(std::string_view state, ControlTarget target, size_t index) {
  YAML::Node root = load_state(state);
  YAML::Node section = root[section_of(target)];
  if (!section.IsMap()) return std::string(state);
  section.remove(std::to_string(index));
  if (section.size() == 0) root.remove(section_of(target));
  return root.size() == 0 ? std::string() : YAML::Dump(root);
}

MockConfig apply_state(const MockConfig& file, std::string_view state) {
  MockConfig config = file;
  if (state.empty()) return config;
  YAML::Node root = load_state(state);
  for (ControlTarget target : {ControlTarget::kHttp, ControlTarget::kSocket}) {
    YAML::Node section = root[section_of(target)];
    if (!section.IsMap()) continue;
    for (const auto& item : section) {
      size_t index = 0;
      const std::string& key = item.first.Scalar();
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
      if (ec != std::errc() || end != key.data() + key.size()) continue;
      if (target == ControlTarget::kHttp && index < file.routes.size()) {
        config.routes[index] = effective_route(file, root, index);
      } else if (target == ControlTarget::kSocket &&
                 index < file.websockets.size() + file.tcp.size()) {
        SocketRoute route = effective_socket(file, root, index);
        (index < file.websockets.size() ? config.websockets[index]
                                        : config.tcp[index - file.websockets.size()]) =
            std::move(route);
      }
    }
  }
  return config;
}

std::string route_json(const Route& route, std::string_view state, size_t index) {
  return dump(route_object(route, state, index));
}

std::string socket_route_json(const MockConfig& config, std::string_view state, size_t index) {
  return dump(socket_object(config, file_socket(config, index), state, index));
}

std::string routes_json(const MockConfig& effective, std::string_view state, uint64_t generation) {
  json routes = json::array();
  for (size_t i = 0; i < effective.routes.size(); ++i)
    routes.push_back(route_object(effective.routes[i], state, i));
  json sockets = json::array();
  for (size_t i = 0; i < effective.websockets.size() + effective.tcp.size(); ++i)
    sockets.push_back(socket_object(effective, file_socket(effective, i), state, i));
  return dump({{"generation", generation}, {"routes", routes}, {"sockets", sockets}}) + "\n";
}

// ---------------------------------------------------------------- shared memory

struct SharedControl::Block {
  pthread_mutex_t mutex;
  std::atomic<uint64_t> generation{0};
  uint64_t size = 0;  // of the state text, under the mutex
};

SharedControl::SharedControl(uint32_t workers) : workers_(workers) {
  const size_t header = (sizeof(Block) + 63) / 64 * 64;
  const size_t applied = sizeof(std::atomic<uint64_t>) * workers;
  bytes_ = header + applied + kMaxControlStateBytes;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  block_ = new (p) Block();
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  // A worker that dies holding it does not wedge the others.
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&block_->mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  applied_ = reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(p) + header);
  for (uint32_t w = 0; w < workers; ++w)
    new (&applied_[w]) std::atomic<uint64_t>(0);
  text_ = static_cast<char*>(p) + header + applied;
  for (uint32_t w = 0; w < workers; ++w) {
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) wake_ok_ = false;
    wake_fds_.push_back(fd);
  }
}

SharedControl::~SharedControl() {
  for (int fd : wake_fds_)
    if (fd >= 0) close(fd);
  if (block_) munmap(block_, bytes_);
}

bool SharedControl::lock() {
  // Bounded: a worker stuck with the lock must not stop the others' event
  // loops for good (their callers answer 503 instead).
  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 1;
  const int r = pthread_mutex_timedlock(&block_->mutex, &deadline);
  if (r == EOWNERDEAD) {
    // The state is written in one memcpy after validation, then its size:
    // the old or the new text, readable either way.
    pthread_mutex_consistent(&block_->mutex);
    return true;
  }
  return r == 0;
}

void SharedControl::unlock() {
  pthread_mutex_unlock(&block_->mutex);
}

uint64_t SharedControl::generation() const {
  return block_->generation.load(std::memory_order_acquire);
}

uint64_t SharedControl::read(std::string* state) {
  if (!lock()) return UINT64_MAX;
  state->assign(text_, block_->size);
  const uint64_t generation = block_->generation.load(std::memory_order_relaxed);
  unlock();
  return generation;
}

uint64_t SharedControl::update(
    const std::function<bool(const std::string& state, std::string* next)>& change) {
  if (!lock()) return 0;
  const std::string state(text_, block_->size);
  std::string next;
  uint64_t generation = 0;
  bool changed = false;
  try {
    changed = change(state, &next);
  } catch (const std::exception&) {
    // A bug, not the client's: nothing is stored, the lock is released.
  }
  if (changed && next.size() <= kMaxControlStateBytes) {
    std::memcpy(text_, next.data(), next.size());
    block_->size = next.size();
    generation = block_->generation.load(std::memory_order_relaxed) + 1;
    block_->generation.store(generation, std::memory_order_release);
  }
  unlock();
  return generation;
}

void SharedControl::wake_all() {
  const uint64_t one = 1;
  for (int fd : wake_fds_)
    (void)!write(fd, &one, sizeof one);
}

void SharedControl::wake(uint32_t worker) {
  const uint64_t one = 1;
  if (worker < wake_fds_.size()) (void)!write(wake_fds_[worker], &one, sizeof one);
}

void SharedControl::set_applied(uint32_t worker, uint64_t generation) {
  applied_[worker].store(generation, std::memory_order_release);
}

uint32_t SharedControl::applied_count(uint64_t generation) const {
  uint32_t n = 0;
  for (uint32_t w = 0; w < workers_; ++w)
    if (applied_[w].load(std::memory_order_acquire) >= generation) ++n;
  return n;
}

// ---------------------------------------------------------------- HTTP side

ControlApi::ControlApi(const MockConfig& file, SharedControl& shared, std::string token,
                       std::function<void()> apply_pending)
    : file_(file),
      shared_(shared),
      token_(std::move(token)),
      apply_pending_(std::move(apply_pending)) {}

std::optional<ControlAnswer> ControlApi::handle(std::string_view method, std::string_view target,
                                                std::string_view authorization,
                                                std::string_view body) {
  if (!target.starts_with(kControlPrefix)) return std::nullopt;
  const std::string_view rest = target.substr(0, target.find('?')).substr(kControlPrefix.size());
  const bool read = method == "GET" || method == "HEAD";
  const bool change = method == "PATCH" || method == "POST";
  std::optional<ControlTarget> kind;
  std::string_view name;
  if (rest == "routes" || rest == "sockets") {
    if (!read) return error_answer(405, fmt::format("{} is read with GET", target));
    std::string state;
    const uint64_t generation = shared_.read(&state);
    if (generation == UINT64_MAX)
      return error_answer(503, "the control state is locked; try again");
    return ControlAnswer{200, routes_json(apply_state(file_, state), state, generation)};
  }
  if (rest == "reset") {
    if (method != "POST") return error_answer(405, "POST /__millstone/reset resets every route");
  } else if (rest.starts_with("routes/")) {
    kind = ControlTarget::kHttp;
    name = rest.substr(7);
  } else if (rest.starts_with("sockets/")) {
    kind = ControlTarget::kSocket;
    name = rest.substr(8);
  } else {
    return std::nullopt;  // not ours: the file's routes may answer it
  }
  if (!read && !token_.empty() && !http::syntax::bearer_matches(authorization, token_)) {
    return error_answer(401,
                        "changes need the mock's --control-token; expected a header "
                        "Authorization: Bearer TOKEN");
  }
  if (!kind) return reset_all();

  std::string decoded;
  append_url_decoded(name, false, &decoded);
  size_t index = 0;
  bool found = false;
  if (*kind == ControlTarget::kHttp) {
    for (; index < file_.routes.size(); ++index)
      if (file_.routes[index].name == decoded) {
        found = true;
        break;
      }
  } else {
    for (; index < file_.websockets.size() + file_.tcp.size(); ++index)
      if (file_socket(file_, index).name == decoded) {
        found = true;
        break;
      }
  }
  if (!found) {
    return error_answer(404,
                        fmt::format("no {} route is named \"{}\"; GET /__millstone/routes "
                                    "lists them (names are percent-encoded in the path)",
                                    *kind == ControlTarget::kHttp ? "HTTP" : "socket", decoded));
  }
  if (read) return current(*kind, index, 0);
  if (change) return this->change(*kind, index, body);
  if (method == "DELETE") return this->change(*kind, index, std::nullopt);
  return error_answer(405, fmt::format("{} is not a control method; expected GET, PATCH (or "
                                       "POST) with a JSON body, or DELETE",
                                       method));
}

ControlAnswer ControlApi::change(ControlTarget target, size_t index,
                                 std::optional<std::string_view> body) {
  PatchError error;
  const uint64_t generation = shared_.update([&](const std::string& state, std::string* next) {
    if (!body) {
      *next = reset_route(state, target, index);
      return true;
    }
    return merge_patch(file_, state, target, index, *body, next, &error);
  });
  if (generation == 0) {
    if (error.message.empty()) {
      return error_answer(503,
                          "the change could not be stored (the control state is locked); "
                          "try again");
    }
    return error_answer(400, error.message, error.field);
  }
  return wait_applied(generation, target, index);
}

ControlAnswer ControlApi::reset_all() {
  const uint64_t generation = shared_.update([](const std::string&, std::string* next) {
    next->clear();
    return true;
  });
  if (generation == 0) {
    return error_answer(503,
                        "the reset could not be stored (the control state is locked); "
                        "try again");
  }
  return wait_applied(generation, ControlTarget::kHttp, SIZE_MAX);
}

// Answers once every worker serves the new generation, so that a request
// sent after the answer meets the change whichever worker takes it.
ControlAnswer ControlApi::wait_applied(uint64_t generation, ControlTarget target, size_t index) {
  static constexpr int64_t kWaitNs = net::kNsPerSec;
  apply_pending_();
  shared_.wake_all();
  const int64_t give_up = net::now_ns() + kWaitNs;
  while (shared_.applied_count(generation) < shared_.workers() && net::now_ns() < give_up) {
    usleep(100);
    apply_pending_();  // another worker's change may be what they are applying first
  }
  const uint32_t applied = shared_.applied_count(generation);
  if (applied < shared_.workers()) {
    return error_answer(503, fmt::format("the change (generation {}) is stored, but only {} of {} "
                                         "workers applied it within 1 s",
                                         generation, applied, shared_.workers()));
  }
  if (index == SIZE_MAX) {
    std::string state;
    const uint64_t now = shared_.read(&state);
    return ControlAnswer{200, routes_json(apply_state(file_, state), state, now)};
  }
  return current(target, index, generation);
}

ControlAnswer ControlApi::current(ControlTarget target, size_t index, uint64_t generation) {
  std::string state;
  const uint64_t now = shared_.read(&state);
  if (now == UINT64_MAX) return error_answer(503, "the control state is locked; try again");
  YAML::Node root = load_state(state);
  json out = {{"generation", std::max(generation, now)}, {"workers", shared_.workers()}};
  if (target == ControlTarget::kHttp) {
    out["route"] = route_object(effective_route(file_, root, index), state, index);
  } else {
    out["socket"] = socket_object(file_, effective_socket(file_, root, index), state, index);
  }
  return ControlAnswer{200, dump(out) + "\n"};
}

}  // namespace millstone::mock
