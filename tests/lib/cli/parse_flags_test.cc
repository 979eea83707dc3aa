// Tests for lib/cli/parse_flags: every server and client binary answers
// --help with its usage and its own flags, without gflags' and glog's
// internals, and --helpfull adds those after the program's flags.
#include "lib/cli/parse_flags.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/util/test_client.h"

namespace baton::cli {
namespace {

using ::baton::testing::RunfilePath;

struct Output {
  std::string output;  // stdout and stderr
  int exit_code = -1;
};

Output RunBinary(const std::string& binary, const std::string& args) {
  Output run;
  const std::string command = absl::StrCat("timeout 60 ", RunfilePath(binary),
                                           " ", args, " 2>&1 </dev/null");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.output.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

// Flags gflags defines in every binary, and glog in those that link it (the
// servers).
const char* const kGflagsFlags[] = {"-flagfile ", "-tab_completion_word ",
                                    "-helpxml ", "-fromenv "};
const char* const kGlogFlags[] = {"-logtostderr ", "-v "};

struct Binary {
  const char* path;      // in the workspace
  const char* usage;     // start of its usage message
  const char* own_flag;  // a flag only this kind of binary has
  bool glog;             // links glog
};

const Binary kBinaries[] = {
    {"server/echo", "echo: echo server", "-reread_rounds ", true},
    {"server/http", "http: HTTP/1.1 server", "-response_size ", true},
    {"server/compare/baton_echo", "baton_echo: echo server on baton's",
     "-slow_us ", true},
    {"server/compare/asio_echo", "asio_echo: echo server on Boost.Asio",
     "-threads ", true},
    {"server/compare/poll_echo", "poll_echo: single-threaded poll()",
     "-address ", true},
    {"server/compare/reuseport_echo", "reuseport_echo: echo server, one epoll",
     "-slow_mode ", true},
    {"server/compare/select_echo", "select_echo: ", "-address ", true},
    {"server/compare/thread_echo", "thread_echo: ", "-address ", true},
    {"client/bench", "bench: load generator", "-mode ", false},
    {"client/deadconn", "deadconn: holds idle connections", "-partial_request ",
     false},
};

std::vector<const char*> LibraryFlags(const Binary& b) {
  std::vector<const char*> flags(std::begin(kGflagsFlags),
                                 std::end(kGflagsFlags));
  if (b.glog)
    flags.insert(flags.end(), std::begin(kGlogFlags), std::end(kGlogFlags));
  return flags;
}

TEST(ParseFlagsTest, HelpShowsUsageAndOwnFlagsOnly) {
  for (const Binary& b : kBinaries) {
    for (const char* help : {"--help", "--helpshort", "-help"}) {
      SCOPED_TRACE(absl::StrCat(b.path, " ", help));
      const Output run = RunBinary(b.path, help);
      EXPECT_EQ(run.exit_code, 0) << run.output;
      // The usage message comes first, then the program's flags.
      EXPECT_EQ(run.output.rfind(b.usage, 0), 0u) << run.output;
      EXPECT_NE(run.output.find(b.own_flag), std::string::npos) << run.output;
      for (const char* flag : LibraryFlags(b)) {
        EXPECT_EQ(run.output.find(flag), std::string::npos) << flag << " in:\n"
                                                            << run.output;
      }
      EXPECT_NE(run.output.find("--helpfull"), std::string::npos);
    }
  }
}

TEST(ParseFlagsTest, MainFileFlagsComeFirst) {
  struct Case {
    const char* path;
    const char* main_file;
  };
  for (const Case& c : {Case{"server/echo", "server/echo_main.cc"},
                        Case{"server/http", "server/http_main.cc"},
                        Case{"client/bench", "client/bench_main.cc"},
                        Case{"client/deadconn", "client/deadconn_main.cc"}}) {
    SCOPED_TRACE(c.path);
    const Output run = RunBinary(c.path, "--help");
    const size_t first = run.output.find("Flags from ");
    ASSERT_NE(first, std::string::npos) << run.output;
    EXPECT_EQ(run.output.find(absl::StrCat("Flags from ", c.main_file, ":")),
              first)
        << run.output;
  }
}

TEST(ParseFlagsTest, EchoHelpListsTheSharedServerFlags) {
  const Output run = RunBinary("server/echo", "--help");
  for (const char* flag :
       {"-port ", "-address ", "-threads ", "-max_connections ",
        "-drain_timeout_ms ", "-max_events ", "-idle_timeout_ms "}) {
    EXPECT_NE(run.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(run.output.find("default: 12345"), std::string::npos) << run.output;
}

TEST(ParseFlagsTest, HttpKeepsItsOwnDefaultPort) {
  const Output run = RunBinary("server/http", "--help");
  const size_t port = run.output.find("-port ");
  ASSERT_NE(port, std::string::npos) << run.output;
  EXPECT_NE(run.output.find("default: 8081", port), std::string::npos)
      << run.output;
}

TEST(ParseFlagsTest, HelpfullAddsLibraryFlagsAfterTheProgramsOwn) {
  for (const Binary& b : kBinaries) {
    SCOPED_TRACE(b.path);
    const Output run = RunBinary(b.path, "--helpfull");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output.rfind(b.usage, 0), 0u) << run.output;
    const size_t own = run.output.find(b.own_flag);
    ASSERT_NE(own, std::string::npos) << run.output;
    for (const char* flag : LibraryFlags(b)) {
      const size_t at = run.output.find(flag);
      EXPECT_NE(at, std::string::npos) << flag << " missing";
      EXPECT_GT(at, own) << flag << " listed before the program's flags";
    }
  }
}

TEST(ParseFlagsTest, OtherGflagsHelpFlagsStillWork) {
  const Output run = RunBinary("server/echo", "--helpon=serve");
  EXPECT_NE(run.output.find("-drain_timeout_ms"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("-idle_timeout_ms"), std::string::npos)
      << run.output;
}

TEST(ParseFlagsTest, FlagsAreStillValidated) {
  const Output run = RunBinary("server/echo", "--port=70000");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("--port=70000"), std::string::npos) << run.output;
}

// A server may listen on port 0 (a free one); a client cannot connect to it.
TEST(ParseFlagsTest, ClientsRefuseTargetPortZero) {
  for (const char* client : {"client/bench", "client/deadconn"}) {
    const Output run = RunBinary(client, "--port=0");
    EXPECT_NE(run.exit_code, 0) << client;
    EXPECT_NE(run.output.find("--port=0: must be in 1..65535"),
              std::string::npos)
        << client << ": " << run.output;
  }
}

}  // namespace
}  // namespace baton::cli
