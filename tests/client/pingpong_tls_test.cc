// The ping-pong load over TLS (PingPongOptions::tls) against a TLS echo
// server on the engine in lib/tls, on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/pingpong.h"
#include "lib/tls/tls_context.h"
#include "tests/client/tls_echo_server.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::TestPki;
using ::baton::testing::TlsEchoServer;
using ::testing::HasSubstr;

class PingPongTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("pingpong");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    absl::StatusOr<std::unique_ptr<TlsEchoServer>> server =
        TlsEchoServer::Start(pki_.server.certificate_file,
                             pki_.server.key_file);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // A fixed amount of work: the run ends when every connection has done its
  // round trips; the duration is only a cap that a hang would reach.
  PingPongOptions Options(const std::string& ca_file) {
    TlsClientOptions client;
    client.ca_file = ca_file;
    client.server_name = "127.0.0.1";
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
        tls::TlsContext::ForClient(client);
    EXPECT_TRUE(context.ok()) << context.status();
    PingPongOptions o;
    o.endpoint = server_->endpoint();
    o.threads = 2;
    o.connections = 3;
    o.size = 20000;  // two TLS records each way
    o.duration_s = 120;
    o.timeout_ms = 30000;
    o.round_trips_per_connection = 5;
    o.tls = context.ok() ? *context : nullptr;
    return o;
  }

  TestPki pki_;
  std::unique_ptr<TlsEchoServer> server_;
};

TEST_F(PingPongTlsTest, RoundTripsAreEncryptedAndVerified) {
  absl::StatusOr<PingPongResult> r =
      RunPingPong(Options(pki_.ca.certificate_file));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->round_trips, 2 * 3 * 5);
  EXPECT_EQ(server_->handshakes(), 2 * 3);  // one per connection
  EXPECT_EQ(server_->failures(), 0);
}

TEST_F(PingPongTlsTest, NewHandshakePerRequestReconnectsEveryRoundTrip) {
  PingPongOptions o = Options(pki_.ca.certificate_file);
  o.tls_new_handshake_per_request = true;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->round_trips, 2 * 3 * 5);
  EXPECT_EQ(server_->handshakes(), 2 * 3 * 5);
}

TEST_F(PingPongTlsTest, UntrustedServerEndsTheRunWithTheReason) {
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("other");
  ASSERT_TRUE(other.ok());
  PingPongOptions o = Options(other->ca.certificate_file);
  o.threads = 1;
  o.connections = 1;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("certificate verify failed: unable to get local "
                        "issuer certificate"));
}

// Runs //client:bench with `args` (killed after 60 s so nothing hangs);
// returns its exit code and fills `output` with stdout and stderr.
int RunBench(const std::string& args, std::string* output) {
  const std::string command =
      absl::StrCat("timeout 60 ", baton::testing::RunfilePath("client/bench"),
                   " ", args, " 2>&1");
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

TEST_F(PingPongTlsTest, BenchBinaryTlsFlags) {
  const std::string common = absl::StrCat(
      "--mode=pingpong --json --threads=1 --connections=2 --round_trips=3 "
      "--duration=120 --timeout_ms=30000 --port=",
      server_->port());
  std::string output;
  ASSERT_EQ(RunBench(absl::StrCat(common,
                                  " --tls --tls_ca=", pki_.ca.certificate_file,
                                  " --tls_new_handshake_per_request"),
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("\"ok\":true"));
  EXPECT_THAT(output, HasSubstr("\"round_trips\":6"));
  EXPECT_THAT(output, HasSubstr("\"tls_new_handshake_per_request\":true"));
  EXPECT_EQ(server_->handshakes(), 6);

  // The certificate names localhost and 127.0.0.1, not this.
  output.clear();
  EXPECT_EQ(RunBench(absl::StrCat(common,
                                  " --tls --tls_ca=", pki_.ca.certificate_file,
                                  " --tls_server_name=example.com"),
                     &output),
            1);
  EXPECT_THAT(output, HasSubstr("hostname mismatch"));

  output.clear();
  EXPECT_EQ(
      RunBench(absl::StrCat(common, " --tls --tls_ca=/nonexistent"), &output),
      1);
  EXPECT_THAT(output, HasSubstr("--tls: ca_file /nonexistent"));

  output.clear();
  EXPECT_EQ(RunBench("--mode=pingpong --tls_ca=/nonexistent", &output), 2);
  EXPECT_THAT(output, HasSubstr("the --tls_* flags need --tls"));
}

}  // namespace
}  // namespace baton::client
