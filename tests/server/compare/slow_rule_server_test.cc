// End to end: every echo server of the head-of-line benchmark (baton_echo,
// Asio shared and per thread, reuseport, poll, select, thread per
// connection) echoes marked and unmarked messages byte for byte and delays
// exactly the marked ones: its exit log counts them. No timing assertions.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::RunfilePath;

// "binary --extra --flags"
class SlowRuleServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  absl::Status Start(ChildServer& server, std::vector<std::string> args) {
    std::vector<std::string> words = absl::StrSplit(GetParam(), ' ');
    args.insert(args.end(), words.begin() + 1, words.end());
    args.push_back("--port=0");
    args.push_back("--threads=2");
    return server.Start(RunfilePath("server/compare/" + words[0]), args);
  }
};

// A message of `size` bytes, none of them the marker 0xff unless `slow`,
// and then only the first.
std::string Message(size_t size, int seed, bool slow) {
  std::string m(size, '\0');
  for (size_t i = 0; i < size; ++i)
    m[i] = static_cast<char>((seed * 31 + i) % 255);
  if (slow) m[0] = '\xff';
  return m;
}

TEST_P(SlowRuleServerTest, DelaysExactlyTheMarkedMessages) {
  ChildServer server;
  ASSERT_TRUE(Start(server, {"--slow_us=200", "--slow_mode=sleep"}).ok())
      << server.output();
  int slow_sent = 0;
  for (int c = 0; c < 3; ++c) {
    const int fd = ConnectLoopback(server.port());
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 20; ++i) {
      // One at a time, as the bench sends them: each marked message is
      // delayed once, an unmarked one never.
      const bool slow = (i % 4 == c);
      ASSERT_TRUE(EchoRoundTrip(fd, Message(64 + i, c * 100 + i, slow)).ok());
      slow_sent += slow;
    }
    ::close(fd);
  }
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 10000);
  ASSERT_TRUE(status.ok()) << status.status() << server.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  EXPECT_NE(server.output().find("slow rule: sleep 200 us per message "
                                 "starting with byte 0xff"),
            std::string::npos)
      << server.output();
  EXPECT_NE(server.output().find(absl::StrCat("slow rule: ", slow_sent,
                                              " slow messages delayed")),
            std::string::npos)
      << "expected " << slow_sent << " slow messages: " << server.output();
}

TEST_P(SlowRuleServerTest, SpinModeAndAnotherMarker) {
  ChildServer server;
  ASSERT_TRUE(
      Start(server, {"--slow_us=50", "--slow_mode=spin", "--slow_byte=0"}).ok())
      << server.output();
  const int fd = ConnectLoopback(server.port());
  ASSERT_GE(fd, 0);
  // Two messages coalesced in one write: each marker byte counts once.
  std::string two = std::string(1, '\0') + "abc" + std::string(1, '\0') + "de";
  ASSERT_TRUE(EchoRoundTrip(fd, two).ok());
  ASSERT_TRUE(EchoRoundTrip(fd, "no marker").ok());
  ::close(fd);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 10000);
  ASSERT_TRUE(status.ok()) << status.status() << server.output();
  EXPECT_NE(server.output().find("slow rule: spin 50 us"), std::string::npos)
      << server.output();
  EXPECT_NE(server.output().find("slow rule: 2 slow messages delayed"),
            std::string::npos)
      << server.output();
}

TEST_P(SlowRuleServerTest, RejectsBadSlowFlags) {
  for (const char* bad :
       {"--slow_us=-1", "--slow_us=10000001", "--slow_mode=nap",
        "--slow_byte=256", "--slow_byte=-1"}) {
    ChildServer server;
    const std::string flag =
        std::string(bad).substr(2, std::string(bad).find('=') - 2);
    // The server exits at once naming the flag; Start fails without a port.
    EXPECT_FALSE(Start(server, {bad}).ok()) << bad;
    absl::StatusOr<int> status = server.WaitExit(10000);
    ASSERT_TRUE(status.ok()) << bad << ": " << server.output();
    EXPECT_FALSE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bad;
    EXPECT_NE(server.output().find(absl::StrCat("--", flag)), std::string::npos)
        << bad << ": " << server.output();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Servers, SlowRuleServerTest,
    ::testing::Values("baton_echo", "asio_echo --io_contexts=shared",
                      "asio_echo --io_contexts=per_thread", "reuseport_echo",
                      "poll_echo", "select_echo", "thread_echo"),
    [](const ::testing::TestParamInfo<std::string>& param_info) {
      std::string name;
      for (char c : param_info.param) {
        if (isalnum(static_cast<unsigned char>(c))) name += c;
      }
      return name;
    });

}  // namespace
}  // namespace baton
