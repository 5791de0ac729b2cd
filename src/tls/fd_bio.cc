#include "tls/fd_bio.h"

#include <sys/socket.h>

#include <cerrno>

#include "tls/options.h"

namespace millstone::tls {
namespace {

FdBioState* state_of(BIO* bio) {
  return static_cast<FdBioState*>(BIO_get_data(bio));
}

int fd_bio_write(BIO* bio, const char* data, int size) {
  FdBioState* state = state_of(bio);
  BIO_clear_retry_flags(bio);
  for (;;) {
    const ssize_t n = ::send(state->fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      BIO_set_retry_write(bio);
    } else {
      state->error = errno;
    }
    return -1;
  }
}

int fd_bio_read(BIO* bio, char* buffer, int size) {
  FdBioState* state = state_of(bio);
  BIO_clear_retry_flags(bio);
  for (;;) {
    const ssize_t n = ::recv(state->fd, buffer, static_cast<size_t>(size), 0);
    if (n > 0) {
      state->drained = n < size;
      return static_cast<int>(n);
    }
    if (n == 0) {
      state->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      state->drained = true;
      BIO_set_retry_read(bio);
    } else {
      state->error = errno;
    }
    return -1;
  }
}

long fd_bio_ctrl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:  // send() has nothing buffered
      return 1;
    case BIO_CTRL_EOF:
      return state_of(bio)->eof ? 1 : 0;
    default:
      return 0;
  }
}

int fd_bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int fd_bio_destroy(BIO*) {
  return 1;
}  // the stream owns the socket and the state

}  // namespace

BioMethodPtr make_fd_bio_method() {
  BioMethodPtr method(BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "millstone fd"));
  if (!method || BIO_meth_set_write(method.get(), fd_bio_write) != 1 ||
      BIO_meth_set_read(method.get(), fd_bio_read) != 1 ||
      BIO_meth_set_ctrl(method.get(), fd_bio_ctrl) != 1 ||
      BIO_meth_set_create(method.get(), fd_bio_create) != 1 ||
      BIO_meth_set_destroy(method.get(), fd_bio_destroy) != 1) {
    throw TlsSetupError("TLS: cannot create the socket BIO method (out of memory)");
  }
  return method;
}

BIO* new_fd_bio(const BIO_METHOD* method, FdBioState* state) {
  BIO* bio = BIO_new(method);
  if (bio != nullptr) BIO_set_data(bio, state);
  return bio;
}

}  // namespace millstone::tls
