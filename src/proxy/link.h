#pragma once
// One direction of one proxied connection: bytes read from one socket pass
// through the chain of toxic stages, in the order the toxics were added, and
// come out as pieces ready for the other socket. No I/O here: the connection
// (proxy.cc) reads, writes and keeps the time, so the chain is testable with
// made-up times.
//
// Toxics can be added, updated and removed while bytes are held (Toxiproxy
// applies them to existing connections): a removed stage hands what it held
// to the next one at once, as Toxiproxy's interrupted toxics flush theirs.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "proxy/toxic.h"
#include "random/randomness.h"

namespace millstone::proxy {

// Bytes one direction may hold (in stages and waiting for the socket) before
// the proxy stops reading the sender: a slow receiver or a toxic that holds
// data pushes back on the sender through TCP instead of growing memory.
inline constexpr size_t kLinkBufferLimit = 1 << 20;

class Link {
 public:
  explicit Link(random::Prng& prng) : prng_(prng) {}

  // Adds a toxic at the end of the chain; the toxicity is drawn here, once
  // for this connection (and again on update).
  void add_toxic(uint64_t id, const ToxicSpec& spec, int64_t now_ns);
  void update_toxic(uint64_t id, const ToxicSpec& spec, int64_t now_ns);
  void remove_toxic(uint64_t id, int64_t now_ns);

  // Bytes (or the sender's FIN) read from the sending socket.
  void push(Piece piece, int64_t now_ns);
  // Moves every piece that is due by now through the chain into output().
  void advance(int64_t now_ns);
  // When advance() has something to do next; kNever if nothing is held.
  int64_t next_wakeup() const;

  // Pieces for the receiving socket, in order. The connection writes the
  // front one's unwritten bytes (front_bytes()) and reports what it wrote.
  bool has_output() const { return !output_.empty(); }
  const Piece& front() const { return output_.front(); }
  std::string_view front_bytes() const;
  // `n` more bytes of the front piece went out; it is popped once all have.
  void wrote(size_t n);
  // Pops the front piece (one that is not data, or whatever is left of one).
  void pop_front();

  // Everything held: in stages and in output() (less what is written).
  size_t buffered_bytes() const;
  // True when no toxic acts and nothing is held: bytes may go straight from
  // one socket to the other.
  bool direct() const;
  size_t stage_count() const { return stages_.size(); }

 private:
  struct Slot {
    uint64_t id;
    bool active;
    std::unique_ptr<ToxicStage> stage;
  };
  void deliver(size_t index, Piece piece, int64_t now_ns);
  size_t find(uint64_t id) const;

  random::Prng& prng_;
  std::vector<Slot> stages_;
  std::deque<Piece> output_;
  size_t out_offset_ = 0;    // of the front piece, written
  size_t output_bytes_ = 0;  // in output_, less out_offset_
  size_t active_count_ = 0;
};

}  // namespace millstone::proxy
