// The barrier bench over TLS (BarrierOptions::tls, bench --mode=barrier
// --tls) against a TLS echo server on the engine in lib/tls, on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/barrier.h"
#include "client/tls_client.h"
#include "lib/tls/tls_context.h"
#include "tests/client/tls_echo_server.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::TestPki;
using ::baton::testing::TlsEchoServer;
using ::testing::HasSubstr;

class BarrierTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("barrier");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    absl::StatusOr<std::unique_ptr<TlsEchoServer>> server =
        TlsEchoServer::Start(pki_.server.certificate_file,
                             pki_.server.key_file);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  BarrierOptions Options(const std::string& ca_file) {
    TlsClientOptions client;
    client.ca_file = ca_file;
    client.server_name = "127.0.0.1";
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
        FullHandshakeContext(client);
    EXPECT_TRUE(context.ok()) << context.status();
    BarrierOptions o;
    o.endpoint = server_->endpoint();
    o.threads = 4;
    o.rounds = 5;
    o.timeout_ms = 30000;
    o.tls = context.ok() ? *context : nullptr;
    return o;
  }

  TestPki pki_;
  std::unique_ptr<TlsEchoServer> server_;
};

TEST_F(BarrierTlsTest, EveryThreadsRoundTripsComeBackByteForByte) {
  // 13 bytes as kecho sends, and 40000: three TLS records each way, more
  // than one read of them.
  for (size_t size : {size_t{13}, size_t{40000}}) {
    const int64_t before = server_->handshakes();
    BarrierOptions o = Options(pki_.ca.certificate_file);
    o.size = size;
    absl::StatusOr<BarrierResult> r = RunBarrier(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->errors, 0) << "size " << size;
    for (const BarrierThreadResult& t : r->threads) {
      EXPECT_EQ(t.error, "") << "thread " << t.id;
      EXPECT_GT(t.avg_us, 0) << "thread " << t.id;
    }
    EXPECT_EQ(server_->handshakes() - before, o.threads) << "one per thread";
    EXPECT_EQ(server_->failures(), 0);
  }
}

TEST_F(BarrierTlsTest, AFailedHandshakeIsEachThreadsErrorAndReleasesTheRest) {
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<BarrierResult> r =
      RunBarrier(Options(other->ca.certificate_file));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 4);
  for (const BarrierThreadResult& t : r->threads) {
    EXPECT_THAT(t.error, HasSubstr("TLS handshake: "));
    EXPECT_THAT(t.error, HasSubstr("certificate verify failed"));
  }
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

TEST_F(BarrierTlsTest, BenchBinaryBarrierOverTls) {
  const std::string common = absl::StrCat(
      "--mode=barrier --threads=3 --rounds=4 --size=100 --timeout_ms=30000 "
      "--port=",
      server_->port(), " --tls");
  std::string output;
  ASSERT_EQ(RunBench(absl::StrCat(
                         common, " --json --tls_ca=", pki_.ca.certificate_file),
                     &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("\"ok\":true"));
  EXPECT_THAT(output, HasSubstr("\"tls\":true"));
  EXPECT_THAT(output, HasSubstr("\"errors\":0"));
  EXPECT_EQ(server_->handshakes(), 3);

  output.clear();
  ASSERT_EQ(
      RunBench(absl::StrCat(common, " --tls_ca=", pki_.ca.certificate_file),
               &output),
      0)
      << output;
  EXPECT_THAT(output, HasSubstr("round trips of 100 bytes over TLS"));

  // The certificate names localhost and 127.0.0.1, not this.
  output.clear();
  EXPECT_EQ(
      RunBench(absl::StrCat(common, " --tls_ca=", pki_.ca.certificate_file,
                            " --tls_server_name=example.com"),
               &output),
      1);
  EXPECT_THAT(output, HasSubstr("hostname mismatch"));
}

}  // namespace
}  // namespace baton::client
