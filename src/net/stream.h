#pragma once
// A Stream moves bytes over one connected, non-blocking socket: plain TCP
// here, TLS in tls/tls_stream.h. Protocol sessions (HTTP/1.1, HTTP/2,
// WebSocket, raw TCP) sit on top and own the framing; the Stream owns the
// file descriptor and knows which readiness lets a call progress.
//
// Made for edge-triggered epoll (net/event_loop.h) and the hot path of one
// send and one recv per request:
// - read() fills the caller's buffer (normally the worker's shared read
//   buffer) and says whether the socket is drained, so the caller can stop
//   without the extra recv that would only return EAGAIN;
// - a call that cannot progress says which event to wait for: a TLS read can
//   need EPOLLOUT (a key update to answer) and a TLS write EPOLLIN (a
//   renegotiation), so the session registers for both and retries the call
//   that is waiting on whichever edge arrives;
// - failures are status values with a classified metrics::ErrorCause and a
//   short text for error samples; no exceptions.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/snapshot.h"

namespace millstone::net {

enum class StreamStatus : uint8_t {
  kOk,          // bytes moved (read: bytes > 0; write: all of them)
  kWouldBlock,  // nothing more now: wait for `wait`, then call again
  kClosed,      // read: the peer ended the stream cleanly (FIN, TLS close_notify)
  kError,       // failed; `cause` says why, Stream::error_text() in words
};

enum class Readiness : uint8_t { kNone, kReadable, kWritable };

struct StreamResult {
  StreamStatus status = StreamStatus::kOk;
  size_t bytes = 0;  // moved by this call, also with kWouldBlock (a partial write)
  // read() with kOk: the socket had no more bytes; the next edge reports new
  // ones. False after a full buffer: call read() again.
  bool drained = false;
  Readiness wait = Readiness::kNone;                          // with kWouldBlock
  metrics::ErrorCause cause = metrics::ErrorCause::kIoOther;  // with kError
};

class Stream {
 public:
  virtual ~Stream() = default;

  // Drives the opening exchange (the TLS handshake) after the TCP connect
  // completed: kOk once the stream carries data, kWouldBlock to be called
  // again on `wait`, kError. A plain stream is ready at once.
  virtual StreamResult handshake() = 0;
  // Reads up to `size` bytes (size > 0). See StreamResult::drained.
  virtual StreamResult read(char* buffer, size_t size) = 0;
  // Writes as much of `data` as the socket takes. After kWouldBlock the
  // caller keeps the unwritten rest, data.substr(bytes), and passes exactly
  // that again when `wait` arrives (TLS resends a partly written record from it).
  virtual StreamResult write(std::string_view data) = 0;
  // Closes the socket (idempotent): with an RST if `reset`, else a FIN (TLS
  // sends its close_notify first, without waiting for the answer).
  virtual void close(bool reset) = 0;

  // -1 once closed. For EventLoop registration only: reading or writing the
  // descriptor directly would bypass the stream's state (TLS records).
  virtual int fd() const = 0;
  // What the last kError was, in words ("certificate has expired"); empty before.
  virtual std::string_view error_text() const = 0;
};

// Plain TCP (or any stream socket): one syscall per read() and write() call.
class PlainStream final : public Stream {
 public:
  // Takes ownership of a connected, non-blocking socket.
  explicit PlainStream(int fd) : fd_(fd) {}
  ~PlainStream() override;
  PlainStream(const PlainStream&) = delete;
  PlainStream& operator=(const PlainStream&) = delete;

  StreamResult handshake() override { return {}; }
  StreamResult read(char* buffer, size_t size) override;
  StreamResult write(std::string_view data) override;
  void close(bool reset) override;
  int fd() const override { return fd_; }
  std::string_view error_text() const override { return error_text_; }
  // Gives the socket up without closing it (a session handing the connection
  // to another, as the mock's HTTP path does on a WebSocket upgrade).
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  StreamResult fail(int err);

  int fd_;
  std::string error_text_;  // empty (no heap) until an error
};

// The cause a failed recv/send errno counts as once connected: ECONNRESET and
// EPIPE are resets, anything else an I/O error.
metrics::ErrorCause io_error_cause(int err);

}  // namespace millstone::net
