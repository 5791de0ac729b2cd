// Docs are code: every command block in README.md and docs/*.md that is
// marked runnable is run, and its exit code and stated output are checked.
//
// The markers (CONTRIBUTING.md, "Runnable docs"):
//   ```sh runnable [exit=N] [timeout=S]   a block to run with bash -e; exit
//                                         code N (default 0), within S seconds
//                                         (default 20)
//   ```output                             right after a runnable block: each
//                                         line must appear in what it printed
//                                         (stdout and stderr); "..." stands for
//                                         any text within the line
//   ```yaml file=NAME                     written to NAME before later blocks run
// The runnable blocks of one document run in order in one fresh directory
// (with examples/ linked in), sharing background processes (a mock started
// with `&`), which are killed when the document is done. `millstone` is this
// build's binary; 127.0.0.1:8080 becomes a free loopback port, and after a
// backgrounded `millstone mock` the block waits for that port to open.
// Everything stays on 127.0.0.1, and the whole test stops after 55 seconds.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace runnable_docs_test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct DocBlock {
  std::string doc;   // "docs/history.md"
  int line = 0;      // of the opening fence
  std::string info;  // the fence's info string: "sh runnable exit=98"
  std::vector<std::string> words;
  std::map<std::string, std::string> attributes;  // exit=98 -> {"exit", "98"}
  std::string body;
  bool runnable() const {
    return !words.empty() && words[0] == "sh" &&
           std::find(words.begin(), words.end(), "runnable") != words.end();
  }
  bool output() const { return words.size() == 1 && words[0] == "output"; }
  std::string where() const { return doc + ":" + std::to_string(line); }
};

// The ``` fenced blocks of a Markdown text, in order.
std::vector<DocBlock> fenced_blocks(const std::string& doc, const std::string& markdown) {
  std::vector<DocBlock> blocks;
  std::istringstream in(markdown);
  std::string line;
  int number = 0;
  DocBlock* open = nullptr;
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("```", 0) != 0) {
      if (open) open->body += line + "\n";
      continue;
    }
    if (open) {
      open = nullptr;
      continue;
    }
    DocBlock block;
    block.doc = doc;
    block.line = number;
    block.info = line.substr(3);
    std::istringstream words(block.info);
    for (std::string w; words >> w;) {
      block.words.push_back(w);
      size_t eq = w.find('=');
      if (eq != std::string::npos) block.attributes[w.substr(0, eq)] = w.substr(eq + 1);
    }
    blocks.push_back(std::move(block));
    open = &blocks.back();
  }
  return blocks;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
    text.replace(at, from.size(), to);
  return text;
}

// The block as bash runs it: the doc's port replaced, and a wait for the
// port after each backgrounded mock, so the next command finds it listening.
std::string script_for(const DocBlock& block, int port) {
  std::string script =
      "set -e\n"
      "__wait_for_port() {\n"
      "  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0;"
      " sleep 0.05; done\n"
      "  echo \"runnable docs: nothing listens on 127.0.0.1:$1\" >&2; return 1\n"
      "}\n";
  std::regex background_mock(R"(^\s*millstone mock .*&\s*(#.*)?$)");
  std::istringstream in(
      replace_all(block.body, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(port)));
  for (std::string line; std::getline(in, line);) {
    script += line + "\n";
    if (std::regex_match(line, background_mock))
      script += "__wait_for_port " + std::to_string(port) + "\n";
  }
  return script;
}

struct BlockRun {
  pid_t group = -1;
  int exit_code = -1;
  bool timed_out = false;
  std::string output;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the script in `dir` in a process group of its own, which outlives
// the script while something it started in the background runs.
BlockRun run_block(const std::string& script, const std::string& dir, const std::string& path,
                   double timeout_s) {
  std::string script_path = write_temp_file(script, ".sh");
  std::string out_path = write_temp_file("", ".out");
  BlockRun result;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(dir.c_str()) != 0) _exit(126);
    int out = open(out_path.c_str(), O_WRONLY | O_TRUNC);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out, 1);
    dup2(out, 2);
    setenv("PATH", path.c_str(), 1);
    setenv("HOME", dir.c_str(), 1);
    setenv("MILLSTONE_HISTORY", (dir + "/history.db").c_str(), 1);
    unsetenv("XDG_DATA_HOME");
    execl("/bin/bash", "bash", script_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  result.group = pid;
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (Clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.output = read_all(out_path);
  unlink(script_path.c_str());
  unlink(out_path.c_str());
  return result;
}

void stop_groups(const std::vector<pid_t>& groups) {
  for (pid_t g : groups)
    kill(-g, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(2);
  for (pid_t g : groups) {
    while (kill(-g, 0) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(-g, SIGKILL);
  }
}

// An expected line: some output line holds its "..."-separated pieces in order.
bool output_has(const std::string& output, const std::string& expected) {
  std::vector<std::string> pieces;
  size_t start = 0;
  for (size_t at; (at = expected.find("...", start)) != std::string::npos; start = at + 3)
    pieces.push_back(expected.substr(start, at - start));
  pieces.push_back(expected.substr(start));
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    size_t at = 0;
    bool all = true;
    for (const std::string& piece : pieces) {
      at = line.find(piece, at);
      if (at == std::string::npos) {
        all = false;
        break;
      }
      at += piece.size();
    }
    if (all) return true;
  }
  return false;
}

std::vector<std::string> documents() {
  std::vector<std::string> docs = {"README.md"};
  std::vector<std::string> in_docs;
  for (const auto& entry : fs::directory_iterator(fs::path(MILLSTONE_SOURCE_DIR) / "docs")) {
    if (entry.path().extension() == ".md")
      in_docs.push_back("docs/" + entry.path().filename().string());
  }
  std::sort(in_docs.begin(), in_docs.end());
  docs.insert(docs.end(), in_docs.begin(), in_docs.end());
  return docs;
}

TEST(RunnableDocs, MarkersFilesAndOutputsAreRead) {
  std::string md =
      "text\n```sh runnable exit=98 timeout=5\nmillstone mock --listen 127.0.0.1:8080 &\n"
      "millstone compare last\n```\n\n```output\nWARNING: ...load\n```\n"
      "```yaml file=first.yaml\ntarget: http://127.0.0.1:8080\n```\n```sh\nnot run\n```\n";
  std::vector<DocBlock> blocks = fenced_blocks("x.md", md);
  ASSERT_EQ(blocks.size(), 4u);
  EXPECT_TRUE(blocks[0].runnable());
  EXPECT_EQ(blocks[0].line, 2);
  EXPECT_EQ(blocks[0].attributes["exit"], "98");
  EXPECT_EQ(blocks[0].attributes["timeout"], "5");
  EXPECT_TRUE(blocks[1].output());
  EXPECT_EQ(blocks[2].attributes["file"], "first.yaml");
  EXPECT_FALSE(blocks[3].runnable());
  std::string script = script_for(blocks[0], 4242);
  EXPECT_NE(script.find("millstone mock --listen 127.0.0.1:4242 &\n__wait_for_port 4242\n"
                        "millstone compare last\n"),
            std::string::npos)
      << script;
  EXPECT_TRUE(
      output_has("x\nWARNING: the two runs did not apply the same load\n", "WARNING: ...load"));
  EXPECT_FALSE(output_has("WARNING: x\nload\n", "WARNING: ...load"));
}

TEST(RunnableDocs, EveryRunnableBlockRunsAsDocumented) {
  const auto started = Clock::now();
  const double budget_s = 55;
  // `millstone` on PATH is this build's binary.
  std::string bin = temp_dir();
  fs::create_symlink(MILLSTONE_BINARY, bin + "/millstone");
  std::string path = bin + ":/usr/local/bin:/usr/bin:/bin";
  size_t ran = 0;
  bool over_budget = false;
  for (const std::string& doc : documents()) {
    std::vector<DocBlock> blocks =
        fenced_blocks(doc, read_all(std::string(MILLSTONE_SOURCE_DIR) + "/" + doc));
    bool any =
        std::any_of(blocks.begin(), blocks.end(), [](const DocBlock& b) { return b.runnable(); });
    if (!any) continue;
    std::string dir = temp_dir();
    fs::create_directory_symlink(fs::path(MILLSTONE_SOURCE_DIR) / "examples", dir + "/examples");
    int port = free_port();
    std::vector<pid_t> groups;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const DocBlock& block = blocks[i];
      if (block.attributes.count("file")) {
        std::ofstream(dir + "/" + block.attributes.at("file"))
            << replace_all(block.body, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(port));
        continue;
      }
      if (!block.runnable()) continue;
      double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
      double timeout =
          block.attributes.count("timeout") ? std::stod(block.attributes.at("timeout")) : 20;
      if (elapsed + 1 > budget_s) {
        ADD_FAILURE() << "runnable docs take too long: " << block.where() << " would start at "
                      << elapsed << " s";
        over_budget = true;
        break;
      }
      BlockRun run =
          run_block(script_for(block, port), dir, path, std::min(timeout, budget_s - elapsed));
      groups.push_back(run.group);
      ++ran;
      int expected = block.attributes.count("exit") ? std::stoi(block.attributes.at("exit")) : 0;
      EXPECT_FALSE(run.timed_out) << block.where() << ": still running after " << timeout << " s\n"
                                  << run.output;
      EXPECT_EQ(run.exit_code, expected) << block.where() << ": exit code\n" << run.output;
      if (i + 1 < blocks.size() && blocks[i + 1].output()) {
        std::istringstream lines(blocks[i + 1].body);
        for (std::string line; std::getline(lines, line);) {
          if (line.find_first_not_of(' ') == std::string::npos) continue;
          EXPECT_TRUE(output_has(run.output, line))
              << blocks[i + 1].where() << ": the output of " << block.where()
              << " lacks the line\n  " << line << "\nit printed:\n"
              << run.output;
        }
      }
    }
    stop_groups(groups);
    if (over_budget) break;
  }
  // The markers exist: a doc edit that drops them all must not pass silently.
  EXPECT_GE(ran, 3u);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - started).count(), 60.0);
}

}  // namespace runnable_docs_test
}  // namespace millstone::testing
