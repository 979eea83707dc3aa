// libFuzzer target for the HTTP request path (tools/fuzz.sh builds it with
// clang, -fsanitize=fuzzer,address; http_request_corpus_test replays the
// seed corpus through it in the normal suite).
//
// Each input is used twice:
//  1. as a request target, a Range header and a date, through the pure
//     functions of server/httpd/http_util.h, whose invariants are checked:
//     a normalised path never climbs out or carries odd bytes, and whatever
//     OpenBeneath opens lies beneath the document root (which holds a
//     symlink out, a FIFO and a directory);
//  2. as raw bytes from a client: written in chunks whose sizes come from
//     the input itself to a real HttpHandler on a real reactor (one end of
//     a socketpair adopted by the reactor), then half-closed; every byte the
//     server sends back is read until EOF or a reset, which must come
//     within a bound (a hung server fails); the reply must be empty or
//     begin with a well-formed status line, must never hold the contents
//     of the file outside the root, and the connection must be closed on
//     the server afterwards.
// A violated invariant calls __builtin_trap(), which libFuzzer reports as
// a crash with the input saved.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "baton/reactor.h"
#include "server/httpd/http_handler.h"
#include "server/httpd/http_util.h"

namespace {

using baton::http::ByteRange;
using baton::http::HttpConfig;
using baton::http::HttpHandler;
using baton::http::RangeResult;

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    __builtin_trap();
  }
}

struct World {
  ~World() {
    reactor.reset();  // stops and joins first: handlers use root_fd
    ::close(root_fd);
    std::error_code ignored;
    std::filesystem::remove_all(top, ignored);
  }
  std::string top;   // temporary directory holding root and secret
  std::string root;  // realpath of the document root
  int root_fd = -1;
  HttpConfig config;
  std::unique_ptr<baton::Reactor> reactor;
};

World* world = nullptr;

// Contents of the file outside the document root (reachable only through
// the symlinks under it, which the server must refuse to follow).
constexpr absl::string_view kSecret = "outside-secret-5b2e71d09c";

void WriteFile(const std::string& path, absl::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Require(fd >= 0, "create fixture file");
  Require(::write(fd, data.data(), data.size()) ==
              static_cast<ssize_t>(data.size()),
          "write fixture file");
  ::close(fd);
}

// A document root with a file, an index, a directory, a FIFO, and a
// symlink to a file outside it.
World* MakeWorld() {
  auto* w = new World;
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp == nullptr) tmp = std::getenv("TMPDIR");
  std::string base =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/baton_fuzz_XXXXXX";
  Require(::mkdtemp(base.data()) != nullptr, "mkdtemp");
  char real[PATH_MAX];
  Require(::realpath(base.c_str(), real) != nullptr, "realpath");
  w->top = real;
  const std::string& top = w->top;
  w->root = top + "/root";
  ::mkdir(w->root.c_str(), 0755);
  ::mkdir((w->root + "/dir").c_str(), 0755);
  ::mkdir((w->root + "/site").c_str(), 0755);
  WriteFile(w->root + "/hello.txt", "hello\n");
  WriteFile(w->root + "/dir/a b&<c>.html", "<p>x</p>");
  WriteFile(w->root + "/site/index.html", "<p>index</p>");
  WriteFile(top + "/secret", absl::StrCat(kSecret, "\n"));
  ::symlink((top + "/secret").c_str(), (w->root + "/escape").c_str());
  ::symlink("../secret", (w->root + "/dir/up").c_str());
  ::mkfifo((w->root + "/fifo").c_str(), 0644);
  w->root_fd = ::open(w->root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  Require(w->root_fd >= 0, "open root");

  baton::ReactorOptions options;
  options.threads = 1;
  options.linger_timeout = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<baton::Reactor>> reactor =
      baton::Reactor::Create(options);
  Require(reactor.ok(), "create reactor");
  w->reactor = std::move(*reactor);
  w->config.root_fd = w->root_fd;
  w->config.request_timeout = absl::Seconds(2);
  w->config.reactor = w->reactor.get();
  Require(w->reactor->Start().ok(), "start reactor");
  // Join the reactor before static destructors run.
  std::atexit([] {
    World* doomed = world;
    world = nullptr;
    delete doomed;
  });
  return w;
}

void CheckPureFunctions(absl::string_view input) {
  absl::StatusOr<std::string> path = baton::http::NormalizeTarget(input);
  if (path.ok()) {
    Require(!absl::StartsWith(*path, "/"), "normalised path is relative");
    Require(path->find('\0') == std::string::npos, "no NUL in path");
    Require(path->find('\\') == std::string::npos, "no backslash in path");
    for (absl::string_view segment : absl::StrSplit(*path, '/')) {
      Require(segment != "..", "no '..' segment survives");
    }
    const int fd = baton::http::OpenBeneath(world->root_fd, *path);
    if (fd >= 0) {
      char link[64];
      std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
      char target[PATH_MAX + 1] = {};
      const ssize_t n = ::readlink(link, target, PATH_MAX);
      ::close(fd);
      Require(n > 0, "readlink of an opened file");
      const absl::string_view opened(target, static_cast<size_t>(n));
      Require(
          opened == world->root || absl::StartsWith(opened, world->root + "/"),
          "OpenBeneath stays beneath the root");
    }
  }
  ByteRange range;
  if (baton::http::ParseRange(input, 1000, &range) ==
      RangeResult::kSatisfiable) {
    Require(range.first >= 0 && range.length >= 1 &&
                range.first + range.length <= 1000,
            "a satisfiable range lies inside the body");
  }
  (void)baton::http::ParseHttpDate(input);
}

// Bounds on one exchange. The server must keep taking bytes (or close) while
// the client sends, and must finish with EOF or a reset once the client has
// shut its side: a deadlocked reactor or a hung handler fails here instead
// of being taken for "no reply". Generous, for sanitizers on a loaded
// machine; well above request_timeout (2 s) and the linger timeout.
constexpr int kNoProgressLimitMs = 20000;
constexpr int kAfterShutdownLimitMs = 20000;

int64_t NowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Feeds `input` to a fresh connection and returns everything the server
// sent back before it closed. Traps unless the server ends the exchange
// with EOF or a reset within the bounds above, and unless the connection
// is gone from the reactor afterwards.
std::string Exchange(absl::string_view input) {
  int fds[2];
  Require(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
          "socketpair");
  const HttpConfig* config = &world->config;
  absl::StatusOr<baton::ConnectionId> id = world->reactor->Adopt(
      fds[0], [config] { return std::make_unique<HttpHandler>(config); });
  Require(id.ok(), "adopt");
  const int client = fds[1];
  ::fcntl(client, F_SETFL, O_NONBLOCK);
  // Chunk sizes come from the input: the same bytes split differently.
  const size_t step =
      input.empty() ? 1 : 1 + static_cast<uint8_t>(input[0]) % 97;
  size_t sent = 0;
  bool shut = false;
  bool ended = false;  // EOF or reset seen
  std::string got;
  int64_t last_progress = NowMs();
  int64_t shut_at = 0;
  while (!ended) {
    if (!shut && sent == input.size()) {
      ::shutdown(client, SHUT_WR);
      shut = true;
      shut_at = NowMs();
    }
    const int64_t now = NowMs();
    if (shut) {
      Require(now - shut_at < kAfterShutdownLimitMs,
              "the server ends the exchange (EOF or reset) after SHUT_WR");
    } else {
      Require(now - last_progress < kNoProgressLimitMs,
              "the server takes the request or closes");
    }
    pollfd p = {client, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & POLLOUT) {
      const size_t n = std::min(step, input.size() - sent);
      const ssize_t w = ::send(client, input.data() + sent, n, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
        last_progress = NowMs();
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        Require(errno == EPIPE || errno == ECONNRESET,
                "send fails only because the server closed");
        sent = input.size();  // the server closed: stop sending
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      const ssize_t r = ::recv(client, buf, sizeof(buf), 0);
      if (r > 0) {
        Require(got.size() < (64 << 20), "the reply is bounded");
        got.append(buf, static_cast<size_t>(r));
        last_progress = NowMs();
      } else if (r == 0) {
        ended = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        Require(errno == ECONNRESET, "receive fails only with a reset");
        ended = true;
      }
    }
  }
  ::close(client);
  // The reactor lets go of the connection too (the handler and its file
  // descriptors): wait, bounded, for the count to return to zero.
  const int64_t closed_by = NowMs() + kAfterShutdownLimitMs;
  while (world->reactor->connection_count() != 0) {
    Require(NowMs() < closed_by, "the connection is closed on the server");
    ::usleep(1000);
  }
  return got;
}

void CheckResponse(absl::string_view input, const std::string& response) {
  // The outside file never leaks, whatever the request (unless the client
  // itself sent its bytes and the server quoted them).
  Require(
      absl::string_view(response).find(kSecret) == absl::string_view::npos ||
          input.find(kSecret) != absl::string_view::npos,
      "the file outside the root never appears in a reply");
  // Empty is fine (e.g. nothing but a partial request, then EOF): Exchange
  // has already required that the server closed rather than hung.
  if (response.empty()) return;
  Require(absl::StartsWith(response, "HTTP/1.1 ") && response.size() >= 12 &&
              absl::ascii_isdigit(static_cast<unsigned char>(response[9])) &&
              absl::ascii_isdigit(static_cast<unsigned char>(response[10])) &&
              absl::ascii_isdigit(static_cast<unsigned char>(response[11])),
          "the reply starts with a status line");
  Require(response.find("\r\n\r\n") != std::string::npos,
          "the reply has a complete head");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (world == nullptr) world = MakeWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (world == nullptr) world = MakeWorld();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckPureFunctions(input);
  CheckResponse(input, Exchange(input));
  return 0;
}
