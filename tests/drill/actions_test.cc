// The real actions on this machine: commands without a shell, bounded by
// their timeout with their whole process group; signals to a process the
// test owns; the HTTP wire of the mock and proxy actions.
#include "drill/actions.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "net/clock.h"
#include "proxy/proxy_thread.h"

namespace millstone::drill {
namespace actions_test {

int64_t in_ms(int64_t ms) {
  return net::now_ns() + ms * net::kNsPerMs;
}

TEST(DrillExec, KeepsTheExitStatusAndTheOutput) {
  const ActionResult ok = run_command({"sh", "-c", "echo out; echo err >&2"}, in_ms(5000));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.detail, "exited with status 0");
  EXPECT_EQ(ok.output, "out\nerr\n");
  const ActionResult bad = run_command({"sh", "-c", "exit 3"}, in_ms(5000));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_EQ(bad.detail, "exited with status 3");
}

TEST(DrillExec, RunsWithoutAShell) {
  const ActionResult r = run_command({"echo", "$HOME", "a;b"}, in_ms(5000));
  EXPECT_EQ(r.output, "$HOME a;b\n");
}

TEST(DrillExec, AMissingProgramIsOneLine) {
  const ActionResult r = run_command({"no-such-program-millstone"}, in_ms(5000));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "cannot run no-such-program-millstone: No such file or directory");
}

TEST(DrillExec, ATimeoutKillsTheWholeProcessGroup) {
  const std::string marker = ::testing::TempDir() + "/drill_group_" + std::to_string(getpid());
  unlink(marker.c_str());
  const int64_t before = net::now_ns();
  // The grandchild would touch the marker after 1 s if it survived the kill.
  const ActionResult r = run_command(
      {"sh", "-c", "(sleep 1; touch " + marker + ") & echo started; sleep 30"}, in_ms(300));
  EXPECT_FALSE(r.ok);
  EXPECT_LT(net::now_ns() - before, 3 * net::kNsPerSec);
  EXPECT_NE(r.detail.find("timed out after"), std::string::npos) << r.detail;
  EXPECT_EQ(r.output, "started\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "a process of the group outlived the timeout";
}

TEST(DrillExec, ABackgroundProcessHoldingThePipeDoesNotHoldTheDrill) {
  const int64_t before = net::now_ns();
  const ActionResult r = run_command({"sh", "-c", "sleep 3 & echo done"}, in_ms(5000));
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_LT(net::now_ns() - before, 2 * net::kNsPerSec);
}

TEST(OutputExcerpt, KeepsTheHeadAndTheTail) {
  OutputExcerpt e(4);
  e.append("abcdefgh");
  e.append("ijklmnop");
  EXPECT_EQ(e.total(), 16u);
  EXPECT_EQ(e.text(), "abcd[... 8 bytes left out ...]mnop");
  OutputExcerpt small(4);
  small.append("abcdef");
  EXPECT_EQ(small.text(), "abcdef");
}

TEST(DrillSignal, ReachesAProcessNamedByItsPidFile) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const std::string pid_file = ::testing::TempDir() + "/drill_pid_" + std::to_string(getpid());
  std::ofstream(pid_file) << child << "\n";
  const ActionResult stop = send_signal(SIGSTOP, 0, pid_file);
  EXPECT_TRUE(stop.ok) << stop.detail;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
  EXPECT_TRUE(WIFSTOPPED(status));
  EXPECT_TRUE(send_signal(SIGCONT, child, "").ok);
  const ActionResult kill_it = send_signal(SIGKILL, child, "");
  EXPECT_EQ(kill_it.detail, "sent SIGKILL to pid " + std::to_string(child));
  do {
    ASSERT_EQ(waitpid(child, &status, 0), child);
  } while (!WIFSIGNALED(status) && !WIFEXITED(status));
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(DrillSignal, RefusesPidsThatAreNotOneProcess) {
  const std::string pid_file = ::testing::TempDir() + "/drill_bad_pid_" + std::to_string(getpid());
  std::ofstream(pid_file) << "-1\n";
  EXPECT_FALSE(send_signal(SIGKILL, 0, pid_file).ok);
  std::ofstream(pid_file) << getpid() << "\n";
  const ActionResult self = send_signal(SIGKILL, 0, pid_file);
  EXPECT_FALSE(self.ok);
  EXPECT_NE(self.detail.find("is millstone itself"), std::string::npos);
  EXPECT_FALSE(send_signal(SIGKILL, 0, "/nonexistent/pid").ok);
}

TEST(DrillHttp, TheMockAndToxicWire) {
  scenario::MockAction mock{"http://127.0.0.1:8080", "list items", R"({"status":503})"};
  const HttpCall patch = mock_patch_call(mock);
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.url, "http://127.0.0.1:8080/__millstone/routes/list%20items");
  EXPECT_EQ(patch.body, R"({"status":503})");
  EXPECT_EQ(mock_reset_call(mock).method, "DELETE");
  EXPECT_EQ(mock_reset_call(mock).url, "http://127.0.0.1:8080/__millstone/routes/list%20items");
  scenario::ProxyAction proxy;
  proxy.api = "http://127.0.0.1:8474";
  proxy.proxy = "db";
  proxy.toxic_type = "latency";
  proxy.attributes = {{"latency", 200}};
  const HttpCall add = toxic_add_call(proxy, "slow-db");
  EXPECT_EQ(add.url, "http://127.0.0.1:8474/proxies/db/toxics");
  EXPECT_EQ(
      add.body,
      R"({"attributes":{"latency":200},"name":"slow-db","stream":"downstream","toxicity":1.0,"type":"latency"})");
  const HttpCall remove = toxic_remove_call(proxy, "slow-db");
  EXPECT_EQ(remove.method, "DELETE");
  EXPECT_EQ(remove.url, "http://127.0.0.1:8474/proxies/db/toxics/slow-db");
}

TEST(DrillToken, ReadFromTheEnvironmentOrAFileAndCarriedByTheCalls) {
  scenario::ApiToken from_env;
  from_env.env = "MILLSTONE_DRILL_TEST_TOKEN";
  from_env.location = "d.yaml:3:5";
  std::string error;
  unsetenv("MILLSTONE_DRILL_TEST_TOKEN");
  EXPECT_FALSE(read_token(&from_env, "orders", &error));
  EXPECT_EQ(error,
            "d.yaml:3:5: drill orders token_env MILLSTONE_DRILL_TEST_TOKEN is not set; expected "
            "the API's token in that environment variable");
  setenv("MILLSTONE_DRILL_TEST_TOKEN", "s3cret", 1);
  ASSERT_TRUE(read_token(&from_env, "orders", &error)) << error;
  EXPECT_EQ(from_env.value, "s3cret");
  unsetenv("MILLSTONE_DRILL_TEST_TOKEN");

  char path[] = "/tmp/millstone-token-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  scenario::ApiToken from_file;
  from_file.file = path;
  from_file.location = "d.yaml:4:5";
  std::ofstream(path) << "tok-123\n";
  ASSERT_TRUE(read_token(&from_file, "orders", &error)) << error;
  EXPECT_EQ(from_file.value, "tok-123");  // the file's newline is not part of it
  // A second line would become a second header line: refused, without quoting the token.
  std::ofstream(path) << "tok-123\nX-Other: 1\n";
  EXPECT_FALSE(read_token(&from_file, "orders", &error));
  EXPECT_EQ(error.find("tok-123"), std::string::npos) << error;
  EXPECT_NE(error.find("a control character"), std::string::npos) << error;
  unlink(path);
  EXPECT_FALSE(read_token(&from_file, "orders", &error));
  EXPECT_NE(error.find("cannot read it: No such file or directory"), std::string::npos) << error;

  scenario::MockAction mock{"http://127.0.0.1:8080", "r", "{}"};
  mock.token.value = "s3cret";
  EXPECT_EQ(mock_patch_call(mock).token, "s3cret");
  EXPECT_EQ(mock_reset_call(mock).token, "s3cret");
  scenario::ProxyAction proxy;
  proxy.token.value = "t";
  EXPECT_EQ(toxic_add_call(proxy, "x").token, "t");
  EXPECT_EQ(toxic_remove_call(proxy, "x").token, "t");
}

// The run's own proxies: a drill's toxic reaches the proxy on its thread,
// and the proxy's own list says so.
TEST(DrillLocalProxy, AddsAndRemovesTheToxicOnTheProxysThread) {
  proxy::Status status;
  std::string failed;
  auto proxies =
      proxy::ProxyThread::start({{"api", "127.0.0.1:0", "127.0.0.1:9", true}}, 1, &status, &failed);
  ASSERT_TRUE(proxies) << status.message;
  scenario::ProxyAction action;
  action.local = true;
  action.proxy = "api";
  action.toxic_type = "latency";
  action.attributes = {{"latency", 200}, {"jitter", 5}};
  const proxy::ToxicSpec spec = toxic_spec(action, "slow");
  EXPECT_EQ(spec.attributes.latency, 200);
  EXPECT_EQ(spec.attributes.jitter, 5);
  EXPECT_EQ(spec.stream, proxy::Direction::kDownstream);

  ActionResult added = local_toxic(*proxies, action, "slow", true, in_ms(2000));
  EXPECT_TRUE(added.ok) << added.detail;
  EXPECT_EQ(added.detail, "add toxic slow (latency downstream) to the run's proxy api: done");
  auto count_toxics = [&] {
    auto seen = std::make_shared<size_t>(99);
    proxies->call(
        [seen](proxy::FaultProxy& p) {
          proxy::ProxyState state;
          proxy::Status s = p.get("api", &state);
          *seen = state.toxics.size();
          return s;
        },
        in_ms(2000));
    return *seen;
  };
  EXPECT_EQ(count_toxics(), 1u);
  EXPECT_TRUE(local_toxic(*proxies, action, "slow", false, in_ms(2000)).ok);
  EXPECT_EQ(count_toxics(), 0u);
  const ActionResult again = local_toxic(*proxies, action, "slow", false, in_ms(2000));
  EXPECT_FALSE(again.ok);
  EXPECT_NE(again.detail.find("remove toxic slow from the run's proxy api: "), std::string::npos)
      << again.detail;
}

TEST(DrillHttp, AnUnreachableApiIsAFailureWithItsCause) {
  const ActionResult r =
      http_call({"POST", "http://127.0.0.1:1/proxies/x/toxics", "{}"}, in_ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("http://127.0.0.1:1/proxies/x/toxics"), std::string::npos) << r.detail;
}

}  // namespace actions_test
}  // namespace millstone::drill
