// Integration tests for the HTTP handler on a real baton reactor, loopback
// sockets, a temporary document root. Every response is checked byte for
// byte where bytes matter.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "baton/reactor.h"
#include "server/httpd/http_handler.h"
#include "tests/util/test_client.h"

namespace baton::http {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::End;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::WaitForEnd;

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/root_", ::getpid(), "_",
                         ::testing::UnitTest::GetInstance()->random_seed(), "_",
                         counter_++);
    const std::string outside = root_ + "_outside";
    ::mkdir(root_.c_str(), 0755);
    ::mkdir(outside.c_str(), 0755);
    ::mkdir((root_ + "/dir").c_str(), 0755);
    ::mkdir((root_ + "/site").c_str(), 0755);
    big_ = Pattern(10 << 20, 1);
    WriteFile(root_ + "/big.bin", big_);
    WriteFile(root_ + "/hello.txt", "hello, world\n");
    WriteFile(root_ + "/dir/<b&c>.txt", "x");
    WriteFile(root_ + "/dir/a b.html", "y");
    WriteFile(root_ + "/site/index.html", "<p>index</p>");
    WriteFile(outside + "/secret", "secret");
    ::symlink((outside + "/secret").c_str(), (root_ + "/escape").c_str());
    // An index.html that must hide the listing but cannot be served.
    ::mkdir((root_ + "/hidden").c_str(), 0755);
    WriteFile(root_ + "/hidden/private.txt", "private");
    ::symlink((outside + "/secret").c_str(),
              (root_ + "/hidden/index.html").c_str());
    ::mkdir((root_ + "/dirindex").c_str(), 0755);
    ::mkdir((root_ + "/dirindex/index.html").c_str(), 0755);
    WriteFile(root_ + "/dirindex/private.txt", "private");
    // Names that need encoding in a redirect.
    for (const char* name : {"/x?y", "/50%", "/a b", "/x#z"}) {
      ::mkdir((root_ + name).c_str(), 0755);
    }
    WriteFile(root_ + "/.env", "SECRET=1");
    ::mkdir((root_ + "/.git").c_str(), 0755);
    WriteFile(root_ + "/.git/config", "[core]");
    ::mkfifo((root_ + "/fifo").c_str(), 0644);
    root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
    Start(-1);
  }

  void Start(int64_t response_size) {
    reactor_.reset();
    ReactorOptions o;
    o.threads = threads_;
    o.idle_timeout = absl::Seconds(5);
    o.write_timeout = write_timeout_;
    reactor_ = std::move(*Reactor::Create(o));
    config_.root_fd = root_fd_;
    config_.response_size = response_size;
    config_.request_timeout = request_timeout_;
    config_.body_timeout = body_timeout_;
    config_.max_body_bytes = max_body_bytes_;
    config_.reactor = reactor_.get();
    port_ = *reactor_->Listen(ListenOptions{}, [this] {
      return std::make_unique<HttpHandler>(&config_);
    });
    ASSERT_TRUE(reactor_->Start().ok());
  }

  // Sends `request` without half-closing, reads until the server closes.
  std::string ExchangeOpen(const std::string& request) {
    return Exchange(request, /*shut=*/false);
  }

  static int CountResponses(const std::string& bytes) {
    int n = 0;
    for (size_t p = 0; (p = bytes.find("HTTP/1.1 ", p)) != std::string::npos;
         ++p) {
      ++n;
    }
    return n;
  }

  static std::string HeaderOf(const std::string& response,
                              const std::string& name) {
    const std::string key = "\r\n" + name + ": ";
    const size_t head_end = response.find("\r\n\r\n");
    const size_t at = response.find(key);
    if (at == std::string::npos || at > head_end) return "";
    const size_t from = at + key.size();
    return response.substr(from, response.find("\r\n", from) - from);
  }

  void TearDown() override {
    reactor_.reset();
    ::close(root_fd_);
  }

  // Sends `request` (then half-closes if `shut`), returns all bytes until
  // the server closes.
  std::string Exchange(const std::string& request, bool shut = true) {
    const int fd = ConnectLoopback(port_);
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(SendAll(fd, request).ok());
    if (shut) ::shutdown(fd, SHUT_WR);
    absl::StatusOr<std::string> got = ReadToEof(fd);
    ::close(fd);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : "";
  }

  static std::string Get(const std::string& target,
                         const std::string& extra = "") {
    return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: t\r\n", extra,
                        "Connection: close\r\n\r\n");
  }

  static int Status(const std::string& response) {
    int status = 0;
    if (response.size() < 12 ||
        !absl::SimpleAtoi(response.substr(9, 3), &status)) {
      return -1;
    }
    return status;
  }

  static std::string Body(const std::string& response) {
    const size_t end = response.find("\r\n\r\n");
    return end == std::string::npos ? "" : response.substr(end + 4);
  }

  static int counter_;
  std::string root_;
  std::string big_;
  int root_fd_ = -1;
  // Set before Start (which restarts the reactor), never while it runs.
  int threads_ = 2;
  absl::Duration write_timeout_ = absl::ZeroDuration();
  absl::Duration request_timeout_ = absl::Milliseconds(300);
  absl::Duration body_timeout_ = absl::Seconds(10);
  uint64_t max_body_bytes_ = 1 << 20;
  HttpConfig config_;
  std::unique_ptr<Reactor> reactor_;
  int port_ = 0;
};

int HttpServerTest::counter_ = 0;

TEST_F(HttpServerTest, ServesFilesByteExact) {
  std::string r = Exchange(Get("/hello.txt"));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "hello, world\n");
  EXPECT_TRUE(absl::StrContains(r, "Content-Type: text/plain"));
  EXPECT_TRUE(absl::StrContains(r, "Last-Modified: "));
  EXPECT_TRUE(absl::StrContains(r, "Date: "));
  r = Exchange(Get("/big.bin"));
  EXPECT_EQ(Status(r), 200);
  EXPECT_TRUE(Body(r) == big_) << "10 MB body differs";
}

TEST_F(HttpServerTest, HeadHasHeadersButNoBody) {
  const std::string r = Exchange(
      "HEAD /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Status(r), 200);
  EXPECT_TRUE(absl::StrContains(r, "Content-Length: 10485760")) << r;
  EXPECT_EQ(Body(r), "");
}

TEST_F(HttpServerTest, ListingEscapesNamesAndServesIndex) {
  std::string r = Exchange(Get("/dir/"));
  EXPECT_EQ(Status(r), 200);
  EXPECT_TRUE(absl::StrContains(r, "&lt;b&amp;c&gt;.txt")) << r;
  EXPECT_TRUE(absl::StrContains(r, "href=\"%3Cb%26c%3E.txt\"")) << r;
  EXPECT_TRUE(absl::StrContains(r, "href=\"a%20b.html\"")) << r;
  r = Exchange(Get("/dir"));
  EXPECT_EQ(Status(r), 301);
  EXPECT_TRUE(absl::StrContains(r, "Location: /dir/"));
  r = Exchange(Get("/site/"));
  EXPECT_EQ(Body(r), "<p>index</p>");
}

TEST_F(HttpServerTest, ErrorsAndMethods) {
  EXPECT_EQ(Status(Exchange(Get("/missing"))), 404);
  const std::string post = Exchange(
      "POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_EQ(Status(post), 405);
  EXPECT_TRUE(absl::StrContains(post, "Allow: GET, HEAD"));
  EXPECT_EQ(Status(Exchange("BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n")), 501);
  EXPECT_EQ(Status(Exchange("FOO / HTTP/1.1\r\nHost: t\r\n\r\n")), 501);
  EXPECT_EQ(Status(Exchange("GET / HTTP/1.1\r\n\r\n")), 400)
      << "HTTP/1.1 needs Host";
  EXPECT_EQ(Status(Exchange("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n")),
            400);
  EXPECT_EQ(Status(Exchange("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1"
                            "\r\nContent-Length: 2\r\n\r\nx")),
            400);
  EXPECT_EQ(Status(Exchange("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: "
                            "abc\r\n\r\n")),
            400);
  EXPECT_EQ(Status(Exchange(Get("/" + std::string(9000, 'a')))), 414);
  std::string many;
  for (int i = 0; i < 150; ++i) absl::StrAppend(&many, "X-", i, ": v\r\n");
  EXPECT_EQ(Status(Exchange(Get("/", many))), 431);
  EXPECT_EQ(
      Status(Exchange(Get("/", "X-Big: " + std::string(20000, 'b') + "\r\n"))),
      431);
  EXPECT_EQ(Status(Exchange("GET /he\x01llo HTTP/1.1\r\nHost: t\r\n\r\n")),
            400);
}

// A request line that is not "token SP target SP version" is the
// client's error (400, like nginx); 501 is only for a well-formed method
// this server does not implement.
TEST_F(HttpServerTest, MalformedRequestLinesAre400) {
  std::string random(4096, '\0');
  uint32_t x = 12345;
  for (char& c : random) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  const std::string lines[] = {
      random,
      std::string("\x00\x01garbage\r\n\r\n", 13),
      "G\xffT / HTTP/1.1\r\nHost: t\r\n\r\n",
      "GE\x01T / HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET\x7f / HTTP/1.1\r\nHost: t\r\n\r\n",
      " / HTTP/1.1\r\nHost: t\r\n\r\n",
      "BREW\x01 / HTTP/1.1\r\nHost: t\r\n\r\n",
  };
  for (const std::string& line : lines) {
    const std::string r = Exchange(line);
    EXPECT_EQ(Status(r), 400)
        << absl::CEscape(line.substr(0, 20)) << " -> " << r.substr(0, 40);
    EXPECT_EQ(CountResponses(r), 1);
  }
  // After a good request on the same connection too.
  const std::string r = Exchange(
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
      "G\xffT / HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200 ")) << r;
  EXPECT_TRUE(absl::StrContains(r, "\r\n\r\nhello, world\nHTTP/1.1 400 ")) << r;
}

// http-parser stops after a request with Upgrade or CONNECT. Such a
// request is answered and the connection closes, so the same bytes get the
// same answer however TCP splits them (the rest of the read is never
// dropped while the connection stays open).
TEST_F(HttpServerTest, UpgradeAndConnectDoNotDesync) {
  const std::string second = "GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string upgrade =
      "GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
      "Upgrade: h2c\r\n\r\n";
  const std::string connect = "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n";
  for (const std::string& first : {upgrade, connect}) {
    const std::string whole = first + second;
    for (size_t split : {whole.size(), first.size(), first.size() - 2}) {
      const int fd = ConnectLoopback(port_);
      ASSERT_GE(fd, 0);
      ASSERT_TRUE(SendAll(fd, whole.substr(0, split)).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      // The server may have closed already; a failed send is fine.
      ::send(fd, whole.data() + split, whole.size() - split, MSG_NOSIGNAL);
      absl::StatusOr<std::string> got = ReadToEof(fd);
      ::close(fd);
      const std::string r = got.ok() ? *got : "";
      const std::string what =
          absl::StrCat(first.substr(0, 7), " split at ", split, ": ", r);
      EXPECT_EQ(CountResponses(r), 1) << what;
      EXPECT_EQ(HeaderOf(r, "Connection"), "close") << what;
      EXPECT_EQ(Status(r), first == upgrade ? 200 : 405) << what;
    }
  }
  // Upgrade without "Connection: upgrade" is just a header.
  const std::string r = Exchange(
      "GET /hello.txt HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n" + second);
  EXPECT_EQ(CountResponses(r), 2) << r;
}

// Obs-fold and bare LF are refused (400, close) before the
// request is answered, however the head is split across reads.
TEST_F(HttpServerTest, FoldedHeadersAndBareLfAre400) {
  const std::string heads[] = {
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nX: y\r\n Content-Length: 5"
      "\r\n\r\n",
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nX: y\r\n\tZ: 1\r\n\r\n",
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nX:\r\n 1\r\n\r\n",
      "GET /hello.txt HTTP/1.1\nHost: t\r\n\r\n",
      "GET /hello.txt HTTP/1.1\r\nHost: t\nX: 1\r\n\r\n",
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\n",
      "GET /hello.txt HTTP/1.0\n\n",
  };
  for (const std::string& head : heads) {
    const std::string r = ExchangeOpen(head + Get("/hello.txt"));
    EXPECT_EQ(Status(r), 400) << absl::CEscape(head) << " -> " << r;
    EXPECT_EQ(CountResponses(r), 1) << r;
    EXPECT_EQ(HeaderOf(r, "Connection"), "close") << r;
  }
  const std::string& fold = heads[0];
  for (size_t split = 1; split < fold.size(); split += 4) {
    const int fd = ConnectLoopback(port_);
    ASSERT_TRUE(SendAll(fd, fold.substr(0, split)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ::send(fd, fold.data() + split, fold.size() - split, MSG_NOSIGNAL);
    absl::StatusOr<std::string> got = ReadToEof(fd);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(Status(*got), 400) << "split at " << split;
  }
  // A body may hold bare LFs: only heads are checked.
  const std::string r = Exchange(
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"
      "a\nb\n");
  EXPECT_EQ(Status(r), 200) << r;
}

// Found by tools/hostile.py: leniencies of the non-strict http-parser that
// matter for request smuggling, and HEAD errors that carried a body.
TEST_F(HttpServerTest, SmugglingSpellingsAndHeadErrors) {
  EXPECT_EQ(
      Status(Exchange(Get("/hello.txt", "Transfer-Encoding : chunked\r\n"))),
      400)
      << "whitespace before the colon";
  EXPECT_EQ(Status(Exchange(Get("/hello.txt", "Host: other\r\n"))), 400)
      << "two Host fields";
  // The parser does not check the CRLF after chunk data. A request with a
  // body is answered and then the connection closes, so what follows the
  // body is never taken as a request.
  const std::string r = Exchange(
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
      "\r\n5\r\nhelloXX0\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(Status(r), 200);
  EXPECT_TRUE(absl::StrContains(r, "Connection: close")) << r;
  EXPECT_FALSE(absl::StrContains(r, "HTTP/1.1 404")) << r;
  const std::string head = Exchange("HEAD /../x HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(Status(head), 400);
  EXPECT_EQ(Body(head), "") << "a HEAD answer has no body, errors included";
  const std::string bad_url =
      Exchange("HEAD \\..\\x HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(Status(bad_url), 400);
  EXPECT_EQ(Body(bad_url), "") << "the parser refused the target, not HEAD";
}

// The listing is shown only when index.html does not exist. An
// index.html that exists but cannot be served (a symlink out of the root,
// a directory) is 403, never the listing it was put there to hide.
TEST_F(HttpServerTest, IndexThatCannotBeServedHidesTheListing) {
  for (const char* dir : {"/hidden/", "/dirindex/"}) {
    const std::string r = Exchange(Get(dir));
    EXPECT_EQ(Status(r), 403) << dir << ": " << r;
    EXPECT_FALSE(absl::StrContains(r, "private.txt")) << r;
    EXPECT_FALSE(absl::StrContains(r, "secret")) << r;
  }
  EXPECT_TRUE(absl::StrContains(Exchange(Get("/dir/")), "Index of /dir/"));
}

// Listings are bounded in entries read and in bytes.
TEST_F(HttpServerTest, ListingsAreBounded) {
  config_.max_listing_entries = 3;
  Start(-1);
  const std::string r = Exchange(Get("/"));
  EXPECT_EQ(Status(r), 200);
  EXPECT_TRUE(absl::StrContains(r, "Only part of this directory")) << r;
  const std::string head =
      Exchange("HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(HeaderOf(head, "Content-Length"), std::to_string(Body(r).size()));
}

// Hidden entries cost a read like any other, so they count toward the
// bound on entries read: a directory of hidden names is not read whole.
TEST_F(HttpServerTest, HiddenEntriesCountTowardTheListingBound) {
  ::mkdir((root_ + "/dots").c_str(), 0755);
  for (int i = 0; i < 5; ++i) WriteFile(absl::StrCat(root_, "/dots/.h", i), "");
  config_.max_listing_entries = 3;
  Start(-1);
  const std::string r = Exchange(Get("/dots/"));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_TRUE(absl::StrContains(r, "Only part of this directory")) << r;
  EXPECT_FALSE(absl::StrContains(r, ".h")) << r;
}

// Names that escape to six bytes of HTML per byte: 700 of them would make
// a listing of about 1.4 MB. It stops at the default bound of 1 MiB and
// says so; the entries it shows are whole.
TEST_F(HttpServerTest, ListingIsBoundedInBytes) {
  ::mkdir((root_ + "/wide").c_str(), 0755);
  for (int i = 0; i < 700; ++i) {
    WriteFile(absl::StrCat(root_, "/wide/", std::string(240, '&'), 1000 + i),
              "");
  }
  const std::string r = Exchange(Get("/wide/"));
  EXPECT_EQ(Status(r), 200) << r.substr(0, 200);
  EXPECT_LE(Body(r).size(), size_t{1} << 20);
  EXPECT_TRUE(absl::StrContains(r, "Only part of this directory"));
  EXPECT_TRUE(absl::EndsWith(r, "</a></li>\n</ul></body></html>\n"));
  const std::string head =
      Exchange("HEAD /wide/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(HeaderOf(head, "Content-Length"), std::to_string(Body(r).size()));
}

// The redirect to a directory's slash form re-encodes its name.
TEST_F(HttpServerTest, DirectoryRedirectIsPercentEncoded) {
  const std::pair<const char*, const char*> cases[] = {
      {"/x%3Fy", "/x%3Fy/"},
      {"/50%25", "/50%25/"},
      {"/a%20b", "/a%20b/"},
      {"/x%23z", "/x%23z/"},
  };
  for (const auto& [target, location] : cases) {
    const std::string r = Exchange(Get(target));
    EXPECT_EQ(Status(r), 301) << target;
    EXPECT_EQ(HeaderOf(r, "Location"), location) << target << ": " << r;
    const std::string listing = Exchange(Get(location));
    EXPECT_EQ(Status(listing), 200) << location << ": " << listing;
  }
}

// Dotfiles are not served or listed unless asked for.
TEST_F(HttpServerTest, DotfilesAreHiddenByDefault) {
  for (const char* target : {"/.env", "/.git/config", "/.git/", "/%2eenv"}) {
    EXPECT_EQ(Status(Exchange(Get(target))), 404) << target;
  }
  const std::string listing = Exchange(Get("/"));
  EXPECT_FALSE(absl::StrContains(listing, ".env")) << listing;
  EXPECT_FALSE(absl::StrContains(listing, ".git")) << listing;
  config_.serve_dotfiles = true;
  Start(-1);
  EXPECT_EQ(Body(Exchange(Get("/.env"))), "SECRET=1");
  EXPECT_TRUE(absl::StrContains(Exchange(Get("/")), ".git/"));
}

// Expect: 100-continue, the absolute form, the header count bound.
TEST_F(HttpServerTest, ExpectContinueAbsoluteFormAndHeaderCount) {
  // A refused request with Expect: 100-continue is answered at once,
  // without its body; an accepted one gets 100 Continue first.
  {
    const int fd = ConnectLoopback(port_);
    ASSERT_TRUE(SendAll(fd,
                        "POST /hello.txt HTTP/1.1\r\nHost: t\r\n"
                        "Content-Length: 100\r\n"
                        "Expect: 100-continue\r\n\r\n")
                    .ok());
    absl::StatusOr<std::string> got = ReadToEof(fd);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(Status(*got), 405) << *got;
    EXPECT_EQ(CountResponses(*got), 1) << *got;
  }
  {
    const int fd = ConnectLoopback(port_);
    ASSERT_TRUE(SendAll(fd,
                        "GET /hello.txt HTTP/1.1\r\nHost: t\r\n"
                        "Content-Length: 3\r\n"
                        "Expect: 100-Continue\r\n\r\n")
                    .ok());
    const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
    absl::StatusOr<std::string> got = ReadExact(fd, cont.size());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, cont);
    ASSERT_TRUE(SendAll(fd, "abc").ok());
    got = ReadToEof(fd);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(Status(*got), 200) << *got;
    EXPECT_EQ(Body(*got), "hello, world\n");
  }
  // RFC 9112 3.2.2: the absolute form is accepted.
  std::string r = Exchange(
      "GET http://t/hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close"
      "\r\n\r\n");
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "hello, world\n");
  // Exactly max_header_fields (100) fields, Host included, are allowed.
  std::string fields;
  for (int i = 0; i < 98; ++i) absl::StrAppend(&fields, "X-", i, ": v\r\n");
  r = Exchange(Get("/hello.txt", fields));  // + Host + Connection = 100
  EXPECT_EQ(Status(r), 200) << r.substr(0, 60);
  r = Exchange(Get("/hello.txt", fields + "X-One-More: v\r\n"));
  EXPECT_EQ(Status(r), 431) << r.substr(0, 60);
}

// The dotfile rule holds on where a path resolves: a symbolic link inside
// the root to a hidden name does not reveal it, while links to visible
// files still work.
TEST_F(HttpServerTest, LinksIntoHiddenNamesAreHidden) {
  ::mkdir((root_ + "/links").c_str(), 0755);
  ::mkdir((root_ + "/links/index").c_str(), 0755);
  ASSERT_EQ(::symlink("../.git", (root_ + "/links/cfg").c_str()), 0);
  ASSERT_EQ(::symlink("../.env", (root_ + "/links/env").c_str()), 0);
  ASSERT_EQ(::symlink("./../hello.txt", (root_ + "/links/hello").c_str()), 0);
  ASSERT_EQ(::symlink("../../.git/config",
                      (root_ + "/links/index/index.html").c_str()),
            0);
  for (const char* target :
       {"/links/cfg/config", "/links/cfg/", "/links/env", "/links/cfg"}) {
    const std::string r = Exchange(Get(target));
    EXPECT_EQ(Status(r), 404) << target << ": " << r;
    EXPECT_FALSE(absl::StrContains(r, "[core]")) << target;
    EXPECT_FALSE(absl::StrContains(r, "SECRET")) << target;
    EXPECT_FALSE(absl::StrContains(r, "config")) << target;
  }
  // An index.html that leads to a hidden file hides the listing (403).
  std::string r = Exchange(Get("/links/index/"));
  EXPECT_EQ(Status(r), 403) << r;
  EXPECT_FALSE(absl::StrContains(r, "[core]")) << r;
  r = Exchange(Get("/links/hello"));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "hello, world\n");
  config_.serve_dotfiles = true;
  Start(-1);
  EXPECT_EQ(Body(Exchange(Get("/links/cfg/config"))), "[core]");
  EXPECT_EQ(Body(Exchange(Get("/links/env"))), "SECRET=1");
  EXPECT_EQ(Body(Exchange(Get("/links/index/"))), "[core]");
}

TEST_F(HttpServerTest, TraversalSpellingsAreRefused) {
  for (const char* target :
       {"/../escape", "/%2e%2e/secret", "/..%2f..%2fetc%2fpasswd",
        "/dir/..\\..\\secret", "/%2E%2E%5Csecret", "/escape", "/dir/%00.txt"}) {
    const std::string r = Exchange(Get(target));
    const int status = Status(r);
    EXPECT_TRUE(status == 400 || status == 403 || status == 404)
        << target << " -> " << status;
    EXPECT_FALSE(absl::StrContains(r, "secret\n") || Body(r) == "secret")
        << target;
  }
  EXPECT_EQ(Status(Exchange(Get("/fifo"))), 403) << "FIFO must not block";
}

TEST_F(HttpServerTest, ConditionalAndRangeRequests) {
  std::string r = Exchange(Get("/hello.txt"));
  const size_t at = r.find("Last-Modified: ") + 15;
  const std::string modified = r.substr(at, r.find("\r\n", at) - at);
  r = Exchange(Get("/hello.txt", "If-Modified-Since: " + modified + "\r\n"));
  EXPECT_EQ(Status(r), 304);
  EXPECT_EQ(Body(r), "");
  // A 304 sends no Content-Length (not a 0 that differs from
  // the 200's).
  EXPECT_FALSE(absl::StrContains(r, "Content-Length")) << r;
  r = Exchange(Get("/big.bin", "Range: bytes=1000-1999\r\n"));
  EXPECT_EQ(Status(r), 206);
  EXPECT_TRUE(absl::StrContains(r, "Content-Range: bytes 1000-1999/10485760"));
  EXPECT_TRUE(Body(r) == big_.substr(1000, 1000));
  EXPECT_EQ(Status(Exchange(Get("/hello.txt", "Range: bytes=500-\r\n"))), 416);
  // The unit is case-insensitive.
  r = Exchange(Get("/hello.txt", "Range: Bytes=0-4\r\n"));
  EXPECT_EQ(Status(r), 206);
  EXPECT_EQ(Body(r), "hello");
}

// If-Range. A resumed download of a file that changed since
// gets the whole new file (200), not a range of it.
TEST_F(HttpServerTest, IfRangeServesTheWholeFileWhenItChanged) {
  std::string r = Exchange(Get("/hello.txt"));
  const std::string modified = HeaderOf(r, "Last-Modified");
  ASSERT_FALSE(modified.empty()) << r;
  r = Exchange(
      Get("/hello.txt", "Range: bytes=7-\r\nIf-Range: " + modified + "\r\n"));
  EXPECT_EQ(Status(r), 206) << r;
  EXPECT_EQ(Body(r), "world\n");
  // The file changes (a new version, a new date).
  WriteFile(root_ + "/hello.txt", "HELLO, NEW WORLD\n");
  const struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/hello.txt").c_str(), times, 0), 0);
  r = Exchange(
      Get("/hello.txt", "Range: bytes=7-\r\nIf-Range: " + modified + "\r\n"));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "HELLO, NEW WORLD\n");
  // An entity-tag never matches (no ETags are sent): the whole file.
  r = Exchange(Get("/hello.txt", "Range: bytes=0-1\r\nIf-Range: \"x\"\r\n"));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "HELLO, NEW WORLD\n");
}

// The same pipelined bytes, split at every possible boundary, give the same
// responses in the same order.
TEST_F(HttpServerTest, PipelinedRequestsSplitAnywhere) {
  const std::string requests =
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
      "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /site/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  auto strip_dates = [](std::string s) {
    size_t p = 0;
    while ((p = s.find("Date: ", p)) != std::string::npos) {
      s.erase(p, s.find("\r\n", p) - p);
    }
    return s;
  };
  const std::string expected = strip_dates(Exchange(requests));
  EXPECT_EQ(Status(expected), 200);
  EXPECT_TRUE(absl::StrContains(expected, "<p>index</p>"));
  for (size_t split = 1; split < requests.size(); split += 3) {
    const int fd = ConnectLoopback(port_);
    ASSERT_TRUE(SendAll(fd, requests.substr(0, split)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(SendAll(fd, requests.substr(split)).ok());
    absl::StatusOr<std::string> got = ReadToEof(fd);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(strip_dates(*got), expected) << "split at " << split;
  }
}

TEST_F(HttpServerTest, KeepAliveReusesTheConnection) {
  const int fd = ConnectLoopback(port_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(SendAll(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").ok());
    std::string got;
    char buf[4096];
    while (!absl::EndsWith(got, "hello, world\n")) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      ASSERT_GT(n, 0) << "connection closed on request " << i;
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(absl::StrContains(got, "Connection: keep-alive"));
  }
  ::close(fd);
  EXPECT_EQ(reactor_->Counters().accepts, 1u);
}

// A client that sent half a head holds no thread: with a single reactor
// thread, another client is served while the slow one is still pending
// (unanswered and open), and the slow one is answered once its head is
// complete; a head that never completes gets 408 and the connection
// closes.
TEST_F(HttpServerTest, SlowHeadersGet408AndDoNotDelayOthers) {
  const std::string partial = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n";
  threads_ = 1;
  request_timeout_ = absl::Minutes(2);  // only bounds a hang here
  Start(-1);
  const int slow = ConnectLoopback(port_);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(SendAll(slow, partial).ok());
  // The server has read the partial head...
  for (int i = 0; i < 2000 && reactor_->Counters().bytes_read < partial.size();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(reactor_->Counters().bytes_read, partial.size());
  // ...another client is served meanwhile...
  const std::string other = Exchange(Get("/hello.txt"));
  EXPECT_EQ(Status(other), 200) << other;
  EXPECT_EQ(Body(other), "hello, world\n");
  // ...while the slow one is still pending: nothing sent to it, not closed.
  EXPECT_EQ(WaitForEnd(slow, 0), End::kTimeout);
  ASSERT_TRUE(SendAll(slow, "Connection: close\r\n\r\n").ok());
  absl::StatusOr<std::string> got = ReadToEof(slow);
  ::close(slow);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Status(*got), 200) << *got;
  EXPECT_EQ(Body(*got), "hello, world\n");

  request_timeout_ = absl::Milliseconds(300);
  Start(-1);
  const int never = ConnectLoopback(port_);
  ASSERT_TRUE(SendAll(never, partial).ok());
  got = ReadToEof(never);
  ::close(never);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Status(*got), 408) << *got;
  EXPECT_EQ(CountResponses(*got), 1) << *got;
  EXPECT_EQ(HeaderOf(*got, "Connection"), "close") << *got;
  EXPECT_FALSE(HeaderOf(*got, "Date").empty()) << *got;
}

// A body that trickles in, a byte at a time, each byte keeping the
// connection off the idle sweep, is answered 408 once the body timeout
// runs out, and the connection closes. (Without the body timeout the
// client trickles its 300 bytes out of 1000 unanswered.)
TEST_F(HttpServerTest, TrickledBodyGets408) {
  body_timeout_ = absl::Milliseconds(200);
  Start(-1);
  for (const char* framing :
       {"Content-Length: 1000\r\n", "Transfer-Encoding: chunked\r\n"}) {
    const int fd = ConnectLoopback(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, absl::StrCat("POST / HTTP/1.1\r\nHost: t\r\n",
                                         framing, "\r\n"))
                    .ok());
    if (absl::StrContains(framing, "chunked")) {
      ASSERT_TRUE(SendAll(fd, "3e8\r\n").ok());  // a chunk of 1000 bytes
    }
    bool answered = false;
    for (int i = 0; i < 300 && !answered; ++i) {
      if (::send(fd, "x", 1, MSG_NOSIGNAL) != 1) break;  // closed already
      pollfd p = {fd, POLLIN, 0};
      answered = ::poll(&p, 1, 50) == 1;
    }
    absl::StatusOr<std::string> got = ReadToEof(fd);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << framing << got.status();
    EXPECT_EQ(Status(*got), 408) << framing << *got;
    EXPECT_EQ(CountResponses(*got), 1) << *got;
    EXPECT_EQ(HeaderOf(*got, "Connection"), "close") << *got;
  }
}

// Bodies are only skipped, and at most max_body_bytes of one: a larger
// announced body is refused (413, close) before it is sent, without a
// 100 Continue; a chunked one once it passes the bound.
TEST_F(HttpServerTest, BodyLargerThanTheBoundGets413) {
  max_body_bytes_ = 1000;
  Start(-1);
  for (const char* method : {"POST", "GET"}) {
    for (const char* expect : {"", "Expect: 100-continue\r\n"}) {
      const std::string r = ExchangeOpen(
          absl::StrCat(method, " /hello.txt HTTP/1.1\r\nHost: t\r\n", expect,
                       "Content-Length: 1000000000000\r\n\r\nxyz"));
      EXPECT_EQ(Status(r), 413) << method << " " << expect << r;
      EXPECT_EQ(CountResponses(r), 1) << r;
      EXPECT_EQ(HeaderOf(r, "Connection"), "close") << r;
    }
  }
  // Chunked: 800 bytes pass, 1600 do not.
  const std::string chunk = "320\r\n" + std::string(800, 'c') + "\r\n";
  const std::string chunked =
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  std::string r = Exchange(chunked + chunk + "0\r\n\r\n");
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "hello, world\n");
  r = ExchangeOpen(chunked + chunk + chunk);
  EXPECT_EQ(Status(r), 413) << r;
  EXPECT_EQ(CountResponses(r), 1) << r;
  // Exactly the bound is read (and skipped).
  r = Exchange(
      "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
      std::string(1000, 'b'));
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(Body(r), "hello, world\n");
  // The bound can refuse every body.
  max_body_bytes_ = 0;
  Start(-1);
  EXPECT_EQ(Status(ExchangeOpen(
                "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1"
                "\r\n\r\nx")),
            413);
  EXPECT_EQ(Status(Exchange(Get("/hello.txt"))), 200);
}

int OpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// A client pipelines thousands of requests for a 10 MB file and never
// reads: the server must stop parsing (and reading) instead of queueing a
// file descriptor and a response per request.
TEST_F(HttpServerTest, NeverReadingPipelinerStaysBounded) {
  const int before = OpenFds();
  const int fd = ConnectLoopback(port_, 2000);
  std::string requests;
  for (int i = 0; i < 3000; ++i) {
    requests += "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
  }
  // Send what the kernel takes; it stops once the server stops reading.
  size_t off = 0;
  for (int i = 0; i < 1000 && off < requests.size(); ++i) {
    const ssize_t n =
        ::send(fd, requests.data() + off, requests.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LT(OpenFds() - before, 50) << "a descriptor per queued response";
  // Reading now gets complete, ordered responses (check the first two).
  std::string got;
  char buf[1 << 16];
  while (got.size() < 2 * big_.size() + 1000) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  const size_t body = got.find("\r\n\r\n") + 4;
  EXPECT_TRUE(got.compare(body, big_.size(), big_) == 0);
  ::close(fd);
}

// A client that asks for the 10 MB file and stops reading is cut off after
// the write timeout (well before the 5 s keep-alive timeout) with a short
// body, while the server keeps serving others.
TEST_F(HttpServerTest, WriteTimeoutCutsOffAStalledReader) {
  write_timeout_ = absl::Milliseconds(300);
  Start(-1);
  const int fd = ConnectLoopback(port_);
  ASSERT_TRUE(SendAll(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  bool cut = false;
  for (int i = 0; i < 400 && !cut; ++i) {
    cut = reactor_->Counters().write_timeouts == 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(cut);
  EXPECT_EQ(reactor_->Counters().idle_timeouts, 0u);
  std::string got;
  char buf[1 << 16];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) {
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_LT(Body(got).size(), big_.size());
  ::close(fd);
  EXPECT_EQ(Status(Exchange(Get("/hello.txt"))), 200);
}

TEST_F(HttpServerTest, FixedSizeMode) {
  Start(128);
  const std::string r = Exchange(Get("/anything"));
  EXPECT_EQ(Status(r), 200);
  EXPECT_EQ(Body(r), std::string(128, 'x'));
}

}  // namespace
}  // namespace baton::http
