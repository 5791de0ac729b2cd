#include "cli/live_events.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/clock.h"

namespace millstone::cli {

namespace {

const char* drill_kind_name(drill::DrillEvent::Kind kind) {
  using Kind = drill::DrillEvent::Kind;
  switch (kind) {
    case Kind::kStarted:
      return "started";
    case Kind::kStartFailed:
      return "start_failed";
    case Kind::kEnded:
      return "ended";
    case Kind::kEndFailed:
      return "end_failed";
    case Kind::kNotStarted:
      return "not_started";
  }
  return "unknown";
}

}  // namespace

std::unique_ptr<LiveEvents> LiveEvents::open(const std::string& path, RunDescription run,
                                             std::vector<std::string> step_names,
                                             std::string* error) {
  int fd = -1;
  // /dev/fd/N: a descriptor the parent passed (`millstone serve` passes a
  // socket, which cannot be opened by path), made non-blocking.
  if (path.rfind("/dev/fd/", 0) == 0 && path.size() > 8 && path.size() < 12 &&
      path.find_first_not_of("0123456789", 8) == std::string::npos) {
    fd = ::fcntl(std::stoi(path.substr(8)), F_DUPFD_CLOEXEC, 3);
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    *error = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  return std::unique_ptr<LiveEvents>(new LiveEvents(fd, std::move(run), std::move(step_names)));
}

LiveEvents::~LiveEvents() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t LiveEvents::dropped_lines() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void LiveEvents::on_start(int64_t) {
  std::lock_guard lock(mu_);
  emit({{"event", "start"}, {"planned_s", static_cast<double>(run_.duration_ms) / 1e3}});
}

void LiveEvents::on_second(uint64_t index, const metrics::Snapshot& second,
                           const metrics::Snapshot& total) {
  nlohmann::json event = second_json(run_, index, second, 1);
  // Steps by name, as in the summary's timeline.
  if (event.contains("steps") && event["steps"].is_array()) {
    nlohmann::json named = nlohmann::json::object();
    for (size_t i = 0; i < event["steps"].size(); ++i) {
      named[i < step_names_.size() ? step_names_[i] : fmt::format("#{}", i)] = event["steps"][i];
    }
    event["steps"] = std::move(named);
  }
  event["event"] = "second";
  event["total"] = {{"requests", total.requests},
                    {"errors", total.errors},
                    {"http_failures", total.http_failures()}};
  std::lock_guard lock(mu_);
  emit(event);
  if (guards_ && !guard_reported_ && guards_->trip()) {
    const scenario::GuardTrip& trip = *guards_->trip();
    guard_reported_ = true;
    emit({{"event", "guard"},
          {"second", trip.second},
          {"failing_s", trip.failing_s},
          {"observed", trip.observed_text},
          {"reason", trip.reason}});
  }
}

void LiveEvents::on_drill_event(const drill::DrillEvent& event) {
  std::lock_guard lock(mu_);
  emit({{"event", "drill"},
        {"drill", event.name},
        {"kind", drill_kind_name(event.kind)},
        {"at_s", event.at_s},
        {"at_run_end", event.at_run_end},
        {"detail", event.detail}});
}

void LiveEvents::on_finish() {
  std::lock_guard lock(mu_);
  const int64_t deadline = net::now_ns() + net::kNsPerSec;
  flush();
  while (!pending_.empty() && !broken_) {
    const int64_t left_ms = (deadline - net::now_ns()) / net::kNsPerMs;
    if (left_ms <= 0) break;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left_ms)) < 0 && errno != EINTR) break;
    flush();
  }
}

void LiveEvents::emit(const nlohmann::json& event) {
  if (broken_) return;
  std::string line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  // Whole lines only: a reader never sees half of one followed by another.
  if (pending_.size() + line.size() > kMaxBuffered) {
    ++dropped_;
    flush();
    return;
  }
  pending_ += line;
  flush();
}

void LiveEvents::flush() {
  while (!pending_.empty()) {
    // A socket whose reader is gone is EPIPE here, not a SIGPIPE that ends the run.
    ssize_t n = ::send(fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_, pending_.data(), pending_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        broken_ = true;
        pending_.clear();
      }
      return;
    }
    pending_.erase(0, static_cast<size_t>(n));
  }
}

}  // namespace millstone::cli
