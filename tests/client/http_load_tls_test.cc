// The HTTP load over TLS (HttpLoadOptions::tls, bench --mode=http --tls)
// against //server:http serving HTTPS (--tls_cert, --tls_key) on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/http_load.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::RunfilePath;
using ::baton::testing::TestPki;
using ::testing::HasSubstr;

constexpr int kBodySize = 3000;

class HttpLoadTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("httpload");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    ASSERT_TRUE(server_
                    .Start(RunfilePath("server/http"),
                           {"--port=0", "--threads=2",
                            absl::StrCat("--response_size=", kBodySize),
                            "--tls_cert=" + pki_.server.certificate_file,
                            "--tls_key=" + pki_.server.key_file})
                    .ok())
        << server_.output();
  }

  void TearDown() override {
    absl::StatusOr<int> status = server_.StopWith(SIGTERM, 30000);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << *status << "\n"
        << server_.output();
  }

  HttpLoadOptions Options(const std::string& ca_file, int64_t requests) {
    TlsClientOptions client;
    client.ca_file = ca_file;
    client.server_name = "localhost";
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
        tls::TlsContext::ForClient(client);
    EXPECT_TRUE(context.ok()) << context.status();
    absl::StatusOr<Endpoint> endpoint =
        ResolveEndpoint("127.0.0.1", server_.port());
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    HttpLoadOptions o;
    if (endpoint.ok()) o.endpoint = *endpoint;
    o.host_header = "localhost";
    o.threads = 2;
    o.connections = 3;
    o.requests = requests;
    o.timeout_ms = 30000;
    o.tls = context.ok() ? *context : nullptr;
    return o;
  }

  TestPki pki_;
  ChildServer server_;
};

TEST_F(HttpLoadTlsTest, HttpsKeepAliveAndConnectionPerRequest) {
  for (bool keepalive : {true, false}) {
    HttpLoadOptions o = Options(pki_.ca.certificate_file, 60);
    o.keepalive = keepalive;
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->good, 60) << "keepalive=" << keepalive << " "
                           << r->first_problem;
    EXPECT_EQ(r->bad + r->errors, 0) << r->first_problem;
    EXPECT_EQ(r->body_bytes, 60 * kBodySize);
    EXPECT_EQ(r->latency.count(), 60);
  }
}

TEST_F(HttpLoadTlsTest, UntrustedServerIsAnErrorWithTheReason) {
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(other.ok()) << other.status();
  HttpLoadOptions o = Options(other->ca.certificate_file, 4);
  o.threads = 1;
  o.connections = 1;
  absl::StatusOr<HttpLoadResult> r = RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->good, 0);
  EXPECT_EQ(r->errors, 4);
  EXPECT_THAT(r->first_problem, HasSubstr("certificate verify failed"));
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

TEST_F(HttpLoadTlsTest, BenchBinaryHttpTls) {
  const std::string common = absl::StrCat(
      "--mode=http --json --threads=1 --connections=2 --requests=20 "
      "--timeout_ms=30000 --port=",
      server_.port(), " --tls --tls_ca=", pki_.ca.certificate_file);
  for (const char* keepalive : {" --keepalive", ""}) {
    std::string output;
    ASSERT_EQ(RunBench(absl::StrCat(common, keepalive), &output), 0)
        << keepalive << "\n"
        << output;
    EXPECT_THAT(output, HasSubstr("\"ok\":true"));
    EXPECT_THAT(output, HasSubstr("\"tls\":true"));
    EXPECT_THAT(output, HasSubstr("\"good\":20"));
    EXPECT_THAT(output,
                HasSubstr(absl::StrCat("\"body_bytes\":", 20 * kBodySize)));
  }

  // The certificate names localhost and 127.0.0.1, not this.
  std::string output;
  EXPECT_EQ(
      RunBench(absl::StrCat(common, " --tls_server_name=example.com"), &output),
      1);
  EXPECT_THAT(output, HasSubstr("hostname mismatch"));

  output.clear();
  EXPECT_EQ(
      RunBench("--mode=http --tls --tls_new_handshake_per_request", &output),
      2);
  EXPECT_THAT(output, HasSubstr("--tls_new_handshake_per_request is for "
                                "--mode=pingpong"));
}

// The keep-alive clients of the TLS benchmark: K connections for a
// duration; a harness reads "rate" and "latency_us" ("p99", "p999").
TEST_F(HttpLoadTlsTest, BenchBinaryKeepAliveForADurationReportsPercentiles) {
  std::string output;
  ASSERT_EQ(RunBench(absl::StrCat("--mode=http --keepalive --tls --tls_ca=",
                                  pki_.ca.certificate_file,
                                  " --requests=0 --duration=0.3 --warmup=0.1 "
                                  "--connections=10 --threads=1 "
                                  "--timeout_ms=30000 --json --port=",
                                  server_.port()),
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("\"ok\":true"));
  EXPECT_THAT(output, HasSubstr("\"keepalive\":true,\"tls\":true"));
  EXPECT_THAT(output, HasSubstr("\"duration\":0.300,\"warmup\":0.100"));
  EXPECT_THAT(output, HasSubstr(",\"bad\":0,\"errors\":0,"));
  EXPECT_THAT(output, HasSubstr(",\"rate\":"));
  EXPECT_THAT(output, HasSubstr("\"latency_us\":{\"mean\":"));
  EXPECT_THAT(output, HasSubstr(",\"p99\":"));
  EXPECT_THAT(output, HasSubstr(",\"p999\":"));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("\"good\":0,")));
}

}  // namespace
}  // namespace baton::client
