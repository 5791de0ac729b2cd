#include "cli/limits.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "net/socket.h"

namespace millstone::cli {

namespace {

// What one held connection costs, client and kernel together, when the
// target is on this machine too (both ends' socket buffers, idle): measured
// by bench/ws_hold.sh; used only to warn before a run cannot fit.
constexpr uint64_t kBytesPerLoopbackConnection = 12 * 1024;
constexpr uint64_t kBytesPerRemoteConnection = 6 * 1024;

uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

uint64_t read_number(const char* path) {
  std::ifstream in(path);
  uint64_t value = 0;
  in >> value;
  return value;
}

bool parse_ipv4(const std::string& text, uint32_t* host_order) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return false;
  *host_order = ntohl(addr.s_addr);
  return true;
}

std::string ipv4_text(uint32_t host_order) {
  in_addr addr{htonl(host_order)};
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, text, sizeof text);
  return text;
}

}  // namespace

uint32_t local_port_count(std::string* range_text) {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  uint32_t low = 32768, high = 60999;
  in >> low >> high;
  if (high < low) std::swap(low, high);
  if (range_text) *range_text = fmt::format("{}-{}", low, high);
  return high - low + 1;
}

uint64_t peak_connections(const scenario::Plan& plan) {
  // VUs of each scenario at its largest; scenarios overlap when their
  // [start, end) intervals do, so the peak is at some scenario's start.
  auto most_vus = [](const scenario::Executor& e) -> uint64_t {
    using Kind = scenario::Executor::Kind;
    switch (e.kind) {
      case Kind::kConstantVus:
      case Kind::kIterations:
        return e.vus;
      case Kind::kRampingVus: {
        double most = e.vus;
        for (const scenario::Stage& s : e.stages)
          most = std::max(most, s.target);
        return static_cast<uint64_t>(most + 0.5);
      }
      case Kind::kConstantArrivalRate:
      case Kind::kRampingArrivalRate:
        return std::max(e.pre_allocated_vus, e.max_vus);
    }
    return e.vus;
  };
  uint64_t peak = 0;
  for (const scenario::ScenarioRun& at : plan.scenarios) {
    uint64_t sum = 0;
    for (const scenario::ScenarioRun& other : plan.scenarios) {
      if (other.start_us <= at.start_us && at.start_us < other.end_us()) {
        sum += most_vus(other.executor);
      }
    }
    peak = std::max(peak, sum);
  }
  return peak * plan.connections_per_vu();
}

std::vector<std::string> loopback_sources(uint64_t connections, uint32_t ports_per_source) {
  // A quarter of the range each: the kernel's search for a free port
  // (__inet_hash_connect) probes used ports, so connects slow down as the
  // range fills; at 90% full it was most of the run's CPU at 100,000.
  uint64_t usable = std::max<uint64_t>(1, ports_per_source / 4);
  uint64_t needed = (connections + usable - 1) / usable;
  std::vector<std::string> sources;
  if (needed <= 1) return sources;
  needed = std::min<uint64_t>(needed, 250);
  for (uint64_t i = 1; i <= needed; ++i)
    sources.push_back(fmt::format("127.0.0.{}", i));
  return sources;
}

bool parse_source_flags(const std::vector<std::string>& flags, std::vector<std::string>* out,
                        std::string* error) {
  out->clear();
  for (const std::string& flag : flags) {
    std::stringstream list(flag);
    std::string item;
    while (std::getline(list, item, ',')) {
      if (item.empty()) continue;
      size_t dash = item.find('-');
      if (dash != std::string::npos) {
        uint32_t first = 0, last = 0;
        if (!parse_ipv4(item.substr(0, dash), &first) ||
            !parse_ipv4(item.substr(dash + 1), &last) || last < first || last - first > 1023) {
          *error = fmt::format(
              "--source-address '{}': expected an IPv4 range FIRST-LAST of at most 1024 "
              "addresses, like 127.0.0.2-127.0.0.20",
              item);
          return false;
        }
        for (uint32_t a = first; a <= last; ++a)
          out->push_back(ipv4_text(a));
        continue;
      }
      out->push_back(item);
    }
  }
  std::map<std::string, bool> seen;
  for (const std::string& address : *out) {
    if (seen[address]) {
      *error = fmt::format("--source-address {} is given twice", address);
      return false;
    }
    seen[address] = true;
    auto endpoint = net::make_endpoint(address, 0);
    if (!endpoint) {
      *error =
          fmt::format("--source-address '{}': expected a numeric IPv4 or IPv6 address", address);
      return false;
    }
    int fd = net::tcp_socket(endpoint->family());
    int rc = fd < 0 ? -1 : net::bind_source(fd, *endpoint);
    int err = errno;
    if (fd >= 0) close(fd);
    if (rc < 0) {
      *error = fmt::format("--source-address {}: cannot bind: {} (is it configured on this host?)",
                           address, strerror(err));
      return false;
    }
  }
  return true;
}

std::vector<std::string> capacity_warnings(uint64_t connections, size_t sources,
                                           bool loopback_target) {
  std::vector<std::string> warnings;
  std::string range;
  uint64_t ports = local_port_count(&range);
  uint64_t port_capacity = ports * std::max<size_t>(1, sources);
  if (connections > port_capacity) {
    warnings.push_back(fmt::format(
        "{} connections to one address need more than the {} local ports of {} source "
        "address(es) (net.ipv4.ip_local_port_range is {}): add --source-address (e.g. a range of "
        "addresses configured on this host) or widen the range with sysctl -w "
        "net.ipv4.ip_local_port_range=\"1024 65535\"",
        connections, port_capacity, std::max<size_t>(1, sources), range));
  }
  uint64_t file_max = read_number("/proc/sys/fs/file-max");
  uint64_t files_needed = connections * (loopback_target ? 2 : 1);
  if (file_max > 0 && files_needed + 10000 > file_max) {
    warnings.push_back(fmt::format(
        "{} connections need about {} open files on this host, near the system-wide limit "
        "fs.file-max = {}: raise it with sysctl -w fs.file-max={}",
        connections, files_needed, file_max, files_needed * 2));
  }
  uint64_t available = mem_available_bytes();
  uint64_t per = loopback_target ? kBytesPerLoopbackConnection : kBytesPerRemoteConnection;
  if (available > 0 && connections * per > available) {
    warnings.push_back(fmt::format(
        "{} connections need about {} MiB of memory (client, target and kernel socket buffers), "
        "more than the {} MiB available: use fewer connections, or more machines",
        connections, connections * per >> 20, available >> 20));
  }
  return warnings;
}

uint32_t workers_for_descriptors(uint64_t connections, uint64_t fd_limit) {
  // A limit this low leaves half for connections: a worker's own descriptors
  // (standard streams, event loop, link, timers) come first, and a worker
  // given the whole limit failed its last connections with EMFILE (600 VUs
  // at a limit of 64: 70 of them).
  uint64_t per_worker = fd_limit > 2 * kReservedDescriptors ? fd_limit - kReservedDescriptors
                                                            : std::max<uint64_t>(1, fd_limit / 2);
  return static_cast<uint32_t>(
      std::min<uint64_t>(UINT32_MAX, (connections + per_worker - 1) / per_worker));
}

std::optional<std::string> worker_count_warning(uint64_t connections, uint64_t fd_limit,
                                                uint32_t cores) {
  uint32_t workers = workers_for_descriptors(connections, fd_limit);
  if (workers <= cores) return std::nullopt;
  return fmt::format(
      "{} connections at the open-file limit of {} per process need {} worker processes on {} "
      "cores; the run still ends on time and the summary says how many connections were "
      "established. For fewer processes raise the hard limit ('ulimit -Hn', LimitNOFILE= in "
      "systemd, nofile in /etc/security/limits.conf)",
      connections, fd_limit, workers, cores);
}

}  // namespace millstone::cli
