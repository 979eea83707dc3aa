// The HTTP load's time-bound runs (requests = 0, duration after a warm-up)
// and its paced mode (rate: new connections at fixed times, timed from
// their schedule), plain and over TLS, against in-process baton servers on
// loopback that check every request byte for byte; and the bench binary's
// flags for them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/flags.h"
#include "client/http_load.h"
#include "client/tls_client.h"
#include "tests/client/test_servers.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::FixedHttpHandler;
using ::baton::testing::RunfilePath;
using ::baton::testing::TestServer;
using ::testing::HasSubstr;

// What the paced mode sends, exactly, naming `host`.
std::string PacedRequest(const std::string& host) {
  return absl::StrCat("GET / HTTP/1.1\r\nHost: ", host,
                      "\r\nUser-Agent: baton-bench\r\n"
                      "Connection: close\r\n\r\n");
}
constexpr char kBody[] = "hello paced";
constexpr int kBodySize = sizeof(kBody) - 1;

// Requests seen by a CheckingHttpHandler's server.
struct Tally {
  // The request expected, byte for byte (set while the server runs, so
  // under a mutex: the socket orders it, but no sanitizer sees that).
  void Expect(const std::string& request) {
    std::lock_guard<std::mutex> lock(mu);
    expected = request;
  }
  bool IsExpected(const std::string& request) {
    std::lock_guard<std::mutex> lock(mu);
    return request == expected;
  }
  std::mutex mu;
  std::string expected = PacedRequest("localhost");
  std::atomic<int64_t> exact{0};  // equal to `expected`
  std::atomic<int64_t> other{0};
  // > 0: the server's first answer waits this long (the others do not).
  int hold_first_ms = 0;
  std::atomic<bool> first_taken{false};
};

// Answers each request (up to its blank line) with a 200 and kBody, then
// closes, as a server does for "Connection: close"; counts the requests
// that are exactly tally->expected and the others.
class CheckingHttpHandler : public ConnectionHandler {
 public:
  explicit CheckingHttpHandler(Tally* tally) : tally_(tally) {}
  void OnData(Connection& conn, absl::string_view data) override {
    pending_.append(data.data(), data.size());
    const size_t end = pending_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    ++(tally_->IsExpected(pending_) ? tally_->exact : tally_->other);
    if (tally_->hold_first_ms > 0 && !tally_->first_taken.exchange(true)) {
      // A stalled server: nothing else arrives meanwhile (one slot).
      std::this_thread::sleep_for(
          std::chrono::milliseconds(tally_->hold_first_ms));
    }
    conn.Write(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", kBodySize,
                            "\r\nConnection: close\r\n\r\n", kBody));
    conn.Close();
  }

 private:
  Tally* const tally_;
  std::string pending_;
};

std::unique_ptr<TestServer> CheckingServer(Tally* tally,
                                           ListenOptions listen = {}) {
  return std::make_unique<TestServer>(
      [tally] { return std::make_unique<CheckingHttpHandler>(tally); },
      absl::ZeroDuration(), listen);
}

HttpLoadOptions Paced(const Endpoint& endpoint, double rate, double warmup_s,
                      double duration_s) {
  HttpLoadOptions o;
  o.endpoint = endpoint;
  o.requests = 0;
  o.rate = rate;
  o.warmup_s = warmup_s;
  o.duration_s = duration_s;
  o.timeout_ms = 30000;
  return o;
}

// Request i is due at i / rate: with rate 200, a warm-up of 0.1025 s and a
// duration of 0.25 s, requests 0..70 are sent and 21..70 counted. Every
// scheduled request is sent however late, so these counts do not depend
// on the machine's speed.
TEST(PacedLoadTest, SendsEveryScheduledRequestOnceAndCountsTheWindow) {
  Tally tally;
  auto server = CheckingServer(&tally);
  std::atomic<int64_t> progress{0};
  HttpLoadOptions o = Paced(server->endpoint(), 200, 0.1025, 0.25);
  o.threads = 2;
  o.connections = 4;
  o.progress = &progress;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->good, 50) << r->first_problem;
  EXPECT_EQ(r->bad + r->errors, 0) << r->first_problem;
  EXPECT_EQ(r->latency.count(), 50);
  EXPECT_EQ(r->body_bytes, 50 * kBodySize);
  EXPECT_EQ(progress.load(), 71);
  EXPECT_EQ(tally.exact.load(), 71);
  EXPECT_EQ(tally.other.load(), 0);
  EXPECT_EQ(server->reactor().Counters().accepts, 71u)
      << "a new connection per request";
  EXPECT_GE(r->seconds, 0.25);
  EXPECT_GT(r->rate(), 0);
}

TEST(PacedLoadTest, EveryRequestIsAFullTlsHandshake) {
  absl::StatusOr<testing::TestPki> pki = testing::WriteTestPki("paced");
  ASSERT_TRUE(pki.ok()) << pki.status();
  auto server_tls = std::make_shared<TlsServerOptions>();
  server_tls->certificate_chain_file = pki->server.certificate_file;
  server_tls->private_key_file = pki->server.key_file;
  ListenOptions listen;
  listen.tls = server_tls;
  Tally tally;
  auto server = CheckingServer(&tally, listen);
  TlsClientOptions client;
  client.ca_file = pki->ca.certificate_file;
  client.server_name = "localhost";
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
      FullHandshakeContext(client);
  ASSERT_TRUE(context.ok()) << context.status();
  // Requests 0..30 (due before 0.305 s), all counted.
  HttpLoadOptions o = Paced(server->endpoint(), 100, 0, 0.305);
  o.connections = 3;
  o.tls = *context;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->good, 31) << r->first_problem;
  EXPECT_EQ(r->bad + r->errors, 0) << r->first_problem;
  EXPECT_EQ(r->body_bytes, 31 * kBodySize);
  EXPECT_EQ(tally.exact.load(), 31);
  EXPECT_EQ(tally.other.load(), 0);
  EXPECT_EQ(server->reactor().Counters().tls_handshakes, 31u);
}

TEST(PacedLoadTest, TheClientContextNeverResumesASession) {
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
      FullHandshakeContext(TlsClientOptions{});
  ASSERT_TRUE(context.ok()) << context.status();
  SSL_CTX* ctx = (*context)->native_handle();
  EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0u);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
}

// One slot, and the server holds its first answer 500 ms: requests 1..19
// (due at 10..190 ms) find the slot busy, are late, and go out one by one
// after that answer. Timed from their schedule, each took over 300 ms;
// timed from when they were sent, they would look fast.
TEST(PacedLoadTest, AStalledServerShowsInTheLatencyAndMakesRequestsLate) {
  Tally tally;
  tally.hold_first_ms = 500;
  auto server = CheckingServer(&tally);
  HttpLoadOptions o = Paced(server->endpoint(), 100, 0, 0.195);
  o.connections = 1;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->good, 20) << r->first_problem;
  EXPECT_EQ(r->late, 19);
  EXPECT_EQ(r->send_lag.count(), 20);
  EXPECT_GE(r->send_lag.max(), 300000000) << "request 19 waited for its slot";
  EXPECT_GE(r->latency.min(), 300000000) << "timed from the schedule";
  EXPECT_GE(r->latency.max(), 500000000);
  EXPECT_EQ(tally.exact.load(), 20);
}

TEST(PacedLoadTest, ClosedLoopForADurationCountsWhatStartedAfterTheWarmUp) {
  auto server = TestServer::Of<FixedHttpHandler>(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  for (bool keepalive : {false, true}) {
    std::atomic<int64_t> progress{0};
    HttpLoadOptions o;
    o.endpoint = server->endpoint();
    o.requests = 0;
    o.warmup_s = 0.1;
    o.duration_s = 0.5;
    o.threads = 2;
    o.connections = 3;
    o.keepalive = keepalive;
    o.timeout_ms = 30000;
    o.progress = &progress;
    const uint64_t accepts = server->reactor().Counters().accepts;
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GE(r->good, 1) << r->first_problem;
    EXPECT_EQ(r->bad + r->errors, 0) << r->first_problem;
    EXPECT_EQ(r->latency.count(), r->good);
    EXPECT_EQ(r->body_bytes, r->good * 5);
    EXPECT_LE(r->good, progress.load()) << "warm-up requests are not counted";
    EXPECT_GE(r->seconds, 0.5);
    const uint64_t opened = server->reactor().Counters().accepts - accepts;
    if (keepalive) {
      EXPECT_LE(opened, 6u);
    } else {
      EXPECT_EQ(opened, static_cast<uint64_t>(progress.load()));
    }
  }
}

TEST(PacedLoadTest, OptionsThatContradictEachOtherAreRefused) {
  HttpLoadOptions ok = Paced(Endpoint{}, 10, 0, 1);
  EXPECT_TRUE(ValidateHttpLoadOptions(ok).ok());
  HttpLoadOptions o = ok;
  o.keepalive = true;
  EXPECT_THAT(ValidateHttpLoadOptions(o).message(), HasSubstr("keepalive"));
  o = ok;
  o.duration_s = 0;
  EXPECT_THAT(ValidateHttpLoadOptions(o).message(),
              HasSubstr("needs a positive duration"));
  o = ok;
  o.requests = 5;
  EXPECT_THAT(ValidateHttpLoadOptions(o).message(),
              HasSubstr("requests must be 0"));
  o = ok;
  o.rate = -1;
  EXPECT_FALSE(ValidateHttpLoadOptions(o).ok());
  o = ok;
  o.rate = 0;
  o.duration_s = 0;
  EXPECT_THAT(ValidateHttpLoadOptions(o).message(),
              HasSubstr("requests=0 (a run of a duration) needs a positive"));
  o = ok;
  o.rate = 0;
  o.requests = 100;
  EXPECT_THAT(ValidateHttpLoadOptions(o).message(),
              HasSubstr("not with a count of requests"));
  o.duration_s = 0;
  EXPECT_TRUE(ValidateHttpLoadOptions(o).ok());
}

TEST(PacedLoadTest, RunShapeFlags) {
  RunShapeFlags f;
  f.mode = "http";
  f.requests = 10000;
  EXPECT_TRUE(CheckRunShape(f).ok());
  f.rate = 5;
  EXPECT_TRUE(CheckRunShape(f).ok()) << "--requests left at its default";
  f.requests_given = true;
  EXPECT_THAT(CheckRunShape(f).message(), HasSubstr("leave out --requests"));
  f.requests = 0;
  EXPECT_TRUE(CheckRunShape(f).ok());
  f.keepalive = true;
  EXPECT_THAT(CheckRunShape(f).message(), HasSubstr("leave out --keepalive"));
  f.keepalive = false;
  f.mode = "pingpong";
  EXPECT_THAT(CheckRunShape(f).message(), HasSubstr("--rate is for"));
  f = RunShapeFlags();
  f.mode = "http";
  f.requests = 100;
  f.warmup_given = true;
  EXPECT_THAT(CheckRunShape(f).message(), HasSubstr("--warmup is for"));
  f.requests = 0;
  EXPECT_TRUE(CheckRunShape(f).ok());
}

// Runs //client:bench with `args` (killed after 60 s so nothing hangs);
// returns its exit code and fills `output` with stdout and stderr.
int RunBench(const std::string& args, std::string* output) {
  const std::string command = absl::StrCat(
      "timeout 60 ", RunfilePath("client/bench"), " ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output->append(buffer, n);
  }
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PacedLoadTest, BenchBinaryPacedRunReportsRateLateAndPercentiles) {
  Tally tally;
  auto server = CheckingServer(&tally);
  // The binary's Host header is what --host and --port name.
  tally.Expect(PacedRequest(absl::StrCat("127.0.0.1:", server->port())));
  std::string output;
  ASSERT_EQ(RunBench(absl::StrCat("--mode=http --rate=100 --duration=0.205 "
                                  "--threads=1 --connections=4 "
                                  "--timeout_ms=30000 --json --port=",
                                  server->port()),
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("\"ok\":true"));
  EXPECT_THAT(output, HasSubstr("\"target_rate\":100.0"));
  EXPECT_THAT(output, HasSubstr("\"requests\":21,\"good\":21,\"bad\":0,"
                                "\"errors\":0,\"late\":"));
  EXPECT_THAT(output, HasSubstr("\"rate\":"));
  EXPECT_THAT(output, HasSubstr("\"latency_us\":{\"mean\":"));
  EXPECT_THAT(output, HasSubstr(",\"p999\":"));
  EXPECT_THAT(output, HasSubstr("\"send_lag_us\":{\"mean\":"));
  EXPECT_EQ(tally.exact.load(), 21);
  EXPECT_EQ(tally.other.load(), 0);
}

TEST(PacedLoadTest, BenchBinaryRefusesContradictoryFlags) {
  struct Case {
    const char* args;
    const char* says;
  };
  for (const Case& c : {
           Case{"--rate=10 --keepalive", "leave out --keepalive"},
           Case{"--rate=10 --requests=5", "leave out --requests"},
           Case{"--duration=3", "--duration is for a run of a duration"},
           Case{"--requests=100 --warmup=1", "--warmup is for"},
           Case{"--rate=-1", "rate"},
           Case{"--requests=0 --duration=0", "duration"},
       }) {
    std::string output;
    EXPECT_NE(RunBench(absl::StrCat("--mode=http ", c.args), &output), 0)
        << c.args;
    EXPECT_THAT(output, HasSubstr(c.says)) << c.args;
  }
  std::string output;
  EXPECT_EQ(RunBench("--mode=pingpong --rate=3", &output), 2);
  EXPECT_THAT(output, HasSubstr("--rate is for --mode=http"));
}

}  // namespace
}  // namespace baton::client
