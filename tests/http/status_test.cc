#include "http/status.h"

#include <gtest/gtest.h>

namespace millstone::http {
namespace status_test {

TEST(ReasonPhraseTest, NamesTheCodesItsServersSend) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(201), "Created");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(500), "Internal Server Error");
}

// A code without a phrase leaves the status line valid ("HTTP/1.1 599 ").
TEST(ReasonPhraseTest, UnknownCodesHaveAnEmptyPhrase) {
  EXPECT_EQ(reason_phrase(599), "");
  EXPECT_EQ(reason_phrase(0), "");
}

}  // namespace status_test
}  // namespace millstone::http
