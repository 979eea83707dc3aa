// Tests for the htstress-style HTTP load (client/http_load.h) against
// in-process baton servers on loopback.
#include "client/http_load.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "tests/client/test_servers.h"

namespace baton::client {
namespace {

using ::baton::testing::FixedHttpHandler;
using ::baton::testing::RefusingPort;
using ::baton::testing::SilentHandler;
using ::baton::testing::TestServer;

HttpLoadOptions Options(const Endpoint& endpoint, int64_t requests) {
  HttpLoadOptions o;
  o.endpoint = endpoint;
  o.requests = requests;
  o.timeout_ms = 5000;
  return o;
}

TEST(HttpLoadTest, GoodResponsesConnectionPerRequestAndKeepAlive) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
      "\r\nhello";
  auto server = TestServer::Of<FixedHttpHandler>(response);
  uint64_t accepts = 0;
  for (bool keepalive : {false, true}) {
    std::atomic<int64_t> progress{0};
    HttpLoadOptions o = Options(server->endpoint(), 400);
    o.threads = 2;
    o.connections = 4;
    o.keepalive = keepalive;
    o.progress = &progress;
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->good, 400)
        << "keepalive=" << keepalive << " " << r->first_problem;
    EXPECT_EQ(r->bad + r->errors, 0);
    EXPECT_EQ(r->body_bytes, 400 * 5);
    EXPECT_EQ(r->latency.count(), 400);
    EXPECT_EQ(progress.load(), 400);
    const uint64_t now = server->reactor().Counters().accepts;
    if (keepalive) {
      // Each connection is reused. Up to two threads x four connections; as
      // few as four if one thread took every request before the other
      // started (they share one budget, as htstress's threads do).
      EXPECT_GE(now - accepts, 4u);
      EXPECT_LE(now - accepts, 8u);
    } else {
      EXPECT_EQ(now - accepts, 400u) << "HTTP/1.0: a connection per request";
    }
    accepts = now;
  }
}

TEST(HttpLoadTest, KeepAliveFallsBackWhenTheServerCloses) {
  // Answers HTTP/1.1 but with "Connection: close" and closes: every request
  // needs a new connection even though keep-alive was asked for.
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  auto server = TestServer::Of<FixedHttpHandler>(response);
  HttpLoadOptions o = Options(server->endpoint(), 50);
  o.keepalive = true;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->good, 50) << r->first_problem;
}

TEST(HttpLoadTest, ShortBodyErrorStatusAndNoLengthAreBad) {
  for (const std::string& response :
       {std::string("HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        std::string("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        std::string("HTTP/1.0 200 OK\r\n\r\nbody until EOF"),
        std::string("SMTP ready\r\n\r\n")}) {
    auto server = TestServer::Of<FixedHttpHandler>(response);
    HttpLoadOptions o = Options(server->endpoint(), 20);
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->good, 0) << response;
    EXPECT_EQ(r->bad, 20) << response << " " << r->first_problem;
    EXPECT_FALSE(r->first_problem.empty());
  }
}

TEST(HttpLoadTest, SilentServerTimesOut) {
  auto server = TestServer::Of<SilentHandler>();
  HttpLoadOptions o = Options(server->endpoint(), 3);
  o.connections = 3;
  o.timeout_ms = 300;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 3);
  EXPECT_NE(r->first_problem.find("no complete response within 300 ms"),
            std::string::npos)
      << r->first_problem;
}

TEST(HttpLoadTest, NothingListeningIsErrors) {
  RefusingPort refusing;
  absl::StatusOr<HttpLoadResult> r =
      RunHttpLoad(Options(refusing.endpoint(), 50));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 50);
  EXPECT_NE(r->first_problem.find("refused"), std::string::npos)
      << r->first_problem;
}

}  // namespace
}  // namespace baton::client
