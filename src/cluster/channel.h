#pragma once
// A framed message channel over a stream socket (a socketpair to a local
// worker today, TCP to a remote agent later).
#include <string>
#include <string_view>

#include "cluster/wire.h"

namespace millstone::cluster {

class Channel {
 public:
  explicit Channel(int fd) : fd_(fd) {}
  int fd() const { return fd_; }

  // Writes a whole frame, waiting for the socket if needed. False if the peer is gone.
  bool send(MessageType type, std::string_view payload);
  // Reads what is available without blocking; false on EOF or a socket error.
  bool receive_available();
  // Blocks until one frame arrives; false on EOF, error, or a broken frame.
  bool receive_blocking(MessageType* type, std::string* payload);
  FrameReader& reader() { return reader_; }

 private:
  int fd_;
  FrameReader reader_;
};

}  // namespace millstone::cluster
