#pragma once
// The machine limits that a run with many connections runs into, checked
// before the run starts so the user reads which limit and how to raise it
// instead of a run full of connect errors: open files per process, local
// ports per source address, memory.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scenario/plan.h"

namespace millstone::cli {

// Ephemeral ports one source address has towards one destination
// (net.ipv4.ip_local_port_range), and the range as text ("32768-60999").
uint32_t local_port_count(std::string* range_text);

// Most connections a scenario can hold at once: the sum over scenarios that
// run at the same time of their most VUs, times sockets per VU.
uint64_t peak_connections(const scenario::Plan& plan);

// Source addresses for `connections` towards a loopback IPv4 target when the
// user gave none: 127.0.0.1, 127.0.0.2... enough that each uses at most a
// quarter of the port range. Empty when one address is enough.
std::vector<std::string> loopback_sources(uint64_t connections, uint32_t ports_per_source);

// Parses --source-address values: numeric addresses, comma lists, and IPv4
// ranges "127.0.0.2-127.0.0.20". Checks each can be bound on this host.
bool parse_source_flags(const std::vector<std::string>& flags, std::vector<std::string>* out,
                        std::string* error);

// Warnings (one line each, saying which limit and how to raise it) for a run
// of `connections` towards one destination from `sources` source addresses.
std::vector<std::string> capacity_warnings(uint64_t connections, size_t sources,
                                           bool loopback_target);

// Descriptors a worker keeps for itself (event loop, channel, files); the rest
// of the open-file limit is for connections.
inline constexpr uint64_t kReservedDescriptors = 32;

// Worker processes `connections` need at the open-file limit `fd_limit`.
uint32_t workers_for_descriptors(uint64_t connections, uint64_t fd_limit);

// A warning (one line) when the open-file limit makes `connections` need more
// worker processes than `cores`: they share the cores, connections open as fast
// as the machine allows, and the run still ends on time.
std::optional<std::string> worker_count_warning(uint64_t connections, uint64_t fd_limit,
                                                uint32_t cores);

}  // namespace millstone::cli
