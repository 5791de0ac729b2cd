#include "amqp/url.h"

#include <gtest/gtest.h>

namespace millstone::amqp {
namespace url_test {

TEST(AmqpUrl, PartsDefaultsAndPercentEncoding) {
  std::string error;
  auto url = parse_amqp_url("amqp://127.0.0.1", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->user, "guest");
  EXPECT_EQ(url->port, 5672);
  EXPECT_EQ(url->vhost, "/");
  url = parse_amqp_url("amqp://u%40x:p%3Aw@[::1]:5673/%2Fprod", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->user, "u@x");
  EXPECT_EQ(url->password, "p:w");
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 5673);
  EXPECT_EQ(url->vhost, "/prod");
  EXPECT_EQ(url->display(), "amqp://u@x@[::1]:5673//prod");
  url = parse_amqp_url("amqp://h/", &error);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->vhost, "/");
}

TEST(AmqpUrl, RejectsWhatItCannotUse) {
  std::string error;
  for (const char* bad :
       {"http://h/", "amqp://", "amqp://h:0/", "amqp://h:99999/", "amqp://h:x/", "amqp://h/a/b",
        "amqp://h/%zz", "amqp://[::1/", "amqp://h/?heartbeat=5"}) {
    EXPECT_FALSE(parse_amqp_url(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace url_test
}  // namespace millstone::amqp
