#include "proxy/link.h"

#include <algorithm>
#include <utility>

namespace millstone::proxy {

namespace {

// Toxiproxy: rand.Float32() < toxicity, so 1 always acts and 0 never does.
bool draw(random::Prng& prng, double toxicity) {
  return prng.uniform() < toxicity;
}

}  // namespace

size_t Link::find(uint64_t id) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].id == id) return i;
  }
  return stages_.size();
}

void Link::add_toxic(uint64_t id, const ToxicSpec& spec, int64_t now_ns) {
  const bool active = draw(prng_, spec.toxicity);
  stages_.push_back({id, active, make_stage(spec, active, prng_, now_ns)});
  if (active) ++active_count_;
}

void Link::update_toxic(uint64_t id, const ToxicSpec& spec, int64_t now_ns) {
  const size_t i = find(id);
  if (i == stages_.size()) return;
  Slot& slot = stages_[i];
  std::deque<Piece> held;
  slot.stage->take_held(&held, false);
  const bool active = draw(prng_, spec.toxicity);
  if (active != slot.active) {
    // Another draw, another stage; a limit_data count starts again then.
    slot.stage = make_stage(spec, active, prng_, now_ns);
    active_count_ += active ? 1 : 0;
    active_count_ -= slot.active ? 1 : 0;
    slot.active = active;
  } else {
    slot.stage->configure(spec.attributes, now_ns);
  }
  for (Piece& piece : held)
    slot.stage->push(std::move(piece), now_ns);
}

void Link::remove_toxic(uint64_t id, int64_t now_ns) {
  const size_t i = find(id);
  if (i == stages_.size()) return;
  std::deque<Piece> held;
  stages_[i].stage->take_held(&held, true);
  if (stages_[i].active) --active_count_;
  stages_.erase(stages_.begin() + static_cast<std::ptrdiff_t>(i));
  for (Piece& piece : held)
    deliver(i, std::move(piece), now_ns);
}

void Link::push(Piece piece, int64_t now_ns) {
  deliver(0, std::move(piece), now_ns);
}

void Link::deliver(size_t index, Piece piece, int64_t now_ns) {
  if (index < stages_.size()) {
    stages_[index].stage->push(std::move(piece), now_ns);
  } else {
    output_bytes_ += piece.bytes.size();
    output_.push_back(std::move(piece));
  }
}

void Link::advance(int64_t now_ns) {
  // One pass in chain order: what stage i gives, stage i+1 sees in the same
  // pass. A piece enters the next stage at the time it was due, not at the
  // (later) time the loop got round to it, so schedules do not drift.
  for (size_t i = 0; i < stages_.size(); ++i) {
    ToxicStage& stage = *stages_[i].stage;
    for (int64_t ready = stage.next_ready(); ready <= now_ns; ready = stage.next_ready()) {
      deliver(i + 1, stage.pop(), ready);
    }
  }
}

int64_t Link::next_wakeup() const {
  int64_t next = kNever;
  for (const Slot& slot : stages_)
    next = std::min(next, slot.stage->next_ready());
  return next;
}

std::string_view Link::front_bytes() const {
  return std::string_view(output_.front().bytes).substr(out_offset_);
}

void Link::wrote(size_t n) {
  out_offset_ += n;
  output_bytes_ -= n;
  if (out_offset_ >= output_.front().bytes.size()) {
    output_.pop_front();
    out_offset_ = 0;
  }
}

void Link::pop_front() {
  output_bytes_ -= output_.front().bytes.size() - out_offset_;
  output_.pop_front();
  out_offset_ = 0;
}

size_t Link::buffered_bytes() const {
  size_t bytes = output_bytes_;
  for (const Slot& slot : stages_)
    bytes += slot.stage->held_bytes();
  return bytes;
}

bool Link::direct() const {
  if (active_count_ > 0 || !output_.empty()) return false;
  for (const Slot& slot : stages_) {
    if (slot.stage->next_ready() != kNever) return false;
  }
  return true;
}

}  // namespace millstone::proxy
