#pragma once
// Which kernel interface drives an EventLoop (`--io epoll|uring`,
// docs/architecture.md#the-io-backend-seam). epoll is the default; io_uring
// is opt-in until it wins reproducibly (bench/README.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::net {

enum class IoBackend : uint8_t { kEpoll = 0, kUring = 1 };

// "epoll" / "uring"; nullopt for anything else.
std::optional<IoBackend> parse_io_backend(std::string_view text);
std::string_view io_backend_name(IoBackend backend);

// Empty when io_uring with everything the backend needs (multishot recv,
// provided buffer rings: Linux 6.0+) can be used by this process; else why
// not, in words ("io_uring is disabled by sysctl kernel.io_uring_disabled=2").
std::string uring_unavailable_reason();

}  // namespace millstone::net
