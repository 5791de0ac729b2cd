#include "proxy/standalone.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/api.h"
#include "proxy/api_server.h"
#include "proxy/fault_proxy.h"
#include "text/printable.h"

namespace millstone::proxy {

namespace {

// SIGINT/SIGTERM through a signalfd on the loop: the loop stops between
// events, so every socket is closed by its owner.
class StopSignals final : public net::IoHandler {
 public:
  explicit StopSignals(net::EventLoop& loop) : loop_(loop) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, &previous_);
    fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ >= 0) registration_ = loop_.add(fd_, EPOLLIN, this);
  }
  ~StopSignals() override {
    if (registration_ != 0) loop_.remove(registration_, fd_);
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_SETMASK, &previous_, nullptr);
  }
  void on_io(uint32_t) override {
    signalfd_siginfo info;
    while (read(fd_, &info, sizeof info) == sizeof info) {
    }
    loop_.stop();
  }

 private:
  net::EventLoop& loop_;
  sigset_t previous_;
  int fd_ = -1;
  uint64_t registration_ = 0;
};

// The token for the API's changes: the file's text without its trailing
// line break and blanks. One line of printable text: a control byte could
// not be sent in a header by any client.
bool read_token_file(const std::string& path, std::string* token, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("cannot read it: {}", std::strerror(errno));
    return false;
  }
  std::getline(in, *token, '\0');
  while (!token->empty() && (token->back() == '\n' || token->back() == '\r' ||
                             token->back() == ' ' || token->back() == '\t')) {
    token->pop_back();
  }
  if (token->empty()) {
    *error = "it is empty; expected one line of printable text (the API's token)";
    return false;
  }
  for (char c : *token) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      *error =
          "it holds a control character; expected one line of printable text (the API's token)";
      return false;
    }
  }
  return true;
}

}  // namespace

StandaloneExit run_standalone(const StandaloneOptions& options) {
  std::string error;
  auto api_endpoint = net::parse_listen_address(options.api, &error);
  if (!api_endpoint) {
    std::fprintf(stderr, "millstone proxy: --api: %s\n", text::printable(error).c_str());
    return StandaloneExit::kUsage;
  }
  net::EventLoop loop;
  FaultProxy proxies(loop,
                     FaultProxyOptions{.seed = options.seed, .open_listener = {}, .resolve = {}});
  ControlApi api(proxies);
  if (!options.token_file.empty()) {
    std::string token;
    if (!read_token_file(options.token_file, &token, &error)) {
      std::fprintf(stderr, "millstone proxy: --token-file %s: %s\n",
                   text::printable(options.token_file).c_str(), error.c_str());
      return StandaloneExit::kConfig;
    }
    api.require_token(std::move(token));
  }

  if (!options.config.empty()) {
    std::ifstream in(options.config, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "millstone proxy: --config %s: cannot read the file: %s\n",
                   text::printable(options.config).c_str(), std::strerror(errno));
      return StandaloneExit::kConfig;
    }
    std::vector<ProxyConfig> configs;
    if (!api.parse_proxy_list(text.str(), &configs, &error)) {
      std::fprintf(stderr, "millstone proxy: --config %s: %s\n",
                   text::printable(options.config).c_str(), text::printable(error).c_str());
      return StandaloneExit::kConfig;
    }
    std::vector<ProxyState> created;
    Status status = proxies.populate(configs, &created);
    if (!status.ok()) {
      std::fprintf(stderr, "millstone proxy: --config %s: %s\n",
                   text::printable(options.config).c_str(),
                   text::printable(status.message).c_str());
      return status.cannot_listen ? StandaloneExit::kCannotListen : StandaloneExit::kConfig;
    }
    for (const ProxyState& state : created) {
      std::printf("millstone proxy: %s listening on %s, upstream %s\n",
                  text::printable(state.name).c_str(), state.listen.c_str(),
                  text::printable(state.upstream).c_str());
    }
  }

  ApiServer server(loop, api);
  if (!server.listen(*api_endpoint)) {
    std::fprintf(stderr, "millstone proxy: --api %s: cannot listen: %s\n",
                 api_endpoint->to_string().c_str(), std::strerror(errno));
    return StandaloneExit::kCannotListen;
  }
  StopSignals stop(loop);
  std::printf("millstone proxy: API on http://%s\n", server.endpoint().to_string().c_str());
  std::fflush(stdout);
  return loop.run() ? StandaloneExit::kStopped : StandaloneExit::kFailed;
}

}  // namespace millstone::proxy
