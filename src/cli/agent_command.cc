// `millstone agent --join HOST:PORT --token-file FILE`: a load machine that
// dials the coordinator, proves the token and runs its share of the run on
// local worker processes (docs/agents.md). The link and the agent's body are
// cluster/'s (agent_dial.h, agent.h); this is the command around them.
#include <sys/resource.h>

#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cluster/agent.h"
#include "cluster/agent_dial.h"
#include "cluster/token.h"
#include "cluster/wire.h"
#include "net/clock.h"
#include "net/socket.h"
#include "text/printable.h"

namespace millstone::cli {

namespace {

void say(const std::string& line) {
  fmt::print(stderr, "millstone agent: {}\n", text::printable(line));
  std::fflush(stderr);
}

std::string ms_text(int64_t ns, bool sign) {
  const double value = static_cast<double>(ns) / 1e6;
  return sign ? fmt::format("{:+.3f} ms", value) : fmt::format("{:.3f} ms", value);
}

// Workers open one descriptor per connection: announce (and use) the hard limit.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int agent_command(const AgentCommandOptions& options) {
  std::string host;
  uint16_t port = 0;
  std::string error;
  if (!net::split_host_port(options.join, &host, &port, &error)) {
    say(fmt::format("--join {}: {}", options.join, error));
    return kExitUsage;
  }
  std::optional<cluster::Token> token;
  try {
    token = cluster::Token::read_file(options.token_file);
  } catch (const cluster::TokenError& e) {
    say(fmt::format("--token-file: {}", e.what()));
    return kExitConfig;
  }
  raise_fd_limit();
  cluster::Hello hello = cluster::local_hello(0);
  // The coordinator gives an agent one worker per core it announces.
  if (options.workers > 0) hello.cores = options.workers;

  // --keep: after a run the next may be hours away; only the first join
  // (where a wrong address or token shows) has a retry budget.
  bool served = false;
  for (;;) {
    const int64_t deadline =
        served ? INT64_MAX / 2 : net::now_ns() + options.join_timeout_us * 1000;
    say(served ? fmt::format("joining {} (until the next run)", options.join)
               : fmt::format("joining {} (giving up after {} s)", options.join,
                             options.join_timeout_us / 1'000'000));
    cluster::DialResult dial =
        cluster::dial_coordinator(options.join, *token, deadline, cluster::DialOptions{}, say);
    if (!dial.link) {
      if (dial.attempts == 0) {  // the address itself is wrong
        say(dial.error);
        return kExitUsage;
      }
      say(fmt::format("could not join {} in {} attempt{} within {} s; the last: {}", options.join,
                      dial.attempts, dial.attempts == 1 ? "" : "s",
                      options.join_timeout_us / 1'000'000, dial.error));
      return kExitUnreachable;
    }
    say(fmt::format("joined {}: clock offset {} (+/- {}), rtt {}; {} worker{} offered",
                    options.join, ms_text(dial.clock.offset_ns, true),
                    ms_text(dial.clock.error_ns(), false), ms_text(dial.clock.rtt_ns, false),
                    hello.cores, hello.cores == 1 ? "" : "s"));
    cluster::AgentOptions agent;
    agent.clock_offset_ns = dial.clock.offset_ns;
    // The coordinator answers Hello once every agent it waits for joined
    // (its --agent-wait); a coordinator that goes away closes the link.
    agent.start_timeout_ns = 3600 * net::kNsPerSec;
    agent.log = say;
    const int code = cluster::serve_agent(*dial.link, hello, agent);
    dial.link->close();
    if (code == 0) say("run complete: results sent to the coordinator");
    if (!options.keep) return code == 0 ? kExitOk : kExitInternal;
    served = true;
    say("--keep: waiting for the next run");
  }
}

}  // namespace millstone::cli
