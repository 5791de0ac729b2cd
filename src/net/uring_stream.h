#pragma once
// A plain TCP Stream on the loop's io_uring (IoBackend::kUring): one
// multishot recv per connection into the shared provided-buffer ring, and
// sends queued as SQEs that leave with the loop's one submit per turn.
//
// It keeps the Stream contract of net/stream.h, so sessions above it do not
// know which backend runs: arrivals are told to the IoHandler as EPOLLIN
// (EPOLLRDHUP at the end of the stream, EPOLLERR after a failure), read()
// copies out of the ring buffers and gives each back once emptied, and
// write() takes the bytes (copied: the caller's buffer need not outlive the
// call) until kMaxQueued are waiting, then says kWouldBlock and reports
// EPOLLOUT when the queue has gone. A send's failure is reported by the next
// read() or write(), as a recv/send errno would be with epoll.
#include <cstdint>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/stream.h"
#include "net/uring.h"

namespace millstone::net {

class UringStream final : public Stream, private CompletionHandler {
 public:
  static constexpr size_t kMaxQueued = 256 * 1024;

  // Takes ownership of a connected, non-blocking socket and arms its recv.
  UringStream(Uring& uring, int fd, IoHandler& handler);
  ~UringStream() override;
  UringStream(const UringStream&) = delete;
  UringStream& operator=(const UringStream&) = delete;

  StreamResult handshake() override { return {}; }
  StreamResult read(char* buffer, size_t size) override;
  StreamResult write(std::string_view data) override;
  void close(bool reset) override;
  int fd() const override { return fd_; }
  std::string_view error_text() const override { return error_text_; }
  // Changes with every stream: what a session compares to notice that the
  // connection was closed or replaced during a callback.
  uint64_t registration() const { return registration_; }

 private:
  void on_recv(int result, char* data, uint16_t buffer_id, bool more) override;
  void on_send(int result) override;
  void start_send();
  StreamResult fail(int err);

  struct Chunk {
    char* data;
    uint32_t size;
    uint16_t buffer_id;
  };

  Uring& uring_;
  IoHandler& handler_;
  int fd_;
  uint64_t registration_;
  // Received, not yet read: ring buffers, in order. Empty between arrivals.
  std::vector<Chunk> chunks_;
  size_t chunk_offset_ = 0;
  bool recv_armed_ = false;
  bool eof_ = false;
  int error_ = 0;  // errno of a failed recv or send, reported by read()/write()
  // The send in flight (immutable until its completion) and what was
  // written meanwhile; both empty on an idle connection.
  std::string sending_;
  size_t sent_ = 0;
  bool send_in_flight_ = false;
  std::string queued_;
  bool writable_wanted_ = false;
  std::string error_text_;
};

}  // namespace millstone::net
