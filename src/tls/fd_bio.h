#pragma once
// The BIO under every TlsStream: recv/send on a non-blocking socket, like
// OpenSSL's socket BIO, plus what an edge-triggered loop needs to know and
// the socket BIO hides: whether the last recv drained the socket (so a read
// can stop without a recv that would return EAGAIN), whether the peer closed,
// and the errno of a failed call. send uses MSG_NOSIGNAL: a peer that went
// away is an EPIPE, not a SIGPIPE.
#include "tls/openssl_ptr.h"

namespace millstone::tls {

struct FdBioState {
  int fd = -1;
  bool drained = false;  // the last recv returned less than asked, or EAGAIN
  bool eof = false;      // a recv returned 0
  int error = 0;         // errno of the last failed recv/send (not EAGAIN)
};

// One per context (per worker), shared by its streams. Throws TlsSetupError.
BioMethodPtr make_fd_bio_method();
// A BIO over `state`, which must outlive it; null when out of memory.
BIO* new_fd_bio(const BIO_METHOD* method, FdBioState* state);

}  // namespace millstone::tls
