#pragma once
// Toxics as Toxiproxy defines them (github.com/Shopify/toxiproxy README,
// "Toxics"): what each one is (ToxicSpec, the API's JSON shape) and how it
// acts on one direction of one connection (ToxicStage).
//
// A stage is a small state machine over pieces of the byte stream and is
// given the time by its caller, so it never reads a clock: the same inputs
// and the same seeded Prng give the same outputs (tests/proxy/toxic_test.cc).
// Each piece leaves a stage at a time the stage decides (next_ready()); the
// link (link.h) moves ready pieces from one stage to the next and then to
// the socket.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "random/randomness.h"

namespace millstone::proxy {

enum class ToxicType : uint8_t {
  kLatency,
  kBandwidth,
  kSlowClose,
  kTimeout,
  kResetPeer,
  kSlicer,
  kLimitData,
};

// Toxiproxy's `stream`: upstream is client -> server, downstream server -> client.
enum class Direction : uint8_t { kUpstream, kDownstream };

std::optional<ToxicType> parse_toxic_type(std::string_view name);
const char* toxic_type_name(ToxicType type);
std::optional<Direction> parse_direction(std::string_view name);
const char* direction_name(Direction direction);

// Every toxic's attributes, in Toxiproxy's units; only the type's own are used
// (and shown in JSON).
struct ToxicAttributes {
  int64_t latency = 0;         // latency: ms
  int64_t jitter = 0;          // latency: ms, delay is latency +/- jitter
  int64_t rate = 0;            // bandwidth: KB/s (1 KB = 1000 bytes); 0 passes nothing
  int64_t delay = 0;           // slow_close: ms; slicer: microseconds between slices
  int64_t timeout = 0;         // timeout, reset_peer: ms
  int64_t average_size = 0;    // slicer: bytes
  int64_t size_variation = 0;  // slicer: bytes, below average_size
  int64_t bytes = 0;           // limit_data: bytes to pass before closing

  bool operator==(const ToxicAttributes&) const = default;
};

struct ToxicSpec {
  std::string name;  // default "<type>_<stream>"
  ToxicType type = ToxicType::kLatency;
  Direction stream = Direction::kDownstream;
  double toxicity = 1.0;  // probability, drawn per connection, that the toxic acts on it
  ToxicAttributes attributes;
};

// Durations longer than this are refused: a month is past any drill, and the
// nanosecond arithmetic of the timers stays far from overflow.
inline constexpr int64_t kMaxToxicMilliseconds = int64_t{30} * 24 * 3600 * 1000;

// Empty when the spec is usable; otherwise what is wrong, naming the attribute
// ("attributes.size_variation must be below average_size (10)").
std::string validate_toxic(const ToxicSpec& spec);

// A part of one direction's byte stream, or what happens to the connection.
struct Piece {
  enum class Kind : uint8_t {
    kData,   // bytes to pass on
    kEnd,    // the sender finished (FIN): shut down the receiver's side for writing
    kClose,  // a toxic closes the connection (limit_data, timeout)
    kReset,  // a toxic resets the connection (reset_peer): RST both ways
  };
  Kind kind = Kind::kData;
  std::string bytes;

  static Piece data(std::string bytes) { return {Kind::kData, std::move(bytes)}; }
  static Piece end() { return {Kind::kEnd, {}}; }
  static Piece close() { return {Kind::kClose, {}}; }
  static Piece reset() { return {Kind::kReset, {}}; }
};

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

class ToxicStage {
 public:
  virtual ~ToxicStage() = default;

  // A piece arrives at `now_ns` (in order; times never go back).
  virtual void push(Piece piece, int64_t now_ns) = 0;
  // When the next piece may leave; kNever while there is none to give.
  virtual int64_t next_ready() const = 0;
  // Takes the next piece; only once next_ready() has passed.
  virtual Piece pop() = 0;
  // Bytes held (received, neither given on nor dropped).
  virtual size_t held_bytes() const = 0;
  // Gives up everything held, in order: the toxic is being removed or
  // reconfigured. `removing`: a timeout toxic then closes the connection, as
  // Toxiproxy's Cleanup does (its data was dropped, the stream is broken).
  virtual void take_held(std::deque<Piece>* out, bool removing) = 0;
  // New attributes (an update through the API), effective from `now_ns`.
  virtual void configure(const ToxicAttributes& attributes, int64_t now_ns) = 0;
};

// The stage of `spec` for one connection that the toxicity draw picked, or a
// pass-through stage (`active` false) for one it did not. `prng` must outlive
// the stage (one generator per FaultProxy, seeded).
std::unique_ptr<ToxicStage> make_stage(const ToxicSpec& spec, bool active, random::Prng& prng,
                                       int64_t now_ns);

}  // namespace millstone::proxy
