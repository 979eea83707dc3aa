// Unit tests for the HTTP server's pure helpers.
#include "server/httpd/http_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/httpd/head_syntax.h"

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
        "/a%2fb", "/a\\..\\b", "/a%5c..", "/a%00b", "/a%0ab", "/a%zz", "/a%2",
        "relative", "", "ftp://host/x", "http://user@host/x",
        "http://host/../x", "http:/x", "*"}) {
    EXPECT_FALSE(NormalizeTarget(bad).ok()) << bad;
  }
}

// RFC 9112 3.2.2: a server must accept the absolute form.
TEST(NormalizeTargetTest, AcceptsAbsoluteForm) {
  EXPECT_EQ(*NormalizeTarget("http://host/a/b%20c?q=1"), "a/b c");
  EXPECT_EQ(*NormalizeTarget("HTTPS://host:8443/dir/"), "dir/");
  EXPECT_EQ(*NormalizeTarget("http://host"), "");
  EXPECT_EQ(*NormalizeTarget("http://host?x"), "");
}

TEST(PathTest, DotSegmentsAndEncoding) {
  EXPECT_TRUE(HasDotSegment(".git/config"));
  EXPECT_TRUE(HasDotSegment("a/.env"));
  EXPECT_TRUE(HasDotSegment("a/.hidden/"));
  EXPECT_FALSE(HasDotSegment("a/b.txt"));
  EXPECT_FALSE(HasDotSegment(""));
  EXPECT_EQ(PercentEncodePath("x?y/50%/a b/"), "x%3Fy/50%25/a%20b/");
  EXPECT_EQ(PercentEncodePath("plain/dir"), "plain/dir");
}

// 501 only for a well-formed method token; anything else in the method is
// a malformed request line, 400. `refused` starts where http-parser stopped.
TEST(MethodTest, UnknownTokenVersusMalformedLine) {
  EXPECT_TRUE(IsUnknownMethod("REW /pot HTTP/1.1\r\n", true));  // BREW
  EXPECT_TRUE(IsUnknownMethod("FOO / HTTP/1.1\r\n", false));
  EXPECT_TRUE(IsUnknownMethod(" / HTTP/1.1\r\n", true));  // GE
  EXPECT_TRUE(IsUnknownMethod("FO", false));  // the rest has not arrived
  EXPECT_FALSE(IsUnknownMethod(std::string("\0\1garbage", 9), false));
  EXPECT_FALSE(IsUnknownMethod("\xffT / HTTP/1.1\r\n", true));  // G\xffT
  EXPECT_FALSE(IsUnknownMethod("\x01T / HTTP/1.1\r\n", true));  // GE\x01T
  EXPECT_FALSE(IsUnknownMethod(" / HTTP/1.1\r\n", false));      // no method
  EXPECT_FALSE(IsUnknownMethod("FOO\r\n", false));
}

// Bare LF and obs-fold are refused wherever the reads split the head.
TEST(HeadSyntaxTest, RefusesBareLfAndFoldsAcrossSplits) {
  const std::string good[] = {
      "GET / HTTP/1.1\r\nHost: a\r\nX: y z\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  // empty line first
      "GET / HTTP/1.0\r\n\r\n",
  };
  const std::string bad[] = {
      "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n Content-Length: 5\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tZ: 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\n",
      "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\n",
      "GET / HTTP/1.0\n\n",
      "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
  };
  for (size_t split = 0; split < 60; ++split) {
    for (const std::string& head : good) {
      HeadSyntax check;
      const size_t at = std::min(split, head.size());
      EXPECT_TRUE(check.Feed(head.substr(0, at)) && check.Feed(head.substr(at)))
          << head << " split at " << split;
    }
    for (const std::string& head : bad) {
      HeadSyntax check;
      const size_t at = std::min(split, head.size());
      const bool first = check.Feed(head.substr(0, at));
      EXPECT_FALSE(first && check.Feed(head.substr(at)))
          << head << " split at " << split;
    }
  }
  HeadSyntax check;
  EXPECT_FALSE(check.Feed("GET / HTTP/1.1\n"));
  check.Reset();
  EXPECT_TRUE(check.Feed("GET / HTTP/1.1\r\n"));
}

class FileTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/util_", ::getpid());
    ::mkdir(root_.c_str(), 0755);
    ::mkdir((root_ + "/many").c_str(), 0755);
    for (int i = 0; i < 30; ++i) {
      std::ofstream(absl::StrCat(root_, "/many/f", 100 + i)) << "x";
    }
    std::ofstream(root_ + "/many/.secret") << "s";
    std::ofstream(root_ + "/file") << "data";
    fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }

  std::string root_;
  int fd_ = -1;
};

// The walk used on kernels without openat2: "file/" is not the file.
TEST_F(FileTreeTest, WalkRefusesTrailingSlashOnAFile) {
  for (auto open : {&OpenBeneath, &OpenBeneathByWalk}) {
    const int file = open(fd_, "file");
    EXPECT_GE(file, 0);
    if (file >= 0) ::close(file);
    EXPECT_EQ(open(fd_, "file/"), -ENOTDIR);
    const int dir = open(fd_, "many/");
    EXPECT_GE(dir, 0);
    if (dir >= 0) ::close(dir);
  }
}

TEST_F(FileTreeTest, ListingIsBoundedAndHidesDotfiles) {
  const int dir = OpenBeneath(fd_, "many/");
  ASSERT_GE(dir, 0);
  ListingOptions options;
  options.max_entries = 10;
  std::string html = DirectoryListing(dir, "/many/", options);
  size_t items = 0;
  for (size_t p = 0; (p = html.find("<li><a href=\"f", p)) != std::string::npos;
       ++p) {
    ++items;
  }
  // Ten entries read, .secret perhaps among them (readdir order).
  EXPECT_GE(items, 9u) << html;
  EXPECT_LE(items, 10u) << html;
  EXPECT_TRUE(absl::StrContains(html, "Only part of this directory")) << html;
  EXPECT_FALSE(absl::StrContains(html, ".secret"));
  options.max_entries = 100;
  html = DirectoryListing(dir, "/many/", options);
  EXPECT_TRUE(absl::StrContains(html, "f129"));
  EXPECT_FALSE(absl::StrContains(html, "Only part")) << html;
  EXPECT_FALSE(absl::StrContains(html, ".secret"));
  options.show_dotfiles = true;
  EXPECT_TRUE(
      absl::StrContains(DirectoryListing(dir, "/many/", options), ".secret"));
  ::close(dir);
}

TEST_F(FileTreeTest, ListingIsBoundedInBytes) {
  const int dir = OpenBeneath(fd_, "many/");
  ASSERT_GE(dir, 0);
  ListingOptions options;
  const std::string whole = DirectoryListing(dir, "/many/", options);
  EXPECT_TRUE(absl::StrContains(whole, "f129"));
  for (size_t bound : {whole.size(), whole.size() - 1, size_t{600}}) {
    options.max_bytes = bound;
    const std::string html = DirectoryListing(dir, "/many/", options);
    EXPECT_LE(html.size(), bound);
    EXPECT_EQ(absl::StrContains(html, "Only part of this directory"),
              bound < whole.size())
        << bound;
    EXPECT_TRUE(absl::EndsWith(html, "</ul></body></html>\n"));
  }
  ::close(dir);
}

// The dotfile rule holds on where a path resolves beneath the root.
TEST_F(FileTreeTest, OpenVisibleBeneathFollowsLinksIntoHiddenNames) {
  ::mkdir((root_ + "/.git").c_str(), 0755);
  std::ofstream(root_ + "/.git/config") << "c";
  for (const auto& [target, name] :
       {std::pair<const char*, const char*>{".git", "/cfg"},
        {"many/f100", "/link"},
        {"cfg/config", "/chain"}}) {
    ::unlink((root_ + name).c_str());
    ASSERT_EQ(::symlink(target, (root_ + name).c_str()), 0) << name;
  }
  for (const char* hidden :
       {".git/config", "cfg/config", "cfg", "cfg/", "chain", "many/.secret"}) {
    EXPECT_EQ(OpenVisibleBeneath(fd_, hidden, false), -ENOENT) << hidden;
    const int fd = OpenVisibleBeneath(fd_, hidden, true);
    EXPECT_GE(fd, 0) << hidden;
    if (fd >= 0) ::close(fd);
  }
  for (const char* visible : {"file", "link", "many/", ""}) {
    const int fd = OpenVisibleBeneath(fd_, visible, false);
    EXPECT_GE(fd, 0) << visible;
    if (fd >= 0) ::close(fd);
  }
  EXPECT_EQ(OpenVisibleBeneath(fd_, "missing", false), -ENOENT);
  const int link = OpenBeneath(fd_, "chain");
  ASSERT_GE(link, 0);
  EXPECT_EQ(*PathBeneath(fd_, link), ".git/config");
  ::close(link);
  EXPECT_EQ(*PathBeneath(fd_, fd_), "");
  const int outside = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_TRUE(absl::IsNotFound(PathBeneath(fd_, outside).status()));
  ::close(outside);
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
  EXPECT_EQ(ParseRange("Bytes=0-9", 100, &r), RangeResult::kSatisfiable);
  EXPECT_EQ(ParseRange("BYTES=-5", 100, &r), RangeResult::kSatisfiable);
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
