// `millstone serve`: the REST API over runs (docs/serve.md). The API, the
// runs and the HTTP server are serve/'s; this is the command around them:
// flags, the token, TLS, the data directory, and SIGINT/SIGTERM.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cluster/token.h"
#include "net/clock.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "serve/api.h"
#include "serve/http_server.h"
#include "serve/run_queue.h"
#include "text/printable.h"
#include "tls/server_context.h"

namespace millstone::cli {

namespace {

void say(const std::string& line) {
  fmt::print(stderr, "millstone serve: {}\n", text::printable(line));
  std::fflush(stderr);
}

std::string default_data_dir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/millstone/serve";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/millstone/serve";
}

// mkdir -p, private.
bool make_dirs(const std::string& path) {
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string part = path.substr(0, end);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
    if (end == std::string::npos) return true;
  }
}

class SignalWatch final : public net::IoHandler {
 public:
  SignalWatch(net::EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}
  void on_io(uint32_t) override {
    signalfd_siginfo info{};
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      loop_.stop();
    }
  }

 private:
  net::EventLoop& loop_;
  int fd_;
};

}  // namespace

int serve_command(const ServeOptions& options) {
  std::string error;
  const auto listen = net::parse_listen_address(options.listen, &error);
  if (!listen) {
    say(fmt::format("--listen {}: {}", options.listen, error));
    return kExitUsage;
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    say(fmt::format("{} needs {} too", options.cert_file.empty() ? "--key" : "--cert",
                    options.cert_file.empty() ? "--cert" : "--key"));
    return kExitUsage;
  }
  std::optional<cluster::Token> token;
  try {
    token = cluster::Token::read_file(options.token_file);
  } catch (const cluster::TokenError& e) {
    say(fmt::format("--token-file: {}", e.what()));
    return kExitConfig;
  }
  std::unique_ptr<tls::TlsServerContext> tls_context;
  if (!options.cert_file.empty()) {
    tls::TlsServerOptions tls_options;
    tls_options.cert_file = options.cert_file;
    tls_options.key_file = options.key_file;
    tls_options.alpn = {"http/1.1"};
    try {
      tls_context = std::make_unique<tls::TlsServerContext>(tls_options);
    } catch (const tls::TlsSetupError& e) {
      say(e.what());  // names the file
      return kExitConfig;
    }
  }
  serve::RunQueueOptions queue_options;
  queue_options.data_dir = options.data_dir.empty() ? default_data_dir() : options.data_dir;
  char resolved[PATH_MAX];
  if (!make_dirs(queue_options.data_dir) ||
      ::realpath(queue_options.data_dir.c_str(), resolved) == nullptr) {
    say(fmt::format("--data-dir {}: {}", queue_options.data_dir, std::strerror(errno)));
    return kExitConfig;
  }
  queue_options.data_dir = resolved;
  // The runs execute this very binary, even if the file is replaced meanwhile.
  const ssize_t n = ::readlink("/proc/self/exe", resolved, sizeof resolved - 1);
  if (n <= 0) {
    say(fmt::format("cannot find the millstone binary: /proc/self/exe: {}", std::strerror(errno)));
    return kExitInternal;
  }
  queue_options.program.assign(resolved, static_cast<size_t>(n));
  if (::getcwd(resolved, sizeof resolved) == nullptr) {
    say(fmt::format("getcwd: {}", std::strerror(errno)));
    return kExitInternal;
  }
  queue_options.base_dir = resolved;
  std::string scenarios_dir;
  if (!options.scenarios_dir.empty()) {
    struct stat st {};
    errno = 0;
    if (::realpath(options.scenarios_dir.c_str(), resolved) == nullptr ||
        ::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
      say(fmt::format("--scenarios {}: {}", options.scenarios_dir,
                      errno != 0 ? std::strerror(errno) : "not a directory"));
      return kExitConfig;
    }
    scenarios_dir = resolved;
  }

  // SIGINT and SIGTERM end the loop; the runs get their own mask back.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigset_t previous;
  ::sigprocmask(SIG_BLOCK, &mask, &previous);
  const int signal_fd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);

  int code = kExitOk;
  {
    net::EventLoop loop;
    serve::RunQueue runs(loop, queue_options);
    if (!runs.open(&error)) {
      say(error);
      code = kExitConfig;
    } else {
      serve::ServeApi api(runs, token->text(), scenarios_dir);
      serve::ServeServer server(loop, api, runs, tls_context.get());
      SignalWatch signals(loop, signal_fd);
      uint64_t signal_registration = 0;
      if (!server.listen(*listen)) {
        say(fmt::format("--listen {}: {}", options.listen, std::strerror(errno)));
        code = kExitCannotListen;
      } else {
        if (signal_fd >= 0) signal_registration = loop.add(signal_fd, EPOLLIN, &signals);
        fmt::print("millstone serve: listening on {}://{} (runs in {})\n",
                   tls_context ? "https" : "http", server.endpoint().to_string(),
                   queue_options.data_dir);
        std::fflush(stdout);
        if (!loop.run()) code = kExitInternal;
        say("stopping (a running run gets SIGINT and 10 s to write its results)");
        runs.shutdown(10 * net::kNsPerSec);
        if (signal_registration) loop.remove(signal_registration, signal_fd);
      }
    }
  }
  if (signal_fd >= 0) ::close(signal_fd);
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  return code;
}

}  // namespace millstone::cli
