// Test tool: an LD_PRELOAD shim that makes the socket calls baton uses fail
// with EINTR or EAGAIN, or move fewer bytes than asked, at a chosen rate.
//
// Environment (read once, when the shim is loaded):
//   BATON_FAULT_RATE   probability that an eligible call is faulted, 0..1
//                      (default 0: the shim only counts)
//   BATON_FAULT_SEED   PRNG seed (default 1); each thread mixes in its tid
//   BATON_FAULT_CALLS  comma list of calls to fault (default: all of
//                      read,readv,recv,write,writev,send,sendmsg,sendfile,
//                      accept4,epoll_ctl)
//   BATON_FAULT_KINDS  comma list of eintr,eagain,short (default: all)
//
// What a fault is:
//   eintr   the call fails with EINTR and does nothing;
//   eagain  the call fails with EAGAIN and does nothing, only where the
//           caller can legally see it (a non-blocking descriptor, or
//           MSG_DONTWAIT);
//   short   the real call runs with a smaller length (1 .. n-1 bytes), so
//           the bytes that do move are real and the caller must resume.
// Only sockets are faulted: eventfd, timerfd, pipe, epoll and file
// descriptors pass through (a short read of an eventfd is EINVAL, not a
// legal outcome). The socket and O_NONBLOCK checks cost a syscall each but
// run only once a fault has been drawn, so unfaulted calls pay one PRNG
// step and two relaxed counter increments.
// epoll_ctl gets EINTR only, whatever its target. The kernel returns EINTR
// from epoll_ctl only for a fatal signal (its mutex waits are killable), so
// this is stricter than reality; a caller that retries loses nothing.
//
// At exit one line goes to stderr, for tests to check that faults were
// really injected:
//   baton_fault: injected N faults in M calls (rate R, seed S; eintr A,
//   eagain B, short C; read x/y, send x/y, ...)
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

enum Call {
  kRead,
  kReadv,
  kRecv,
  kWrite,
  kWritev,
  kSend,
  kSendmsg,
  kSendfile,
  kAccept4,
  kEpollCtl,
  kNumCalls
};
constexpr const char* kCallNames[kNumCalls] = {
    "read", "readv",   "recv",     "write",   "writev",
    "send", "sendmsg", "sendfile", "accept4", "epoll_ctl"};

enum class Fault { kNone, kEintr, kEagain, kShort };
constexpr int kNumKinds = 3;
constexpr const char* kKindNames[kNumKinds] = {"eintr", "eagain", "short"};

// When an EAGAIN may be injected.
enum class Block {
  kNever,          // the call cannot return EAGAIN (epoll_ctl)
  kIfNonBlocking,  // only on an O_NONBLOCK descriptor
  kAlways,         // the caller asked for MSG_DONTWAIT
};

// Written once by Init() before main() (and before any thread exists), read
// only afterwards.
struct Config {
  double rate = 0;
  uint64_t seed = 1;
  bool call_on[kNumCalls] = {};
  bool kind_on[kNumKinds] = {};
};
Config g_config;

std::atomic<uint64_t> g_calls[kNumCalls];
std::atomic<uint64_t> g_injected[kNumCalls];
std::atomic<uint64_t> g_kinds[kNumKinds];

[[noreturn]] void Die(const char* what) {
  const char prefix[] = "baton_fault: ";
  (void)!syscall(SYS_write, 2, prefix, sizeof(prefix) - 1);
  (void)!syscall(SYS_write, 2, what, std::strlen(what));
  (void)!syscall(SYS_write, 2, "\n", 1);
  std::abort();
}

// The libc definition this shim hides, found on first use.
template <typename Fn>
Fn* Next(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) Die(name);
  return reinterpret_cast<Fn*>(fn);
}
#define BATON_REAL(name)                                     \
  ([] {                                                      \
    static auto* const real = Next<decltype(::name)>(#name); \
    return real;                                             \
  }())

// Sets one flag per name in `list` (comma separated); unknown names abort so
// that a typo cannot silently turn a test into a no-op.
void ParseList(const char* list, const char* const* names, int count,
               bool* on) {
  if (list == nullptr || *list == '\0') {
    std::fill(on, on + count, true);
    return;
  }
  const char* p = list;
  while (*p != '\0') {
    const char* end = std::strchr(p, ',');
    const size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
    bool found = false;
    for (int i = 0; i < count; ++i) {
      if (std::strlen(names[i]) == len && std::strncmp(names[i], p, len) == 0) {
        on[i] = true;
        found = true;
      }
    }
    if (!found && len > 0) Die("unknown name in BATON_FAULT_CALLS/KINDS");
    p += len;
    if (*p == ',') ++p;
  }
}

__attribute__((constructor)) void Init() {
  Config c;
  if (const char* rate = std::getenv("BATON_FAULT_RATE")) {
    char* end = nullptr;
    c.rate = std::strtod(rate, &end);
    if (end == rate || *end != '\0' || !(c.rate >= 0 && c.rate <= 1)) {
      Die("BATON_FAULT_RATE must be a number in 0..1");
    }
  }
  if (const char* seed = std::getenv("BATON_FAULT_SEED")) {
    c.seed = std::strtoull(seed, nullptr, 0);
  }
  ParseList(std::getenv("BATON_FAULT_CALLS"), kCallNames, kNumCalls, c.call_on);
  ParseList(std::getenv("BATON_FAULT_KINDS"), kKindNames, kNumKinds, c.kind_on);
  g_config = c;
}

__attribute__((destructor)) void Report() {
  uint64_t calls = 0;
  uint64_t injected = 0;
  for (int i = 0; i < kNumCalls; ++i) {
    calls += g_calls[i].load(std::memory_order_relaxed);
    injected += g_injected[i].load(std::memory_order_relaxed);
  }
  char line[1024];
  int len = std::snprintf(
      line, sizeof(line),
      "baton_fault: injected %llu faults in %llu calls (rate %g, seed %llu; "
      "eintr %llu, eagain %llu, short %llu",
      static_cast<unsigned long long>(injected),
      static_cast<unsigned long long>(calls), g_config.rate,
      static_cast<unsigned long long>(g_config.seed),
      static_cast<unsigned long long>(g_kinds[0].load()),
      static_cast<unsigned long long>(g_kinds[1].load()),
      static_cast<unsigned long long>(g_kinds[2].load()));
  const char* sep = "; ";
  for (int i = 0;
       i < kNumCalls && len > 0 && static_cast<size_t>(len) < sizeof(line);
       ++i) {
    const uint64_t n = g_calls[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    len += std::snprintf(line + len, sizeof(line) - len, "%s%s %llu/%llu", sep,
                         kCallNames[i],
                         static_cast<unsigned long long>(g_injected[i].load()),
                         static_cast<unsigned long long>(n));
    sep = ", ";
  }
  if (len < 0) return;
  len = std::min<int>(len, sizeof(line) - 3);
  line[len++] = ')';
  line[len++] = '\n';
  (void)!syscall(SYS_write, 2, line, static_cast<size_t>(len));
}

// xorshift64*, one state per thread: no sharing, no locks.
uint64_t NextRandom() {
  thread_local uint64_t state = 0;
  if (state == 0) {
    // splitmix64 of seed ^ tid, so threads draw different sequences.
    uint64_t z = g_config.seed ^ (static_cast<uint64_t>(syscall(SYS_gettid)) *
                                  0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    state = (z ^ (z >> 31)) | 1;
  }
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

bool IsSocket(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool IsNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

// Decides whether this call on `fd` (asking to move `count` bytes; 0 when
// the call moves none) is faulted, and how.
Fault Draw(Call call, int fd, Block block, size_t count) {
  g_calls[call].fetch_add(1, std::memory_order_relaxed);
  const Config& c = g_config;
  if (!c.call_on[call] || c.rate <= 0) return Fault::kNone;
  const double unit =
      static_cast<double>(NextRandom() >> 11) * (1.0 / 9007199254740992.0);
  if (unit >= c.rate) return Fault::kNone;
  if (call != kEpollCtl && !IsSocket(fd)) return Fault::kNone;
  Fault options[kNumKinds];
  int n = 0;
  if (c.kind_on[0]) options[n++] = Fault::kEintr;
  if (c.kind_on[1] && (block == Block::kAlways ||
                       (block == Block::kIfNonBlocking && IsNonBlocking(fd)))) {
    options[n++] = Fault::kEagain;
  }
  if (c.kind_on[2] && count >= 2) options[n++] = Fault::kShort;
  if (n == 0) return Fault::kNone;
  const Fault fault = options[NextRandom() % static_cast<uint64_t>(n)];
  g_injected[call].fetch_add(1, std::memory_order_relaxed);
  g_kinds[static_cast<int>(fault) - 1].fetch_add(1, std::memory_order_relaxed);
  return fault;
}

// A length in 1..count-1: half the time tiny (at most 16 bytes), which is
// the hardest case for resumption logic, otherwise anywhere.
size_t ShortLength(size_t count) {
  const uint64_t r = NextRandom();
  const size_t span = (r & 1) ? std::min<size_t>(count - 1, 16) : count - 1;
  return 1 + static_cast<size_t>((r >> 1) % span);
}

// Runs `op(length)` unless a fault is drawn; a short fault passes a smaller
// length.
template <typename Op>
auto Inject(Call call, int fd, Block block, size_t count, Op op)
    -> decltype(op(count)) {
  switch (Draw(call, fd, block, count)) {
    case Fault::kEintr:
      errno = EINTR;
      return -1;
    case Fault::kEagain:
      errno = EAGAIN;
      return -1;
    case Fault::kShort:
      return op(ShortLength(count));
    case Fault::kNone:
      break;
  }
  return op(count);
}

Block BlockFor(int flags) {
  return (flags & MSG_DONTWAIT) ? Block::kAlways : Block::kIfNonBlocking;
}

size_t TotalLength(const iovec* iov, int iovcnt) {
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  return total;
}

// Copies the first `limit` bytes' worth of `iov` into `out` (room for
// kMaxShortIov entries); returns the entry count. The result may describe
// fewer than `limit` bytes when the vector is longer than that: still a
// legal short count.
constexpr int kMaxShortIov = 64;
int Truncate(const iovec* iov, int iovcnt, size_t limit, iovec* out) {
  int n = 0;
  for (int i = 0; i < iovcnt && n < kMaxShortIov && limit > 0; ++i) {
    out[n] = iov[i];
    out[n].iov_len = std::min(out[n].iov_len, limit);
    limit -= out[n].iov_len;
    ++n;
  }
  return n;
}

// readv or writev through `real`, faulted as `call`.
ssize_t VectorCall(Call call, ssize_t (*real)(int, const iovec*, int), int fd,
                   const iovec* iov, int iovcnt) {
  const size_t total = TotalLength(iov, iovcnt);
  return Inject(call, fd, Block::kIfNonBlocking, total, [&](size_t n) {
    if (n == total) return real(fd, iov, iovcnt);
    iovec cut[kMaxShortIov];
    return real(fd, cut, Truncate(iov, iovcnt, n, cut));
  });
}

}  // namespace

extern "C" {

ssize_t read(int fd, void* buf, size_t count) {
  return Inject(kRead, fd, Block::kIfNonBlocking, count,
                [&](size_t n) { return BATON_REAL(read)(fd, buf, n); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  return Inject(kRecv, fd, BlockFor(flags), len,
                [&](size_t n) { return BATON_REAL(recv)(fd, buf, n, flags); });
}

ssize_t readv(int fd, const iovec* iov, int iovcnt) {
  return VectorCall(kReadv, BATON_REAL(readv), fd, iov, iovcnt);
}

ssize_t write(int fd, const void* buf, size_t count) {
  return Inject(kWrite, fd, Block::kIfNonBlocking, count,
                [&](size_t n) { return BATON_REAL(write)(fd, buf, n); });
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  return Inject(kSend, fd, BlockFor(flags), len,
                [&](size_t n) { return BATON_REAL(send)(fd, buf, n, flags); });
}

ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  return VectorCall(kWritev, BATON_REAL(writev), fd, iov, iovcnt);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  const size_t total =
      TotalLength(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  return Inject(kSendmsg, fd, BlockFor(flags), total, [&](size_t n) {
    if (n == total) return BATON_REAL(sendmsg)(fd, msg, flags);
    iovec cut[kMaxShortIov];
    msghdr shorter = *msg;
    shorter.msg_iov = cut;
    shorter.msg_iovlen = static_cast<size_t>(
        Truncate(msg->msg_iov, static_cast<int>(msg->msg_iovlen), n, cut));
    return BATON_REAL(sendmsg)(fd, &shorter, flags);
  });
}

// On 64-bit glibc sendfile64 is another name for sendfile; both are
// interposed so either spelling is faulted.
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  return Inject(kSendfile, out_fd, Block::kIfNonBlocking, count, [&](size_t n) {
    return BATON_REAL(sendfile)(out_fd, in_fd, offset, n);
  });
}

ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset,
                   size_t count) noexcept {
  return Inject(kSendfile, out_fd, Block::kIfNonBlocking, count, [&](size_t n) {
    return BATON_REAL(sendfile64)(out_fd, in_fd, offset, n);
  });
}

int accept4(int fd, sockaddr* addr, socklen_t* addrlen, int flags) {
  return Inject(kAccept4, fd, Block::kIfNonBlocking, 0, [&](size_t) {
    return BATON_REAL(accept4)(fd, addr, addrlen, flags);
  });
}

int epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  return Inject(kEpollCtl, fd, Block::kNever, 0, [&](size_t) {
    return BATON_REAL(epoll_ctl)(epfd, op, fd, event);
  });
}

}  // extern "C"
