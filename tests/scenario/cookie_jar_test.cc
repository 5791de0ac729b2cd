#include "scenario/cookie_jar.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::scenario {
namespace cookie_jar_test {

constexpr int64_t kNow = 1700000000;  // 2023-11-14T22:13:20Z

std::string cookies_for(const CookieJar& jar, std::string_view path, int64_t now = kNow) {
  std::string out;
  jar.render(path, now, &out);
  return out;
}

// --- parsing ---------------------------------------------------------------------

TEST(CookieJarTest, StoresNameAndValue) {
  CookieJar jar;
  EXPECT_TRUE(jar.store("session=abc123", "/", kNow));
  EXPECT_EQ(jar.size(), 1u);
  EXPECT_EQ(jar.get("session"), "abc123");
  EXPECT_EQ(jar.get("other"), "");
  EXPECT_EQ(cookies_for(jar, "/"), "session=abc123");
}

TEST(CookieJarTest, TrimsWhitespaceAndKeepsQuotesAndEquals) {
  CookieJar jar;
  EXPECT_TRUE(jar.store("  a \t=  1 2  ; Path=/", "/", kNow));
  EXPECT_TRUE(jar.store("b=\"quoted\"", "/", kNow));
  EXPECT_TRUE(jar.store("c=x=y==", "/", kNow));
  EXPECT_TRUE(jar.store("d=", "/", kNow));
  EXPECT_EQ(jar.get("a"), "1 2");
  EXPECT_EQ(jar.get("b"), "\"quoted\"");
  EXPECT_EQ(jar.get("c"), "x=y==");
  EXPECT_EQ(cookies_for(jar, "/"), "a=1 2; b=\"quoted\"; c=x=y==; d=");
}

TEST(CookieJarTest, FullAttributeLineParses) {
  CookieJar jar;
  EXPECT_TRUE(
      jar.store("id=a3fWa; Path=/x; Max-Age=60; Expires=Wed, 21 Oct 2015 07:28:00 GMT; "
                "HttpOnly; Secure; Domain=example.com; SameSite=Lax",
                "/", kNow));
  EXPECT_EQ(cookies_for(jar, "/x"), "id=a3fWa");  // Max-Age wins over a past Expires
  EXPECT_EQ(cookies_for(jar, "/"), "");
  EXPECT_EQ(cookies_for(jar, "/x", kNow + 59), "id=a3fWa");
  EXPECT_EQ(cookies_for(jar, "/x", kNow + 60), "");
}

TEST(CookieJarTest, MalformedValuesAreIgnored) {
  CookieJar jar;
  EXPECT_FALSE(jar.store("", "/", kNow));
  EXPECT_FALSE(jar.store("novalue", "/", kNow));
  EXPECT_FALSE(jar.store("novalue; Path=/", "/", kNow));
  EXPECT_FALSE(jar.store("=value", "/", kNow));
  EXPECT_FALSE(jar.store("  =value", "/", kNow));
  EXPECT_FALSE(jar.store("big=" + std::string(5000, 'x'), "/", kNow));
  EXPECT_EQ(jar.size(), 0u);
}

TEST(CookieJarTest, AttributeNamesAreCaseInsensitive) {
  CookieJar jar;
  EXPECT_TRUE(jar.store("a=1; PATH=/p; max-age=10", "/", kNow));
  EXPECT_EQ(cookies_for(jar, "/p"), "a=1");
  EXPECT_EQ(cookies_for(jar, "/"), "");
  EXPECT_EQ(cookies_for(jar, "/p", kNow + 10), "");
}

// --- paths ---------------------------------------------------------------------------

TEST(CookieJarTest, DefaultPathIsTheRequestDirectory) {
  CookieJar jar;
  jar.store("a=1", "/account/login", kNow);  // -> /account
  jar.store("b=2", "/top", kNow);            // -> /
  jar.store("c=3", "/x/y/", kNow);           // -> /x/y
  jar.store("d=4", "", kNow);                // -> /
  jar.store("e=5", "relative", kNow);        // -> /
  jar.store("f=6", "/q/r?next=/s/t", kNow);  // the query is not part of the path -> /q
  EXPECT_EQ(cookies_for(jar, "/account"), "a=1; b=2; d=4; e=5");
  EXPECT_EQ(cookies_for(jar, "/account/settings"), "a=1; b=2; d=4; e=5");
  EXPECT_EQ(cookies_for(jar, "/x/y/z"), "c=3; b=2; d=4; e=5");
  EXPECT_EQ(cookies_for(jar, "/x"), "b=2; d=4; e=5");
  EXPECT_EQ(cookies_for(jar, "/q/anything"), "f=6; b=2; d=4; e=5");
}

TEST(CookieJarTest, InvalidPathAttributeFallsBackToDefault) {
  CookieJar jar;
  jar.store("a=1; Path=", "/dir/page", kNow);
  jar.store("b=2; Path=nope", "/dir/page", kNow);
  EXPECT_EQ(cookies_for(jar, "/dir/x"), "a=1; b=2");
  EXPECT_EQ(cookies_for(jar, "/other"), "");
}

TEST(CookieJarTest, PathMatchingFollowsRfc6265) {
  CookieJar jar;
  jar.store("a=1; Path=/docs", "/", kNow);
  EXPECT_EQ(cookies_for(jar, "/docs"), "a=1");
  EXPECT_EQ(cookies_for(jar, "/docs/"), "a=1");
  EXPECT_EQ(cookies_for(jar, "/docs/web"), "a=1");
  EXPECT_EQ(cookies_for(jar, "/docs?x=1"), "a=1");
  EXPECT_EQ(cookies_for(jar, "/docsets"), "");  // a prefix but not at a '/'
  EXPECT_EQ(cookies_for(jar, "/doc"), "");
  EXPECT_EQ(cookies_for(jar, "/"), "");
  EXPECT_EQ(cookies_for(jar, "/Docs"), "");  // paths are case-sensitive

  CookieJar slash;
  slash.store("b=2; Path=/docs/", "/", kNow);
  EXPECT_EQ(cookies_for(slash, "/docs/web"), "b=2");
  EXPECT_EQ(cookies_for(slash, "/docs/"), "b=2");
  EXPECT_EQ(cookies_for(slash, "/docs"), "");

  CookieJar root;
  root.store("c=3; Path=/", "/", kNow);
  EXPECT_EQ(cookies_for(root, "/anything/at/all"), "c=3");
  EXPECT_EQ(cookies_for(root, ""), "c=3");  // an empty request path is "/"
}

TEST(CookieJarTest, LongerPathsRenderFirstThenCreationOrder) {
  CookieJar jar;
  jar.store("root1=1; Path=/", "/", kNow);
  jar.store("deep=2; Path=/a/b", "/", kNow);
  jar.store("mid=3; Path=/a", "/", kNow);
  jar.store("root2=4; Path=/", "/", kNow);
  jar.store("deep2=5; Path=/a/c", "/", kNow);  // same length as /a/b, created later
  EXPECT_EQ(cookies_for(jar, "/a/b/c"), "deep=2; mid=3; root1=1; root2=4");
  EXPECT_EQ(cookies_for(jar, "/a/c"), "deep2=5; mid=3; root1=1; root2=4");
  EXPECT_EQ(cookies_for(jar, "/b"), "root1=1; root2=4");
}

TEST(CookieJarTest, RenderAppends) {
  CookieJar jar;
  jar.store("a=1", "/", kNow);
  std::string out = "Cookie: ";
  jar.render("/", kNow, &out);
  EXPECT_EQ(out, "Cookie: a=1");
  std::string none = "x";
  CookieJar().render("/", kNow, &none);
  EXPECT_EQ(none, "x");
}

// --- replacing and deleting ------------------------------------------------------

TEST(CookieJarTest, SameNameAndPathReplacesInPlace) {
  CookieJar jar;
  jar.store("a=1", "/", kNow);
  jar.store("b=2", "/", kNow);
  jar.store("a=3", "/", kNow);
  EXPECT_EQ(jar.size(), 2u);
  EXPECT_EQ(jar.get("a"), "3");
  EXPECT_EQ(cookies_for(jar, "/"), "a=3; b=2");  // keeps its creation order
}

TEST(CookieJarTest, SameNameDifferentPathIsAnotherCookie) {
  CookieJar jar;
  jar.store("a=root; Path=/", "/", kNow);
  jar.store("a=api; Path=/api", "/", kNow);
  EXPECT_EQ(jar.size(), 2u);
  EXPECT_EQ(cookies_for(jar, "/api/x"), "a=api; a=root");
  EXPECT_EQ(cookies_for(jar, "/"), "a=root");
  EXPECT_EQ(jar.get("a"), "api");  // the most specific one
}

TEST(CookieJarTest, MaxAgeZeroOrNegativeDeletes) {
  CookieJar jar;
  jar.store("a=1", "/", kNow);
  jar.store("b=2", "/", kNow);
  EXPECT_TRUE(jar.store("a=; Max-Age=0", "/", kNow));
  EXPECT_EQ(jar.size(), 1u);
  EXPECT_EQ(jar.get("a"), "");
  EXPECT_TRUE(jar.store("b=x; Max-Age=-1", "/", kNow));
  EXPECT_EQ(jar.size(), 0u);
  EXPECT_EQ(cookies_for(jar, "/"), "");
  // Deleting something absent is fine and stores nothing.
  EXPECT_TRUE(jar.store("c=1; Max-Age=0", "/", kNow));
  EXPECT_EQ(jar.size(), 0u);
}

TEST(CookieJarTest, DeletionNeedsTheSamePath) {
  CookieJar jar;
  jar.store("a=1; Path=/x", "/", kNow);
  jar.store("a=; Max-Age=0; Path=/", "/", kNow);
  EXPECT_EQ(jar.size(), 1u);
  jar.store("a=; Max-Age=0; Path=/x", "/", kNow);
  EXPECT_EQ(jar.size(), 0u);
}

TEST(CookieJarTest, ExpiresInThePastDeletes) {
  CookieJar jar;
  jar.store("a=1", "/", kNow);
  EXPECT_TRUE(jar.store("a=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/", kNow));
  EXPECT_EQ(jar.size(), 0u);
}

TEST(CookieJarTest, ExpiresInTheFutureExpiresLater) {
  CookieJar jar;
  // 2015-10-21T07:28:00Z = 1445412480
  jar.store("a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT", "/", 1445412000);
  EXPECT_EQ(cookies_for(jar, "/", 1445412479), "a=1");
  EXPECT_EQ(cookies_for(jar, "/", 1445412480), "");
  EXPECT_EQ(jar.get("a"), "1");  // still held until the next store purges it
  jar.store("b=2", "/", 1445412480);
  EXPECT_EQ(jar.size(), 1u);
  EXPECT_EQ(jar.get("a"), "");
}

TEST(CookieJarTest, MaxAgeWinsOverExpiresInEitherOrder) {
  CookieJar jar;
  jar.store("a=1; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/", kNow);
  jar.store("b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=100", "/", kNow);
  jar.store("c=3; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=0", "/", kNow);
  EXPECT_EQ(cookies_for(jar, "/"), "a=1; b=2");
  EXPECT_EQ(cookies_for(jar, "/", kNow + 100), "");
}

TEST(CookieJarTest, InvalidMaxAgeOrExpiresIsIgnored) {
  CookieJar jar;
  jar.store("a=1; Max-Age=abc", "/", kNow);
  jar.store("b=2; Max-Age=1.5", "/", kNow);
  jar.store("c=3; Max-Age=", "/", kNow);
  jar.store("d=4; Expires=yesterday", "/", kNow);
  // Ignored attributes leave session cookies, which never expire here.
  EXPECT_EQ(cookies_for(jar, "/", INT64_MAX - 1), "a=1; b=2; c=3; d=4");
}

TEST(CookieJarTest, LastMaxAgeWins) {
  CookieJar jar;
  jar.store("a=1; Max-Age=0; Max-Age=50", "/", kNow);
  EXPECT_EQ(jar.size(), 1u);
  EXPECT_EQ(cookies_for(jar, "/", kNow + 49), "a=1");
  EXPECT_EQ(cookies_for(jar, "/", kNow + 50), "");
}

TEST(CookieJarTest, HugeMaxAgeSaturates) {
  CookieJar jar;
  jar.store("a=1; Max-Age=99999999999999999999999999", "/", kNow);
  EXPECT_EQ(cookies_for(jar, "/", INT64_MAX - 1), "a=1");
}

TEST(CookieJarTest, ExpiredCookiesArePurgedOnStore) {
  CookieJar jar;
  jar.store("a=1; Max-Age=10", "/", kNow);
  jar.store("b=1; Max-Age=20", "/", kNow);
  EXPECT_EQ(jar.size(), 2u);
  jar.store("c=1", "/", kNow + 15);
  EXPECT_EQ(jar.size(), 2u);
  EXPECT_EQ(cookies_for(jar, "/", kNow + 15), "b=1; c=1");
}

TEST(CookieJarTest, LimitsTheNumberOfCookies) {
  CookieJar jar;
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(jar.store("c" + std::to_string(i) + "=v", "/", kNow));
  EXPECT_FALSE(jar.store("one_too_many=v", "/", kNow));
  EXPECT_EQ(jar.size(), 50u);
  EXPECT_TRUE(jar.store("c0=replaced", "/", kNow));  // replacing is still allowed
  EXPECT_EQ(jar.get("c0"), "replaced");
  EXPECT_TRUE(jar.store("c1=; Max-Age=0", "/", kNow));
  EXPECT_TRUE(jar.store("now_fits=v", "/", kNow));
  EXPECT_EQ(jar.size(), 50u);
}

TEST(CookieJarTest, Clear) {
  CookieJar jar;
  jar.store("a=1", "/", kNow);
  jar.clear();
  EXPECT_EQ(jar.size(), 0u);
  EXPECT_EQ(cookies_for(jar, "/"), "");
}

// --- dates -----------------------------------------------------------------------------

int64_t date(std::string_view text) {
  int64_t t = -1;
  EXPECT_TRUE(parse_cookie_date(text, &t)) << text;
  return t;
}

bool parses(std::string_view text) {
  int64_t t = 0;
  return parse_cookie_date(text, &t);
}

TEST(CookieDateTest, TheThreeHttpDateForms) {
  EXPECT_EQ(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);   // IMF-fixdate
  EXPECT_EQ(date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);  // RFC 850
  EXPECT_EQ(date("Sun Nov  6 08:49:37 1994"), 784111777);        // asctime
  EXPECT_EQ(date("Wed, 21 Oct 2015 07:28:00 GMT"), 1445412480);
}

TEST(CookieDateTest, ForgivingVariants) {
  EXPECT_EQ(date("21 Oct 2015 07:28:00"), 1445412480);             // no weekday, no zone
  EXPECT_EQ(date("wed, 21-oct-2015 07:28:00 gmt"), 1445412480);    // case
  EXPECT_EQ(date("Wed, 21 October 2015 7:28:0 GMT"), 1445412480);  // long month, short fields
  EXPECT_EQ(date("2015 Oct 21 07:28:00"), 1445412480);             // any order
  EXPECT_EQ(date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
}

TEST(CookieDateTest, TwoDigitYears) {
  EXPECT_EQ(date("01 Jan 70 00:00:00"), 0);           // 70..99 -> 19xx
  EXPECT_EQ(date("01 Jan 69 00:00:00"), 3124224000);  // 00..69 -> 20xx
}

TEST(CookieDateTest, LeapDays) {
  EXPECT_TRUE(parses("29 Feb 2016 00:00:00"));
  EXPECT_TRUE(parses("29 Feb 2000 00:00:00"));
  EXPECT_FALSE(parses("29 Feb 2015 00:00:00"));
  EXPECT_FALSE(parses("29 Feb 2100 00:00:00"));
  EXPECT_EQ(date("29 Feb 2016 00:00:00") + 86400, date("01 Mar 2016 00:00:00"));
}

TEST(CookieDateTest, RejectsIncompleteOrInvalid) {
  EXPECT_FALSE(parses(""));
  EXPECT_FALSE(parses("yesterday"));
  EXPECT_FALSE(parses("21 Oct 2015"));            // no time
  EXPECT_FALSE(parses("Oct 2015 07:28:00"));      // no day
  EXPECT_FALSE(parses("21 2015 07:28:00"));       // no month
  EXPECT_FALSE(parses("21 Oct 07:28:00"));        // no year
  EXPECT_FALSE(parses("32 Oct 2015 07:28:00"));   // day out of range
  EXPECT_FALSE(parses("31 Nov 2015 07:28:00"));   // no such date
  EXPECT_FALSE(parses("21 Oct 2015 24:00:00"));   // hour
  EXPECT_FALSE(parses("21 Oct 2015 07:60:00"));   // minute
  EXPECT_FALSE(parses("21 Oct 1600 07:28:00"));   // before 1601
  EXPECT_FALSE(parses("21 Oct 20150 07:28:00"));  // five-digit year
}

TEST(CookieDateTest, EarliestYear) {
  EXPECT_EQ(date("01 Jan 1601 00:00:00"), -11644473600);
}

}  // namespace cookie_jar_test
}  // namespace millstone::scenario
