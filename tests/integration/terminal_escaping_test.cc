// What a target sends, or an input file holds, never reaches the user's
// terminal as control bytes: bodies in failed-check samples, names from the
// scenario file, and what `millstone show`, `runs` and `compare` print from
// the history are written through text::printable.
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace terminal_escaping_test {

// Raw control bytes other than newline; the position of the first, or npos.
size_t first_control_byte(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7F) return i;
    // C1 controls, UTF-8 encoded (U+0080 to U+009F).
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9F)
      return i;
  }
  return std::string::npos;
}

std::string around(const std::string& text, size_t at) {
  const size_t from = at > 40 ? at - 40 : 0;
  std::string out;
  for (char c : text.substr(from, 80)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out += u < 0x20 || u >= 0x7F ? "<" + std::to_string(u) + ">" : std::string(1, c);
  }
  return out;
}

#define EXPECT_NO_CONTROL_BYTES(text)                                                         \
  do {                                                                                        \
    const std::string& t_ = (text);                                                           \
    const size_t at_ = first_control_byte(t_);                                                \
    EXPECT_EQ(at_, std::string::npos) << #text << " has a control byte: " << around(t_, at_); \
  } while (false)

// A body with ESC (a colour and a screen clear), BEL, NUL, DEL and a C1 CSI;
// YAML's double-quoted escapes write the bytes.
const char* kMock = R"(
routes:
  - path: /hostile
    status: 500
    body: "\e[2J\e]0;pwned\a boom\0 \x7f \u009b31m end"
)";

const char* kScenario = R"(
name: "hostile \e[31mname\a"
target: http://127.0.0.1:PORT
flows:
  hostile:
    steps:
      - get: /hostile
        check:
          status: 200
          body: {contains: "\e[5m"}
scenarios:
  main: {executor: iterations, vus: 1, iterations: 3, max_duration: 10s}
)";

TEST(TerminalEscaping, TargetBodiesAndScenarioNamesAreEscaped) {
  MockServer mock(kMock);
  const std::string path = write_temp_file(
      std::regex_replace(kScenario, std::regex("PORT"), std::to_string(mock.port())), ".yaml");
  ProcessResult run = run_millstone({"run", path, "-w", "1"}, 60);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // The failed check's sample is there, escaped.
  EXPECT_NE(
      run.out.find("status 500, body: \\x1b[2J\\x1b]0;pwned\\x07 boom\\x00 \\x7f \\u009b31m end"),
      std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("body contains \"\\x1b[5m\""), std::string::npos) << run.out;
  EXPECT_NO_CONTROL_BYTES(run.out);
  EXPECT_NO_CONTROL_BYTES(run.err);

  std::smatch m;
  ASSERT_TRUE(std::regex_search(run.err, m, std::regex(R"(recorded as (\S+))"))) << run.err;
  const std::string id = m[1];
  ProcessResult show = run_millstone({"show", id}, 30);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("hostile \\x1b[31mname\\x07"), std::string::npos) << show.out;
  EXPECT_NO_CONTROL_BYTES(show.out);
  ProcessResult runs = run_millstone({"runs"}, 30);
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  EXPECT_NO_CONTROL_BYTES(runs.out);
  ProcessResult compare = run_millstone({"compare", id, id}, 30);
  EXPECT_NO_CONTROL_BYTES(compare.out);
  EXPECT_NO_CONTROL_BYTES(compare.err);
  EXPECT_NE(compare.out.find("\\x1b[5m"), std::string::npos) << compare.out;  // a check's name
}

// A scenario file's error quotes the file: its bytes are escaped too.
TEST(TerminalEscaping, ScenarioErrorsQuoteTheFileEscaped) {
  const std::string path = write_temp_file(
      "target: http://127.0.0.1:1\nflows:\n  f:\n    steps:\n      - \"get\x1b[2J\": /\n", ".yaml");
  ProcessResult run = run_millstone({"run", path}, 30);
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NO_CONTROL_BYTES(run.err);
}

}  // namespace terminal_escaping_test
}  // namespace millstone::testing
