#include "proxy/toxic.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "net/clock.h"

namespace millstone::proxy {

std::optional<ToxicType> parse_toxic_type(std::string_view name) {
  if (name == "latency") return ToxicType::kLatency;
  if (name == "bandwidth") return ToxicType::kBandwidth;
  if (name == "slow_close") return ToxicType::kSlowClose;
  if (name == "timeout") return ToxicType::kTimeout;
  if (name == "reset_peer") return ToxicType::kResetPeer;
  if (name == "slicer") return ToxicType::kSlicer;
  if (name == "limit_data") return ToxicType::kLimitData;
  return std::nullopt;
}

const char* toxic_type_name(ToxicType type) {
  switch (type) {
    case ToxicType::kLatency:
      return "latency";
    case ToxicType::kBandwidth:
      return "bandwidth";
    case ToxicType::kSlowClose:
      return "slow_close";
    case ToxicType::kTimeout:
      return "timeout";
    case ToxicType::kResetPeer:
      return "reset_peer";
    case ToxicType::kSlicer:
      return "slicer";
    case ToxicType::kLimitData:
      return "limit_data";
  }
  return "unknown";
}

std::optional<Direction> parse_direction(std::string_view name) {
  if (name == "upstream") return Direction::kUpstream;
  if (name == "downstream") return Direction::kDownstream;
  return std::nullopt;
}

const char* direction_name(Direction direction) {
  return direction == Direction::kUpstream ? "upstream" : "downstream";
}

std::string validate_toxic(const ToxicSpec& spec) {
  if (!(spec.toxicity >= 0 && spec.toxicity <= 1)) {
    return "toxicity must be a probability from 0 to 1";
  }
  const ToxicAttributes& a = spec.attributes;
  auto milliseconds = [](const char* name, int64_t value) -> std::string {
    if (value < 0) return fmt::format("attributes.{} must not be negative (milliseconds)", name);
    if (value > kMaxToxicMilliseconds) {
      return fmt::format("attributes.{} must be at most {} (30 days in milliseconds)", name,
                         kMaxToxicMilliseconds);
    }
    return {};
  };
  std::string error;
  switch (spec.type) {
    case ToxicType::kLatency:
      error = milliseconds("latency", a.latency);
      if (error.empty()) error = milliseconds("jitter", a.jitter);
      break;
    case ToxicType::kBandwidth:
      if (a.rate < 0) error = "attributes.rate must not be negative (KB/s)";
      break;
    case ToxicType::kSlowClose:
      error = milliseconds("delay", a.delay);
      break;
    case ToxicType::kTimeout:
    case ToxicType::kResetPeer:
      error = milliseconds("timeout", a.timeout);
      break;
    case ToxicType::kSlicer:
      if (a.average_size < 1) {
        error = "attributes.average_size must be at least 1 (bytes)";
      } else if (a.size_variation < 0 || a.size_variation >= a.average_size) {
        error = fmt::format("attributes.size_variation must be from 0 to below average_size ({})",
                            a.average_size);
      } else if (a.delay < 0 || a.delay > kMaxToxicMilliseconds * 1000) {
        error = "attributes.delay must be from 0 to 30 days (microseconds)";
      }
      break;
    case ToxicType::kLimitData:
      if (a.bytes < 0) error = "attributes.bytes must not be negative";
      break;
  }
  return error;
}

namespace {

constexpr int64_t ms_to_ns(int64_t ms) {
  return ms * net::kNsPerMs;
}

bool is_close(const Piece& piece) {
  return piece.kind == Piece::Kind::kEnd || piece.kind == Piece::Kind::kClose;
}

// A FIFO of pieces, each with the time it may leave. Most stages decide that
// time on arrival and keep the times non-decreasing, so the order of the
// byte stream is kept whatever the draws.
class TimedQueue {
 public:
  void push(Piece piece, int64_t ready) {
    ready = std::max(ready, last_ready_);
    last_ready_ = ready;
    bytes_ += piece.bytes.size();
    items_.push_back({ready, std::move(piece)});
  }
  int64_t next_ready() const { return items_.empty() ? kNever : items_.front().ready; }
  Piece pop() {
    Piece piece = std::move(items_.front().piece);
    items_.pop_front();
    bytes_ -= piece.bytes.size();
    return piece;
  }
  void take_all(std::deque<Piece>* out) {
    for (Item& item : items_)
      out->push_back(std::move(item.piece));
    items_.clear();
    bytes_ = 0;
    last_ready_ = 0;
  }
  size_t bytes() const { return bytes_; }
  bool empty() const { return items_.empty(); }

 private:
  struct Item {
    int64_t ready;
    Piece piece;
  };
  std::deque<Item> items_;
  int64_t last_ready_ = 0;
  size_t bytes_ = 0;
};

// A toxic the connection's toxicity draw skipped: everything passes at once,
// in order. It keeps the toxic's place in the chain for updates and removal.
class PassStage final : public ToxicStage {
 public:
  void push(Piece piece, int64_t now) override { queue_.push(std::move(piece), now); }
  int64_t next_ready() const override { return queue_.next_ready(); }
  Piece pop() override { return queue_.pop(); }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes&, int64_t) override {}

 private:
  TimedQueue queue_;
};

// latency: each piece leaves latency +/- jitter after it arrived, never before
// the piece ahead of it (Toxiproxy's LatencyToxic sleeps per chunk, in order).
// A FIN is not delayed beyond the data ahead of it.
class LatencyStage final : public ToxicStage {
 public:
  LatencyStage(const ToxicAttributes& a, random::Prng& prng) : attributes_(a), prng_(prng) {}
  void push(Piece piece, int64_t now) override {
    int64_t ready = now;
    if (piece.kind == Piece::Kind::kData) ready += delay_ns();
    queue_.push(std::move(piece), ready);
  }
  int64_t next_ready() const override { return queue_.next_ready(); }
  Piece pop() override { return queue_.pop(); }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes& a, int64_t) override { attributes_ = a; }

 private:
  int64_t delay_ns() {
    int64_t delay = ms_to_ns(attributes_.latency);
    if (attributes_.jitter > 0) {
      // Uniform in [-jitter, +jitter), at nanosecond resolution (Toxiproxy
      // draws whole milliseconds).
      const int64_t span = 2 * ms_to_ns(attributes_.jitter);
      delay += static_cast<int64_t>(random::uniform_below(prng_, static_cast<uint64_t>(span))) -
               ms_to_ns(attributes_.jitter);
    }
    return std::max<int64_t>(delay, 0);
  }

  ToxicAttributes attributes_;
  random::Prng& prng_;
  TimedQueue queue_;
};

// slow_close: data passes at once; the close (FIN, or a toxic's close) waits
// `delay`.
class SlowCloseStage final : public ToxicStage {
 public:
  explicit SlowCloseStage(const ToxicAttributes& a) : attributes_(a) {}
  void push(Piece piece, int64_t now) override {
    const int64_t ready = is_close(piece) ? now + ms_to_ns(attributes_.delay) : now;
    queue_.push(std::move(piece), ready);
  }
  int64_t next_ready() const override { return queue_.next_ready(); }
  Piece pop() override { return queue_.pop(); }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes& a, int64_t) override { attributes_ = a; }

 private:
  ToxicAttributes attributes_;
  TimedQueue queue_;
};

// A queue whose head is handed on in parts (bandwidth, slicer): pieces with
// their arrival times and how much of the head has gone.
class PartQueue {
 public:
  struct Item {
    int64_t arrival;
    Piece piece;
  };
  void push(Piece piece, int64_t now) {
    bytes_ += piece.bytes.size();
    items_.push_back({now, std::move(piece)});
  }
  bool empty() const { return items_.empty(); }
  const Item& head() const { return items_.front(); }
  size_t head_left() const { return items_.front().piece.bytes.size() - offset_; }
  size_t offset() const { return offset_; }
  // Takes `n` bytes of the head (all of a non-data head when n is 0).
  Piece take(size_t n) {
    Item& item = items_.front();
    if (item.piece.kind != Piece::Kind::kData) {
      Piece piece = std::move(item.piece);
      items_.pop_front();
      return piece;
    }
    Piece part = Piece::data(item.piece.bytes.substr(offset_, n));
    offset_ += n;
    bytes_ -= n;
    if (offset_ == item.piece.bytes.size()) {
      items_.pop_front();
      offset_ = 0;
    }
    return part;
  }
  void take_all(std::deque<Piece>* out) {
    for (size_t i = 0; i < items_.size(); ++i) {
      Piece& piece = items_[i].piece;
      if (i == 0 && offset_ > 0) piece.bytes.erase(0, offset_);
      out->push_back(std::move(piece));
    }
    items_.clear();
    offset_ = 0;
    bytes_ = 0;
  }
  size_t bytes() const { return bytes_; }

 private:
  std::deque<Item> items_;
  size_t offset_ = 0;
  size_t bytes_ = 0;
};

// bandwidth: at most `rate` KB/s (rate bytes per millisecond). The stream is
// handed on in parts of 10 ms worth of bytes, each when it would have finished
// crossing a link of that rate; idle time earns no burst (as Toxiproxy's
// BandwidthToxic). Rate 0 passes nothing until the toxic goes, which is what
// Toxiproxy does too (it loops on empty chunks).
class BandwidthStage final : public ToxicStage {
 public:
  explicit BandwidthStage(const ToxicAttributes& a) : attributes_(a) {}
  void push(Piece piece, int64_t now) override { queue_.push(std::move(piece), now); }
  int64_t next_ready() const override {
    if (queue_.empty()) return kNever;
    const auto& head = queue_.head();
    const int64_t start = std::max(cursor_, head.arrival);
    if (head.piece.kind != Piece::Kind::kData) return start;
    if (attributes_.rate <= 0) return kNever;
    return start + transfer_ns(part_size());
  }
  Piece pop() override {
    const int64_t ready = next_ready();
    const bool data = queue_.head().piece.kind == Piece::Kind::kData;
    Piece piece = queue_.take(data ? part_size() : 0);
    cursor_ = ready;
    return piece;
  }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes& a, int64_t now) override {
    attributes_ = a;
    cursor_ = now;
  }

 private:
  size_t part_size() const {
    // 10 ms worth of bytes; at least one.
    const int64_t rate = attributes_.rate;
    const size_t quantum = rate >= std::numeric_limits<int64_t>::max() / 10
                               ? SIZE_MAX
                               : static_cast<size_t>(rate * 10);
    return std::clamp<size_t>(queue_.head_left(), 1, std::max<size_t>(quantum, 1));
  }
  int64_t transfer_ns(size_t bytes) const {
    // bytes / (rate bytes per ms), in ns.
    __extension__ using Wide = __int128;
    return static_cast<int64_t>(static_cast<Wide>(bytes) * net::kNsPerMs / attributes_.rate);
  }

  ToxicAttributes attributes_;
  PartQueue queue_;
  int64_t cursor_ = 0;  // when the simulated link is free again
};

// slicer: each piece is cut into slices of about average_size (+/-
// size_variation) bytes, `delay` microseconds apart, by Toxiproxy's
// SlicerToxic.chunk(): halve around the middle (moved by up to the
// variation) until a part is within the variation of the average.
class SlicerStage final : public ToxicStage {
 public:
  SlicerStage(const ToxicAttributes& a, random::Prng& prng) : attributes_(a), prng_(prng) {}
  void push(Piece piece, int64_t now) override {
    queue_.push(std::move(piece), now);
    plan_head();
  }
  int64_t next_ready() const override {
    if (queue_.empty()) return kNever;
    return std::max(cursor_, queue_.head().arrival);
  }
  Piece pop() override {
    const int64_t ready = next_ready();
    Piece piece;
    if (queue_.head().piece.kind == Piece::Kind::kData) {
      piece = queue_.take(slice_end_ - queue_.offset());
      cursor_ = ready + attributes_.delay * net::kNsPerUs;
    } else {
      piece = queue_.take(0);
      cursor_ = ready;
    }
    planned_ = false;
    plan_head();
    return piece;
  }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override {
    queue_.take_all(out);
    ranges_.clear();
    planned_ = false;
  }
  void configure(const ToxicAttributes& a, int64_t now) override {
    attributes_ = a;
    cursor_ = now;
  }

 private:
  // Finds the end of the next slice of the head piece (slice_end_).
  void plan_head() {
    if (planned_ || queue_.empty() || queue_.head().piece.kind != Piece::Kind::kData) return;
    if (queue_.offset() == 0 && ranges_.empty()) {
      ranges_.push_back({0, queue_.head().piece.bytes.size()});
    }
    const int64_t average = attributes_.average_size;
    const int64_t variation = attributes_.size_variation;
    for (;;) {
      auto [start, end] = ranges_.back();
      ranges_.pop_back();
      if (static_cast<int64_t>(end - start) - average <= variation) {
        slice_end_ = end;
        break;
      }
      int64_t mid = static_cast<int64_t>(start + (end - start) / 2);
      if (variation > 0) {
        mid += static_cast<int64_t>(random::uniform_below(prng_, 2 * variation)) - variation;
      }
      // validate_toxic keeps variation below the average, so start < mid < end.
      ranges_.push_back({static_cast<size_t>(mid), end});
      ranges_.push_back({start, static_cast<size_t>(mid)});
    }
    planned_ = true;
  }

  ToxicAttributes attributes_;
  random::Prng& prng_;
  PartQueue queue_;
  std::vector<std::pair<size_t, size_t>> ranges_;  // of the head piece, last = next
  size_t slice_end_ = 0;
  bool planned_ = false;
  int64_t cursor_ = 0;  // the next slice leaves no earlier
};

// limit_data: passes `bytes` bytes in all, then closes the connection. The
// count survives updates (Toxiproxy keeps it as the toxic's per-link state).
class LimitDataStage final : public ToxicStage {
 public:
  explicit LimitDataStage(const ToxicAttributes& a) : attributes_(a) {}
  void push(Piece piece, int64_t now) override {
    if (closed_) {
      if (piece.kind == Piece::Kind::kReset) queue_.push(std::move(piece), now);
      return;
    }
    if (piece.kind == Piece::Kind::kData) {
      const int64_t remaining = std::max<int64_t>(attributes_.bytes - transmitted_, 0);
      if (static_cast<int64_t>(piece.bytes.size()) > remaining) {
        piece.bytes.resize(static_cast<size_t>(remaining));
      }
      transmitted_ += static_cast<int64_t>(piece.bytes.size());
      if (!piece.bytes.empty()) queue_.push(std::move(piece), now);
      if (transmitted_ >= attributes_.bytes) {
        closed_ = true;
        queue_.push(Piece::close(), now);
      }
      return;
    }
    queue_.push(std::move(piece), now);
  }
  int64_t next_ready() const override { return queue_.next_ready(); }
  Piece pop() override { return queue_.pop(); }
  size_t held_bytes() const override { return queue_.bytes(); }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes& a, int64_t) override { attributes_ = a; }

 private:
  ToxicAttributes attributes_;
  TimedQueue queue_;
  int64_t transmitted_ = 0;
  bool closed_ = false;
};

// timeout: drops all data; closes the connection `timeout` after the toxic
// began acting on it (never for 0). A FIN from the sender passes.
class TimeoutStage final : public ToxicStage {
 public:
  TimeoutStage(const ToxicAttributes& a, int64_t now) { configure(a, now); }
  void push(Piece piece, int64_t now) override {
    if (piece.kind == Piece::Kind::kData) return;  // dropped on the floor
    if (fired_ && piece.kind != Piece::Kind::kReset) return;
    queue_.push(std::move(piece), now);
  }
  int64_t next_ready() const override {
    return std::min(queue_.next_ready(), fired_ ? kNever : deadline_);
  }
  Piece pop() override {
    if (queue_.next_ready() <= deadline_ || fired_) return queue_.pop();
    fired_ = true;
    return Piece::close();
  }
  size_t held_bytes() const override { return 0; }
  void take_held(std::deque<Piece>* out, bool removing) override {
    queue_.take_all(out);
    if (removing && !fired_) out->push_back(Piece::close());
  }
  void configure(const ToxicAttributes& a, int64_t now) override {
    deadline_ = a.timeout > 0 ? now + ms_to_ns(a.timeout) : kNever;
  }

 private:
  TimedQueue queue_;
  int64_t deadline_ = kNever;
  bool fired_ = false;
};

// reset_peer: the first piece to arrive (data or FIN) starts `timeout`; data
// is dropped meanwhile; then the connection is reset (RST both ways).
class ResetPeerStage final : public ToxicStage {
 public:
  explicit ResetPeerStage(const ToxicAttributes& a) : attributes_(a) {}
  void push(Piece piece, int64_t now) override {
    if (deadline_ == kNever && !fired_) deadline_ = now + ms_to_ns(attributes_.timeout);
    if (piece.kind == Piece::Kind::kReset) queue_.push(std::move(piece), now);
  }
  int64_t next_ready() const override { return std::min(queue_.next_ready(), deadline_); }
  Piece pop() override {
    if (queue_.next_ready() <= deadline_) return queue_.pop();
    deadline_ = kNever;
    fired_ = true;
    return Piece::reset();
  }
  size_t held_bytes() const override { return 0; }
  void take_held(std::deque<Piece>* out, bool) override { queue_.take_all(out); }
  void configure(const ToxicAttributes& a, int64_t) override {
    // Toxiproxy restarts the toxic: it waits for the next piece again.
    attributes_ = a;
    deadline_ = kNever;
  }

 private:
  ToxicAttributes attributes_;
  TimedQueue queue_;
  int64_t deadline_ = kNever;
  bool fired_ = false;
};

}  // namespace

std::unique_ptr<ToxicStage> make_stage(const ToxicSpec& spec, bool active, random::Prng& prng,
                                       int64_t now_ns) {
  if (!active) return std::make_unique<PassStage>();
  const ToxicAttributes& a = spec.attributes;
  switch (spec.type) {
    case ToxicType::kLatency:
      return std::make_unique<LatencyStage>(a, prng);
    case ToxicType::kBandwidth:
      return std::make_unique<BandwidthStage>(a);
    case ToxicType::kSlowClose:
      return std::make_unique<SlowCloseStage>(a);
    case ToxicType::kTimeout:
      return std::make_unique<TimeoutStage>(a, now_ns);
    case ToxicType::kResetPeer:
      return std::make_unique<ResetPeerStage>(a);
    case ToxicType::kSlicer:
      return std::make_unique<SlicerStage>(a, prng);
    case ToxicType::kLimitData:
      return std::make_unique<LimitDataStage>(a);
  }
  return std::make_unique<PassStage>();
}

}  // namespace millstone::proxy
