#pragma once
// The coordinator <-> worker protocol. Local workers speak it over a
// socketpair; it is plain bytes with no host assumptions (little-endian, fixed
// layouts, bounds-checked decoding) so a remote agent can speak it over TCP.
//
// Frame:   u32 LE payload length | u8 MessageType | payload
// Payload: fixed little-endian ints, LEB128 varints, varint-length-prefixed
//          strings, doubles as their IEEE-754 bits in a fixed u64.
//
// Decoding never trusts the peer: every read is bounds-checked and a decode
// function either fills its output completely or returns false and leaves it
// untouched.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/run_plan.h"
#include "metrics/snapshot.h"
#include "metrics/snapshot_limits.h"

namespace millstone::cluster {

// Bumped on any incompatible change; exchanged in kHello. 2: the TLS error
// causes lengthened the snapshot's list of error counts; snapshots carry
// connections established, requests in flight and peak VUs. 3: run plans
// carry TLS options (https), snapshots the TLS handshake counts and histogram.
// 4: the handshake (docs/architecture.md#the-worker-link): Hello describes the
// worker (build, host, cores, fd limit, pid) and is answered by Start (the
// start instant, the plan, the data files), which the worker acknowledges with
// Ack; Done carries the worker's outbox counts; run plans
// carry the HTTP/2 options and snapshots the GOAWAY and RST_STREAM counts.
// 5: remote agents (docs/design/agents.md): after TLS, Proof both ways, then
// Ping/Pong for the clock offset (and as heartbeats), then Hello as before; Start carries
// local_workers (an agent's share range), Done an agent's failed local workers.
// Also in 5, gRPC: run plans say whether the HTTP/2 request is a gRPC call, snapshots
// carry the calls by grpc-status and four more error causes; and snapshots end
// with the worker's own load (CPU, loop busy time, timer lag: GeneratorLoad),
// and run plans end with the I/O backend (--io epoll|uring).
// Also in 5, three more error causes (duplicate_message, out_of_order_message,
// poll_timeout: asynchronous pipelines).
// Version 5 had not been released before these went in, so it stayed 5.
inline constexpr uint32_t kProtocolVersion = 5;
// Largest payload accepted or produced; bounds what a bad peer can make us buffer.
inline constexpr size_t kMaxPayloadSize = size_t{16} << 20;
inline constexpr size_t kFrameHeaderSize = 5;
inline constexpr size_t kMaxSourceAddresses = 1024;
// Run parameters a scenario uses ({{ env.NAME }}); more is a corrupt message.
inline constexpr size_t kMaxScenarioParameters = 4096;
// Data files a Start carries; more is a corrupt message.
inline constexpr size_t kMaxDataFiles = 256;
// Failed local workers an agent's Done names; more is a corrupt message.
inline constexpr size_t kMaxWorkerFailures = 4096;

// One run over a link: the worker speaks first. A remote agent's link opens
// with the token proofs and the clock exchange first:
//   agent: Proof -> coordinator checks it, Proof -> agent checks it
//   coordinator: Ping x 8, then a Ping carrying the measured offset; agent: a Pong for each
//   (heartbeat Pings every 500 ms for the rest of the link's life, each answered by a Pong)
//   worker: Hello -> coordinator checks the version -> Start -> worker: Ack
//   worker: Snapshot (one per second of the coordinator's clock) ... Snapshot, Done
//   coordinator: Stop at any time after Start; either side: Error, then closes.
enum class MessageType : uint8_t {
  kHello = 1,     // worker -> coordinator: Hello
  kStart = 2,     // coordinator -> worker: Start
  kStop = 3,      // coordinator -> worker: stop early (empty)
  kSnapshot = 4,  // worker -> coordinator: one interval's Snapshot
  kError = 5,     // either way: text, the sender gives up
  kDone = 6,      // worker -> coordinator: Done, after the final snapshot
  kAck = 7,       // worker -> coordinator: Ack, Start understood and the workload built
  kProof = 8,     // agent link, both ways: HMAC proving the join token (kProofSize bytes)
  kPing = 9,      // agent link, coordinator -> agent: Ping
  kPong = 10,     // agent link, agent -> coordinator: Pong
};
// "hello", "start", ...; "unknown" for values outside the enum.
const char* message_type_name(MessageType type);
bool is_known_message_type(uint8_t type);

// Appends encoded values to a string it does not own.
class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}
  void put_u8(uint8_t v);
  void put_u32(uint32_t v);  // fixed, little-endian
  void put_u64(uint64_t v);  // fixed, little-endian
  void put_varint(uint64_t v);
  void put_bool(bool v);
  void put_double(double v);
  void put_string(std::string_view v);

 private:
  std::string* out_;
};

// Bounds-checked reader. A failed read returns false, consumes nothing useful,
// and the decoder should be abandoned.
class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}
  bool read_u8(uint8_t* out);
  bool read_u32(uint32_t* out);
  bool read_u64(uint64_t* out);
  // False on truncation and on varints longer than 10 bytes or above 2^64 - 1.
  bool read_varint(uint64_t* out);
  // Varint that must also fit in 32 / 16 bits.
  bool read_varint32(uint32_t* out);
  bool read_varint16(uint16_t* out);
  bool read_bool(bool* out);  // only 0 or 1
  bool read_double(double* out);
  bool read_string(std::string* out);
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Returns the framed message, or an empty string when the payload exceeds
// kMaxPayloadSize (a real frame is never empty).
std::string encode_frame(MessageType type, std::string_view payload);

// The worker introduces itself. The first two fields keep their layout in
// every future version (u32 protocol version, then the build version string),
// so a coordinator can always say which versions disagree.
struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  std::string build_version;  // MILLSTONE_VERSION of the worker's binary
  uint32_t worker_index = 0;  // the index the coordinator gave it (local) or 0 (agent)
  std::string host;           // the machine's name, for messages
  uint32_t cores = 0;         // online CPUs
  uint64_t fd_limit = 0;      // RLIMIT_NOFILE soft limit
  uint64_t pid = 0;
  friend bool operator==(const Hello&, const Hello&) = default;
};
// This process's Hello.
Hello local_hello(uint32_t worker_index);
std::string encode_hello(const Hello& hello);
bool decode_hello(std::string_view payload, Hello* out);
// Reads only the fixed prefix (protocol version, build version) of any
// version's Hello, for the message that refuses a mismatch. False if even
// that is missing; *build may be left empty by a peer that predates it.
bool decode_hello_versions(std::string_view payload, uint32_t* protocol, std::string* build);

// A data file a scenario reads, as the coordinator read it: workers and
// agents never open the coordinator's files.
struct DataFile {
  std::string path;   // as the scenario loader resolves it (base_dir + name)
  std::string bytes;  // the whole file
  friend bool operator==(const DataFile&, const DataFile&) = default;
};

struct Start {
  // Second 0 of the run on the coordinator's CLOCK_MONOTONIC. A local worker
  // shares that clock; a remote agent adds the offset measured at its handshake.
  int64_t start_ns = 0;
  // A worker: its share. An agent (local_workers > 0): the whole run's
  // totals, with worker_index the first of its shares and worker_count every
  // share of the fleet; the agent runs shares [worker_index, worker_index +
  // local_workers) on that many local workers (split_plan over a range).
  engine::RunPlan plan;
  std::vector<DataFile> data_files;
  // 0: run `plan` here as one worker. N: an agent's count of local workers.
  uint32_t local_workers = 0;
};
std::string encode_start(const Start& start);
// Also rejects what decode_run_plan rejects, duplicate file paths, a share
// range past worker_count, and trailing bytes.
bool decode_start(std::string_view payload, Start* out);

struct Ack {
  // When the workload was built and waiting, on the worker's clock: after
  // Start::start_ns means the worker joined the run late.
  int64_t ready_ns = 0;
  friend bool operator==(const Ack&, const Ack&) = default;
};
std::string encode_ack(const Ack& ack);
bool decode_ack(std::string_view payload, Ack* out);

// What a worker's outbox did while the run went on (docs/architecture.md#the-worker-link).
struct Done {
  uint64_t snapshots_coalesced = 0;  // merged into a later one because the link was backed up
  uint64_t outbox_peak_bytes = 0;    // most bytes ever waiting for the socket
  // An agent: one sentence per local worker of its that died or hung (its
  // seconds up to then are in the agent's snapshots). Empty for a worker.
  std::vector<std::string> worker_failures;
  friend bool operator==(const Done&, const Done&) = default;
};
std::string encode_done(const Done& done);
bool decode_done(std::string_view payload, Done* out);

// Proof: HMAC-SHA256 of the role and this TLS session's exported keying
// material under the token's proof key (cluster/agent_handshake.h).
inline constexpr size_t kProofSize = 32;
std::string encode_proof(std::string_view mac);
bool decode_proof(std::string_view payload, std::string* mac);

// Clock exchange and heartbeat, NTP-style, on each side's CLOCK_MONOTONIC.
struct Ping {
  int64_t sent_ns = 0;  // t1, the coordinator's clock
  // The coordinator's current estimate of the agent's clock minus its own,
  // and the round-trip time of the exchange it came from; in the last Ping
  // of the handshake and in every heartbeat.
  bool has_offset = false;
  int64_t offset_ns = 0;
  int64_t rtt_ns = 0;  // >= 0
  friend bool operator==(const Ping&, const Ping&) = default;
};
std::string encode_ping(const Ping& ping);
bool decode_ping(std::string_view payload, Ping* out);

struct Pong {
  int64_t ping_sent_ns = 0;  // t1, echoed
  int64_t received_ns = 0;   // t2, the agent's clock
  int64_t sent_ns = 0;       // t3, the agent's clock
  friend bool operator==(const Pong&, const Pong&) = default;
};
std::string encode_pong(const Pong& pong);
bool decode_pong(std::string_view payload, Pong* out);

std::string encode_error(std::string_view text);
bool decode_error(std::string_view payload, std::string* text);

std::string encode_run_plan(const engine::RunPlan& plan);
// Also rejects plans no worker could run (negative or non-finite rate,
// worker_count 0, worker_index out of range) and trailing bytes.
bool decode_run_plan(std::string_view payload, engine::RunPlan* out);

std::string encode_snapshot(const metrics::Snapshot& snapshot);
// Rejects a different number of error causes than this build knows, errors not
// equal to the sum of error_counts, status codes out of order, and histograms
// that Histogram::restore() refuses.
bool decode_snapshot(std::string_view payload, metrics::Snapshot* out);

// Splits a byte stream into frames, however the bytes arrive.
class FrameReader {
 public:
  enum class Next { kFrame, kNeedMore, kError };

  void append(const char* data, size_t size);
  // kFrame fills *type and *payload. kError is final: the stream cannot be
  // resynchronised, so the connection should be dropped; see error().
  Next next(MessageType* type, std::string* payload);
  const std::string& error() const { return error_; }
  // Frames above `limit` (at most kMaxPayloadSize) are an error, judged from
  // the header: an unauthenticated peer on the agent port is held to a few
  // KiB, not 16 MiB.
  void set_max_payload(size_t limit) { max_payload_ = std::min(limit, kMaxPayloadSize); }
  // Bytes received but not yet returned as frames.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;  // prefix of buffer_ already returned
  size_t max_payload_ = kMaxPayloadSize;
  std::string error_;
};

}  // namespace millstone::cluster
