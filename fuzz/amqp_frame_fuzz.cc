// Feeds arbitrary bytes to the AMQP client session as a broker would send
// them (amqp/session.h), in chunks whose size byte 0 sets: the session must
// consume or fail, never read past its input, and cut the same frames from
// the stream read whole and read in pieces. The same bytes also go to the
// frame cutter, the method decoder, the field-table reader and the content
// header parser directly, and what the table reader accepts must round-trip.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "amqp/codec.h"
#include "amqp/methods.h"
#include "amqp/session.h"

namespace {

using namespace millstone::amqp;

struct Listener : SessionListener {
  uint64_t events = 0;
  void on_open(Session& s) override {
    ++events;
    s.declare_queue({.queue = "q"});
    s.confirm_select();
    s.publish("", "q", true, {}, "x");
  }
  void on_reply(Session&, const ServerMethod&) override { ++events; }
  void on_confirm(Session&, uint64_t, bool, bool) override { ++events; }
  void on_delivery(Session& s, const Delivery& d) override {
    events += d.body.size() + 1;
    s.ack(d.delivery_tag, false);
  }
  void on_return(Session&, const ServerMethod&) override { ++events; }
  void on_blocked(Session&, bool) override { ++events; }
  void on_failed(Session&, Failure f, uint16_t, std::string_view) override {
    if (f == Failure::kNone || f == Failure::kCount) abort();
    ++events;
  }
  void on_closed(Session&) override { ++events; }
};

// Runs a session over `stream` in chunks; returns the listener's event count
// and whether the session ended (failed).
std::pair<uint64_t, bool> run(std::string_view stream, size_t chunk) {
  SessionOptions options;
  options.max_message_bytes = 1 << 16;
  Listener listener;
  Session session(options, listener);
  session.start(0);
  std::string kept;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    kept.append(stream.substr(at, chunk));
    const size_t consumed = session.on_read(kept, 1);
    if (consumed > kept.size()) abort();
    kept.erase(0, consumed);
    if (session.state() == Session::State::kClosed) break;
  }
  session.tick(3'000'000'000'000);
  return {listener.events, session.state() == Session::State::kClosed};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + (data[0] & 0x3f);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  const auto whole = run(stream, stream.size() ? stream.size() : 1);
  const auto pieces = run(stream, chunk);
  if (whole != pieces) abort();

  const CutResult cut = cut_frame(stream, 4096);
  if (cut.status == CutResult::Status::kFrame &&
      (cut.consumed > stream.size() || cut.consumed != cut.frame.payload.size() + 8)) {
    abort();
  }
  ServerMethod method;
  (void)parse_server_method(stream, &method);
  ContentHeader header;
  (void)parse_content_header(stream, &header);

  FieldTable table;
  Reader reader(stream);
  if (reader.table(&table)) {
    std::string encoded;
    Writer(encoded).table(table);
    FieldTable again;
    Reader back(encoded);
    if (!back.table(&again) || !back.at_end()) abort();
    std::string encoded_again;
    Writer(encoded_again).table(again);
    if (encoded_again != encoded) abort();
  }
  return 0;
}
