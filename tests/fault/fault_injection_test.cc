// Fault-injection tests: //server:echo and //server:http run as child
// processes with libbaton_fault.so preloaded (into the server only), so
// their socket calls fail with EINTR or EAGAIN or move short counts, at a
// 5% and a 20% rate. Loopback clients check that every byte still comes back
// exactly and that the server stops cleanly; the shim's exit summary must
// show that faults of every kind really were injected, or the test fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;
using Clock = std::chrono::steady_clock;

// Every client loop below is bounded in count; this bounds it in time too.
constexpr auto kTestBudget = std::chrono::seconds(90);

// Starts `binary` with the shim preloaded. setenv is not thread-safe, so
// this must run while the test has no other threads; the variables are
// removed again so that nothing else this process starts inherits them.
absl::Status StartWithFaults(ChildServer* server, const std::string& binary,
                             const std::vector<std::string>& args,
                             const char* rate, const char* seed) {
  const std::string shim = RunfilePath("tests/fault/libbaton_fault.so");
  ::setenv("LD_PRELOAD", shim.c_str(), 1);
  ::setenv("BATON_FAULT_RATE", rate, 1);
  ::setenv("BATON_FAULT_SEED", seed, 1);
  const absl::Status status = server->Start(binary, args);
  ::unsetenv("LD_PRELOAD");
  ::unsetenv("BATON_FAULT_RATE");
  ::unsetenv("BATON_FAULT_SEED");
  return status;
}

// The shim's exit line: totals per fault kind and injected faults per call.
struct FaultSummary {
  uint64_t injected = 0;
  uint64_t eintr = 0;
  uint64_t eagain = 0;
  uint64_t short_counts = 0;
  struct PerCall {
    uint64_t injected = 0;
    uint64_t calls = 0;
  };
  std::map<std::string, PerCall> per_call;
};

absl::StatusOr<FaultSummary> ParseSummary(const std::string& output) {
  const std::regex line(
      "baton_fault: injected ([0-9]+) faults in [0-9]+ calls \\([^;]*; "
      "eintr ([0-9]+), eagain ([0-9]+), short ([0-9]+); ([^)]*)\\)");
  std::smatch m;
  if (!std::regex_search(output, m, line)) {
    return absl::NotFoundError("no baton_fault summary in the output");
  }
  FaultSummary s;
  if (!absl::SimpleAtoi(m[1].str(), &s.injected) ||
      !absl::SimpleAtoi(m[2].str(), &s.eintr) ||
      !absl::SimpleAtoi(m[3].str(), &s.eagain) ||
      !absl::SimpleAtoi(m[4].str(), &s.short_counts)) {
    return absl::InvalidArgumentError("bad counts in the summary");
  }
  // "read 12/340, send 3/99, ..."
  for (absl::string_view item : absl::StrSplit(m[5].str(), ", ")) {
    std::vector<std::string> parts =
        absl::StrSplit(item, absl::ByAnyChar(" /"));
    FaultSummary::PerCall n;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &n.injected) ||
        !absl::SimpleAtoi(parts[2], &n.calls)) {
      return absl::InvalidArgumentError(absl::StrCat("bad item: ", item));
    }
    s.per_call[parts[0]] = n;
  }
  return s;
}

// SIGTERMs the server, expects a clean exit and a summary showing every
// fault kind, and each of `calls` made and faulted. A call is only required
// to have been faulted when at least 20 faults were expected (`rate` times
// its calls): below that, a run without one is too likely to be luck
// (e^-20 at 20) for the test to be stable.
void StopAndExpectFaults(ChildServer* server, double rate,
                         const std::vector<std::string>& calls) {
  // Generous: a server that drains before stopping may spend its whole
  // grace period on peers that never read.
  absl::StatusOr<int> status = server->StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << status.status() << "\n" << server->output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server->output();
  absl::StatusOr<FaultSummary> summary = ParseSummary(server->output());
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << server->output();
  EXPECT_GT(summary->injected, 0u);
  EXPECT_GT(summary->eintr, 0u);
  EXPECT_GT(summary->eagain, 0u);
  EXPECT_GT(summary->short_counts, 0u);
  for (const std::string& call : calls) {
    const FaultSummary::PerCall& n = summary->per_call[call];
    EXPECT_GT(n.calls, 0u) << call << " never called";
    if (rate * static_cast<double>(n.calls) >= 20) {
      EXPECT_GT(n.injected, 0u) << "no fault injected into " << call;
    }
  }
  // Shown in the test log: how hard the run really was.
  for (const char* line : {"stopped; [^\n]*", "baton_fault: [^\n]*"}) {
    std::smatch m;
    if (std::regex_search(server->output(), m, std::regex(line))) {
      std::cout << m[0] << "\n";
    }
  }
}

// Runs `body(i)` on `threads` threads and waits for them.
template <typename Body>
void RunClients(int threads, Body body) {
  std::vector<std::thread> clients;
  for (int i = 0; i < threads; ++i) clients.emplace_back(body, i);
  for (auto& t : clients) t.join();
}

// Opens `count` connections and sends on each, without ever reading, until
// the socket buffers in both directions are full (at most 16 MiB each).
std::vector<int> FillWithoutReading(int port, int count) {
  std::vector<int> fds;
  const std::string chunk = Pattern(65536, 99);
  for (int c = 0; c < count; ++c) {
    const int fd = ConnectLoopback(port);
    if (fd < 0) continue;
    fds.push_back(fd);
    // Give the server a moment to drain each chunk before deciding the
    // buffers are full: three EAGAINs in a row, 5 ms apart.
    for (int sent = 0, misses = 0; sent < 256 && misses < 3;) {
      if (::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >
          0) {
        ++sent;
        misses = 0;
      } else {
        ++misses;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  return fds;
}

// Failures and the time budget shared by a test's client threads.
class ClientRun {
 public:
  bool TimeLeft() const { return Clock::now() < deadline_; }
  void Fail(const std::string& what) {
    ADD_FAILURE() << what;
    failures_.fetch_add(1);
  }
  void ExpectClean() const {
    EXPECT_EQ(failures_.load(), 0);
    EXPECT_TRUE(TimeLeft()) << "ran out of time";
  }

 private:
  const Clock::time_point deadline_ = Clock::now() + kTestBudget;
  std::atomic<int> failures_{0};
};

// The parameter is the fault rate.
class FaultInjectionTest : public ::testing::TestWithParam<const char*> {};

// A 256 KiB output high-water mark makes the 1 MiB echoes pause and resume
// reading under faults too.
TEST_P(FaultInjectionTest, EchoReturnsEveryByteUnderFaults) {
  ChildServer server;
  ASSERT_TRUE(
      StartWithFaults(&server, RunfilePath("server/echo"),
                      {"--port=0", "--threads=3", "--output_high_water=262144"},
                      GetParam(), "11")
          .ok())
      << server.output();
  ClientRun run;

  // Long connections: many small round trips, then 1 B .. 1 MiB payloads.
  const std::vector<size_t> sizes = {
      1, 2, 17, 1000, 4096, 65537, 262144, 1 << 20, 524287, 1 << 20, 3};
  RunClients(16, [&](int c) {
    const int fd = ConnectLoopback(server.port());
    if (fd < 0) return run.Fail(absl::StrCat("connect ", c));
    for (int i = 0; i < 200 && run.TimeLeft(); ++i) {
      const std::string msg = Pattern(1 + (c * 31 + i) % 64, c * 1000 + i);
      if (absl::Status s = EchoRoundTrip(fd, msg); !s.ok()) {
        ::close(fd);
        return run.Fail(absl::StrCat("connection ", c, " round trip ", i, ": ",
                                     s.ToString()));
      }
    }
    for (size_t i = 0; i < sizes.size() && run.TimeLeft(); ++i) {
      if (absl::Status s = EchoRoundTrip(fd, Pattern(sizes[i], c * 7 + i));
          !s.ok()) {
        ::close(fd);
        return run.Fail(absl::StrCat("connection ", c, ", ", sizes[i],
                                     " bytes: ", s.ToString()));
      }
    }
    ::close(fd);
  });

  // Short connections, for accept4 and the open/close path.
  RunClients(6, [&](int c) {
    for (int i = 0; i < 50 && run.TimeLeft(); ++i) {
      const int fd = ConnectLoopback(server.port());
      if (fd < 0) return run.Fail(absl::StrCat("short connect ", c, "/", i));
      const absl::Status s = EchoRoundTrip(fd, Pattern(100, c * 100 + i));
      ::close(fd);
      if (!s.ok()) {
        return run.Fail(
            absl::StrCat("short connection ", c, "/", i, ": ", s.ToString()));
      }
    }
  });
  run.ExpectClean();
  // Stop with peers that send and never read: their connections are paused
  // at the output high-water mark with output queued, and must not hold up
  // the exit.
  std::vector<int> stuck = FillWithoutReading(server.port(), 4);
  StopAndExpectFaults(&server, std::stod(GetParam()),
                      {"read", "send", "sendmsg", "accept4", "epoll_ctl"});
  for (int fd : stuck) ::close(fd);
}

// One parsed HTTP response.
struct Response {
  std::string status_line;
  std::string body;
};

// Reads responses one after another from a keep-alive connection.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {}

  absl::StatusOr<Response> Next() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (absl::Status s = Fill(); !s.ok()) return s;
    }
    Response r;
    const std::string head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    r.status_line = head.substr(0, head.find("\r\n"));
    const std::string key = "\r\nContent-Length: ";
    const size_t at = head.find(key);
    size_t length = 0;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(
            head.substr(at + key.size(),
                        head.find("\r\n", at + key.size()) - at - key.size()),
            &length)) {
      return absl::DataLossError("no Content-Length in: " + head);
    }
    while (buffer_.size() < length) {
      if (absl::Status s = Fill(); !s.ok()) return s;
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  // True once the server has closed and nothing is left unread.
  bool AtEof() { return buffer_.empty() && !Fill().ok() && eof_; }

 private:
  absl::Status Fill() {
    if (buffer_.size() > (64 << 20)) {
      return absl::OutOfRangeError("over 64 MiB without a whole response");
    }
    char chunk[65536];
    ssize_t n;
    do {
      n = ::recv(fd_, chunk, sizeof(chunk), 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) eof_ = true;
    if (n <= 0) {
      return absl::UnavailableError(absl::StrCat(n == 0 ? "EOF" : "recv error",
                                                 " with ", buffer_.size(),
                                                 " bytes buffered"));
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return absl::OkStatus();
  }

  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

absl::Status ExpectResponse(ResponseReader* reader, const std::string& status,
                            const std::string& body) {
  absl::StatusOr<Response> r = reader->Next();
  if (!r.ok()) return r.status();
  if (r->status_line != "HTTP/1.1 " + status) {
    return absl::DataLossError("status line: " + r->status_line);
  }
  if (r->body != body) {
    size_t i = 0;
    while (i < body.size() && i < r->body.size() && r->body[i] == body[i]) ++i;
    return absl::DataLossError(absl::StrCat("body differs at byte ", i, " of ",
                                            body.size(), " (got ",
                                            r->body.size(), ")"));
  }
  return absl::OkStatus();
}

std::string Get(const std::string& path, const std::string& extra = "") {
  return absl::StrCat("GET /", path, " HTTP/1.1\r\nHost: x\r\n", extra, "\r\n");
}

TEST_P(FaultInjectionTest, HttpServesFilesByteExactUnderFaults) {
  const std::string root = ::testing::TempDir() + "/fault_http_root";
  ::mkdir(root.c_str(), 0755);
  const std::string big = Pattern((3 << 19) + 123, 7);  // ~1.5 MiB
  const std::string small = Pattern(3000, 8);
  for (const auto& [name, data] :
       {std::pair<std::string, const std::string*>{"big.bin", &big},
        {"small.bin", &small}}) {
    std::ofstream(root + "/" + name, std::ios::binary) << *data;
  }
  ChildServer server;
  ASSERT_TRUE(StartWithFaults(&server, RunfilePath("server/http"),
                              {"--port=0", "--threads=3", "--root=" + root},
                              GetParam(), "12")
                  .ok())
      << server.output();
  ClientRun run;

  RunClients(8, [&](int c) {
    for (int round = 0; round < 4 && run.TimeLeft(); ++round) {
      // Keep-alive: one request at a time, whole files and a range.
      const int fd = ConnectLoopback(server.port());
      if (fd < 0) return run.Fail(absl::StrCat("connect ", c));
      ResponseReader reader(fd);
      const int64_t first = 1000 * c + 1;
      const int64_t last = first + 200000;
      struct Step {
        std::string request, status, body;
      };
      const std::vector<Step> steps = {
          {Get("big.bin"), "200 OK", big},
          {Get("small.bin"), "200 OK", small},
          {Get("big.bin",
               absl::StrCat("Range: bytes=", first, "-", last, "\r\n")),
           "206 Partial Content", big.substr(first, last - first + 1)},
      };
      for (const Step& step : steps) {
        absl::Status s = SendAll(fd, step.request);
        if (s.ok()) s = ExpectResponse(&reader, step.status, step.body);
        if (!s.ok()) {
          ::close(fd);
          return run.Fail(
              absl::StrCat("client ", c, " keep-alive: ", s.ToString()));
        }
      }
      // Pipelined: eight requests in one send, answered in order; the
      // last asks the server to close.
      std::string burst;
      for (int i = 0; i < 8; ++i) {
        burst += Get(i % 2 ? "small.bin" : "big.bin",
                     i == 7 ? "Connection: close\r\n" : "");
      }
      absl::Status s = SendAll(fd, burst);
      for (int i = 0; i < 8 && s.ok(); ++i) {
        s = ExpectResponse(&reader, "200 OK", i % 2 ? small : big);
      }
      if (s.ok() && !reader.AtEof()) {
        s = absl::DataLossError("no EOF after Connection: close");
      }
      ::close(fd);
      if (!s.ok()) {
        return run.Fail(
            absl::StrCat("client ", c, " pipelined: ", s.ToString()));
      }
    }
    // HTTP/1.0: a connection per request.
    for (int i = 0; i < 25 && run.TimeLeft(); ++i) {
      const int fd = ConnectLoopback(server.port());
      if (fd < 0) return run.Fail(absl::StrCat("connect ", c));
      ResponseReader reader(fd);
      absl::Status s = SendAll(fd, "GET /small.bin HTTP/1.0\r\n\r\n");
      if (s.ok()) s = ExpectResponse(&reader, "200 OK", small);
      if (s.ok() && !reader.AtEof()) {
        s = absl::DataLossError("HTTP/1.0 connection not closed");
      }
      ::close(fd);
      if (!s.ok()) {
        return run.Fail(
            absl::StrCat("client ", c, " HTTP/1.0: ", s.ToString()));
      }
    }
  });
  run.ExpectClean();
  StopAndExpectFaults(&server, std::stod(GetParam()),
                      {"read", "send", "sendfile", "accept4", "epoll_ctl"});
}

INSTANTIATE_TEST_SUITE_P(Rates, FaultInjectionTest,
                         ::testing::Values("0.05", "0.2"));

}  // namespace
}  // namespace baton
