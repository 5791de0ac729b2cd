// `millstone token`: a new join secret for remote agents (docs/agents.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cluster/token.h"

namespace millstone::cli {

int token_command() {
  std::string text;
  try {
    text = cluster::Token::generate().text();
  } catch (const cluster::TokenError& e) {
    fmt::print(stderr, "millstone token: {}\n", e.what());
    return kExitInternal;
  }
  // `millstone token > join.token` would leave the secret as the umask made
  // the file (often 0644), which agents refuse: a file on stdout is made
  // private first. Pipes and terminals are left alone.
  struct stat st {};
  if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 &&
      fchmod(STDOUT_FILENO, st.st_mode & 0700) != 0) {
    fmt::print(stderr,
               "millstone token: cannot make the output file private (chmod 600 it before use)\n");
  }
  fmt::print("{}\n", text);
  return std::fflush(stdout) == 0 ? kExitOk : kExitInternal;
}

}  // namespace millstone::cli
