// Feeds arbitrary bytes to the coordinator <-> worker protocol: as a frame
// stream and as bare payloads of every message (Hello, Start, Ack, Snapshot,
// Done, Error; RunPlan inside Start). Whatever decodes must re-encode to the
// same value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/wire.h"

namespace {

using millstone::cluster::FrameReader;
using millstone::cluster::MessageType;

void check(bool ok) {
  if (!ok) std::abort();
}

void decode_payload(std::string_view payload) {
  namespace cluster = millstone::cluster;
  millstone::engine::RunPlan plan;
  if (cluster::decode_run_plan(payload, &plan)) {
    // RunPlan has no ==; the canonical encoding stands in for it.
    const std::string once = cluster::encode_run_plan(plan);
    millstone::engine::RunPlan again;
    check(cluster::decode_run_plan(once, &again));
    check(cluster::encode_run_plan(again) == once);
  }
  millstone::metrics::Snapshot snapshot;
  if (cluster::decode_snapshot(payload, &snapshot)) {
    millstone::metrics::Snapshot again;
    check(cluster::decode_snapshot(cluster::encode_snapshot(snapshot), &again));
    check(again == snapshot);
    const auto& h = snapshot.latency;
    for (double q : {0.0, 0.5, 0.99, 0.999, 1.0}) {
      const uint64_t v = h.value_at(q);
      check(h.count() == 0 || (v >= h.min() && v <= h.max()));
    }
    // Merging must stay consistent too: a snapshot merged into an empty one is itself.
    millstone::metrics::Snapshot total;
    total.merge(snapshot);
    check(total == snapshot);
  }
  cluster::Hello hello;
  if (cluster::decode_hello(payload, &hello)) {
    cluster::Hello again;
    check(cluster::decode_hello(cluster::encode_hello(hello), &again) && again == hello);
    uint32_t protocol = 0;
    std::string build;
    check(cluster::decode_hello_versions(payload, &protocol, &build));
    check(protocol == hello.protocol_version);
  }
  uint32_t protocol = 0;
  std::string build;
  cluster::decode_hello_versions(payload, &protocol, &build);
  cluster::Start start;
  if (cluster::decode_start(payload, &start)) {
    const std::string once = cluster::encode_start(start);
    cluster::Start again;
    check(cluster::decode_start(once, &again));
    check(cluster::encode_start(again) == once && again.data_files == start.data_files);
  }
  cluster::Ack ack;
  if (cluster::decode_ack(payload, &ack)) {
    cluster::Ack again;
    check(cluster::decode_ack(cluster::encode_ack(ack), &again) && again == ack);
  }
  cluster::Done done;
  if (cluster::decode_done(payload, &done)) {
    cluster::Done again;
    check(cluster::decode_done(cluster::encode_done(done), &again) && again == done);
  }
  std::string text;
  cluster::decode_error(payload, &text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  decode_payload(input);

  // Feed in uneven pieces so partial headers and payloads get exercised.
  FrameReader reader;
  size_t pos = 0;
  size_t step = 1;
  MessageType type{};
  std::string payload;
  while (pos < input.size()) {
    const size_t n = std::min(step, input.size() - pos);
    reader.append(input.data() + pos, n);
    pos += n;
    step = step * 3 + 1;
    FrameReader::Next next;
    while ((next = reader.next(&type, &payload)) == FrameReader::Next::kFrame) {
      check(millstone::cluster::is_known_message_type(static_cast<uint8_t>(type)));
      decode_payload(payload);
    }
    if (next == FrameReader::Next::kError) {
      check(!reader.error().empty());
      break;
    }
  }
  return 0;
}
