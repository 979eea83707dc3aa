// Unit tests of the fault shim itself: it is dlopen()ed (not preloaded) and
// its interposers are called through dlsym, so each test can load it with
// its own environment. Checks that short counts move real bytes, that only
// sockets are faulted, that EAGAIN appears only where a caller can see it,
// that epoll_ctl only gets EINTR, and the exit summary.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <regex>
#include <string>

#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;

// The shim loaded with the given environment, unloaded (printing its
// summary) on destruction.
class Shim {
 public:
  Shim(const char* rate, const char* kinds, const char* calls = "") {
    ::setenv("BATON_FAULT_RATE", rate, 1);
    ::setenv("BATON_FAULT_KINDS", kinds, 1);
    ::setenv("BATON_FAULT_CALLS", calls, 1);
    handle_ = ::dlopen(RunfilePath("tests/fault/libbaton_fault.so").c_str(),
                       RTLD_NOW | RTLD_LOCAL);
    ::unsetenv("BATON_FAULT_RATE");
    ::unsetenv("BATON_FAULT_KINDS");
    ::unsetenv("BATON_FAULT_CALLS");
  }
  ~Shim() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  Shim(const Shim&) = delete;
  Shim& operator=(const Shim&) = delete;

  bool loaded() const { return handle_ != nullptr; }

  // The shim's definition of `name`, typed like libc's.
  template <typename Fn>
  Fn* Get(const char* name) {
    return reinterpret_cast<Fn*>(::dlsym(handle_, name));
  }

 private:
  void* handle_ = nullptr;
};

// A connected AF_UNIX stream pair, closed on destruction.
struct SocketPair {
  explicit SocketPair(int type_flags = 0) {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | type_flags, 0, fd), 0);
  }
  ~SocketPair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  int fd[2] = {-1, -1};
};

std::string ReadAvailable(int fd) {
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(FaultShimTest, ShortWritesSendARealPrefix) {
  Shim shim("1", "short");
  ASSERT_TRUE(shim.loaded()) << ::dlerror();
  auto* write_fn = shim.Get<decltype(::write)>("write");
  auto* writev_fn = shim.Get<decltype(::writev)>("writev");
  auto* sendmsg_fn = shim.Get<decltype(::sendmsg)>("sendmsg");
  SocketPair p;
  const std::string data = Pattern(300, 1);
  for (int i = 0; i < 50; ++i) {
    const ssize_t n = write_fn(p.fd[0], data.data(), data.size());
    ASSERT_GE(n, 1);
    ASSERT_LT(n, 300);
    EXPECT_EQ(ReadAvailable(p.fd[1]), data.substr(0, n));

    iovec iov[3] = {{const_cast<char*>(data.data()), 100},
                    {const_cast<char*>(data.data()) + 100, 100},
                    {const_cast<char*>(data.data()) + 200, 100}};
    const ssize_t v = writev_fn(p.fd[0], iov, 3);
    ASSERT_GE(v, 1);
    ASSERT_LT(v, 300);
    EXPECT_EQ(ReadAvailable(p.fd[1]), data.substr(0, v));

    msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = 3;
    const ssize_t m = sendmsg_fn(p.fd[0], &msg, MSG_NOSIGNAL);
    ASSERT_GE(m, 1);
    ASSERT_LT(m, 300);
    EXPECT_EQ(ReadAvailable(p.fd[1]), data.substr(0, m));
  }
}

TEST(FaultShimTest, ShortReadsLeaveTheRestQueued) {
  Shim shim("1", "short");
  ASSERT_TRUE(shim.loaded()) << ::dlerror();
  auto* read_fn = shim.Get<decltype(::read)>("read");
  auto* readv_fn = shim.Get<decltype(::readv)>("readv");
  auto* recv_fn = shim.Get<decltype(::recv)>("recv");
  SocketPair p;
  const std::string data = Pattern(3000, 2);
  ASSERT_EQ(::write(p.fd[0], data.data(), data.size()), 3000);
  std::string got;
  char buf[200];
  // Each call moves 1..199 bytes; 300 calls are more than enough.
  for (int i = 0; i < 300 && got.size() < data.size(); ++i) {
    ssize_t n;
    if (i % 3 == 0) {
      n = read_fn(p.fd[1], buf, sizeof(buf));
    } else if (i % 3 == 1) {
      n = recv_fn(p.fd[1], buf, sizeof(buf), 0);
    } else {
      iovec iov[2] = {{buf, 50}, {buf + 50, 150}};
      n = readv_fn(p.fd[1], iov, 2);
    }
    ASSERT_GE(n, 1);
    ASSERT_LT(n, 200);
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, data);
}

TEST(FaultShimTest, OnlySocketsAreFaulted) {
  Shim shim("1", "eintr,eagain,short");
  ASSERT_TRUE(shim.loaded()) << ::dlerror();
  auto* read_fn = shim.Get<decltype(::read)>("read");
  auto* write_fn = shim.Get<decltype(::write)>("write");
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_NONBLOCK), 0);
  EXPECT_EQ(write_fn(pipe_fds[1], "abcdef", 6), 6);
  char buf[6];
  EXPECT_EQ(read_fn(pipe_fds[0], buf, 6), 6);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  const int efd = ::eventfd(0, EFD_NONBLOCK);
  const uint64_t one = 1;
  uint64_t count = 0;
  EXPECT_EQ(write_fn(efd, &one, sizeof(one)), 8);
  EXPECT_EQ(read_fn(efd, &count, sizeof(count)), 8);
  EXPECT_EQ(count, 1u);
  ::close(efd);
}

TEST(FaultShimTest, EagainOnlyWhereTheCallerCanSeeIt) {
  Shim shim("1", "eagain");
  ASSERT_TRUE(shim.loaded()) << ::dlerror();
  auto* send_fn = shim.Get<decltype(::send)>("send");
  SocketPair blocking;
  // A blocking send without MSG_DONTWAIT cannot return EAGAIN: untouched.
  EXPECT_EQ(send_fn(blocking.fd[0], "x", 1, MSG_NOSIGNAL), 1);
  errno = 0;
  EXPECT_EQ(send_fn(blocking.fd[0], "x", 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  SocketPair non_blocking(SOCK_NONBLOCK);
  errno = 0;
  EXPECT_EQ(send_fn(non_blocking.fd[0], "x", 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(FaultShimTest, EpollCtlOnlyGetsEintr) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  SocketPair p;
  epoll_event ev = {};
  ev.events = EPOLLIN;
  {
    Shim shim("1", "eagain,short");
    ASSERT_TRUE(shim.loaded()) << ::dlerror();
    auto* ctl = shim.Get<decltype(::epoll_ctl)>("epoll_ctl");
    EXPECT_EQ(ctl(ep, EPOLL_CTL_ADD, p.fd[0], &ev), 0);
  }
  {
    Shim shim("1", "eintr");
    ASSERT_TRUE(shim.loaded()) << ::dlerror();
    auto* ctl = shim.Get<decltype(::epoll_ctl)>("epoll_ctl");
    errno = 0;
    EXPECT_EQ(ctl(ep, EPOLL_CTL_MOD, p.fd[0], &ev), -1);
    EXPECT_EQ(errno, EINTR);
  }
  ::close(ep);
}

TEST(FaultShimTest, CallsListLimitsFaultsAndSummaryCountsThem) {
  const std::string log = ::testing::TempDir() + "/fault_shim_summary.txt";
  const int saved_stderr = ::dup(STDERR_FILENO);
  {
    Shim shim("0.5", "eintr", "send");
    ASSERT_TRUE(shim.loaded()) << ::dlerror();
    auto* send_fn = shim.Get<decltype(::send)>("send");
    auto* recv_fn = shim.Get<decltype(::recv)>("recv");
    SocketPair p;
    char c;
    int failed_sends = 0;
    for (int i = 0; i < 1000; ++i) {
      if (send_fn(p.fd[0], "x", 1, MSG_NOSIGNAL) < 0) {
        EXPECT_EQ(errno, EINTR);
        ++failed_sends;
        continue;
      }
      EXPECT_EQ(recv_fn(p.fd[1], &c, 1, 0), 1);  // recv is not in the list
    }
    EXPECT_GT(failed_sends, 350);
    EXPECT_LT(failed_sends, 650);
    // The summary is printed when the shim is unloaded: catch it.
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(out, 0);
    ::dup2(out, STDERR_FILENO);
    ::close(out);
  }
  ::dup2(saved_stderr, STDERR_FILENO);
  ::close(saved_stderr);
  char buf[1024] = {};
  const int in = ::open(log.c_str(), O_RDONLY);
  ASSERT_GE(in, 0);
  ASSERT_GT(::read(in, buf, sizeof(buf) - 1), 0);
  ::close(in);
  std::cmatch m;
  ASSERT_TRUE(std::regex_search(
      buf, m,
      std::regex("baton_fault: injected ([0-9]+) faults in ([0-9]+) calls "
                 "\\(rate 0.5, seed 1; eintr ([0-9]+), eagain 0, short 0; "
                 "recv 0/([0-9]+), send ([0-9]+)/1000\\)\n")))
      << buf;
  EXPECT_EQ(m[1], m[3]);
  EXPECT_EQ(m[1], m[5]);
}

TEST(FaultShimTest, UnknownNamesAbort) {
  EXPECT_DEATH(Shim("0.1", "eintr", "recvmmsg"), "unknown name");
  EXPECT_DEATH(Shim("2", "eintr"), "BATON_FAULT_RATE");
}

}  // namespace
}  // namespace baton
