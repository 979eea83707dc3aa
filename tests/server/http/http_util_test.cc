// Unit tests for the HTTP server's pure helpers.
#include "server/httpd/http_util.h"

#include <gtest/gtest.h>

namespace baton::http {
namespace {

TEST(NormalizeTargetTest, DecodesAndRemovesDotSegments) {
  EXPECT_EQ(*NormalizeTarget("/"), "");
  EXPECT_EQ(*NormalizeTarget("/a/b.txt"), "a/b.txt");
  EXPECT_EQ(*NormalizeTarget("/a/./b/../c%20d?x=1#f"), "a/c d");
  EXPECT_EQ(*NormalizeTarget("/dir/"), "dir/");
  EXPECT_EQ(*NormalizeTarget("//a///b"), "a/b");
  EXPECT_EQ(*NormalizeTarget("/a/.."), "");
}

TEST(NormalizeTargetTest, RefusesTraversalAndOddBytes) {
  for (const char* bad :
       {"/..", "/../etc/passwd", "/a/../../x", "/%2e%2e/x", "/%2E%2e%2fx",
        "/a%2fb", "/a\\..\\b", "/a%5c..", "/a%00b", "/a%0ab", "/a%zz",
        "/a%2", "relative", "", "http://host/x"}) {
    EXPECT_FALSE(NormalizeTarget(bad).ok()) << bad;
  }
}

TEST(RangeTest, SingleRanges) {
  ByteRange r;
  EXPECT_EQ(ParseRange("bytes=0-9", 100, &r), RangeResult::kSatisfiable);
  EXPECT_EQ(r.first, 0);
  EXPECT_EQ(r.length, 10);
  EXPECT_EQ(ParseRange("bytes=90-", 100, &r), RangeResult::kSatisfiable);
  EXPECT_EQ(r.length, 10);
  EXPECT_EQ(ParseRange("bytes=-5", 100, &r), RangeResult::kSatisfiable);
  EXPECT_EQ(r.first, 95);
  EXPECT_EQ(ParseRange("bytes=50-500", 100, &r), RangeResult::kSatisfiable);
  EXPECT_EQ(r.length, 50);
  EXPECT_EQ(ParseRange("bytes=100-", 100, &r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-1,5-6", 100, &r), RangeResult::kNone);
  EXPECT_EQ(ParseRange("items=0-1", 100, &r), RangeResult::kNone);
  EXPECT_EQ(ParseRange("bytes=5-1", 100, &r), RangeResult::kNone);
}

TEST(DateTest, RoundTrips) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_FALSE(ParseHttpDate("yesterday").has_value());
}

TEST(EscapeTest, HtmlAndLinks) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  EXPECT_EQ(PercentEncodeSegment("a b/<c>?"), "a%20b%2F%3Cc%3E%3F");
}

TEST(ContentTypeTest, ByExtension) {
  EXPECT_STREQ(ContentTypeFor("index.HTML"), "text/html; charset=utf-8");
  EXPECT_STREQ(ContentTypeFor("x.png"), "image/png");
  EXPECT_STREQ(ContentTypeFor("noext"), "application/octet-stream");
}

}  // namespace
}  // namespace baton::http
