// Internal (servers): flag validators and signal helpers.
#include "server/flags.h"

#include <arpa/inet.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cerrno>
#include <cstdio>

namespace baton::flags {

bool ValidatePort(const char* flag, int32_t value) {
  if (value >= 0 && value <= 65535) return true;
  std::fprintf(stderr, "--%s=%d: a port must be in 0..65535 (0 = any free)\n",
               flag, value);
  return false;
}

bool ValidateAddress(const char* flag, const std::string& value) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, value.c_str(), buf) == 1 ||
      inet_pton(AF_INET6, value.c_str(), buf) == 1) {
    return true;
  }
  std::fprintf(stderr,
               "--%s=%s: not an IPv4 or IPv6 address literal "
               "(e.g. 127.0.0.1, ::1, 0.0.0.0)\n",
               flag, value.c_str());
  return false;
}

bool ValidateThreads(const char* flag, int32_t value) {
  if (value >= 0 && value <= 1024) return true;
  std::fprintf(stderr, "--%s=%d: must be in 0..1024 (0 = one per CPU)\n", flag,
               value);
  return false;
}

bool ValidateMaxEvents(const char* flag, int32_t value) {
  if (value >= 1 && value <= 4096) return true;
  std::fprintf(stderr, "--%s=%d: must be in 1..4096\n", flag, value);
  return false;
}

bool ValidateRounds(const char* flag, int32_t value) {
  if (value >= 0 && value <= 64) return true;
  std::fprintf(stderr, "--%s=%d: must be in 0..64\n", flag, value);
  return false;
}

bool ValidateDeferSeconds(const char* flag, int32_t value) {
  if (value >= 0 && value <= 60) return true;
  std::fprintf(stderr, "--%s=%d: must be in 0..60 seconds\n", flag, value);
  return false;
}

bool ValidateNonNegative(const char* flag, int64_t value) {
  if (value >= 0) return true;
  std::fprintf(stderr, "--%s=%lld: must not be negative\n", flag,
               static_cast<long long>(value));
  return false;
}

bool ValidatePositive(const char* flag, int64_t value) {
  if (value > 0) return true;
  std::fprintf(stderr, "--%s=%lld: must be positive\n", flag,
               static_cast<long long>(value));
  return false;
}

bool InitServer(int* argc, char*** argv, const char* usage) {
  gflags::SetUsageMessage(usage);
  FLAGS_logtostderr = true;
  gflags::ParseCommandLineFlags(argc, argv, true);
  google::InitGoogleLogging((*argv)[0]);
  if (*argc > 1) {
    LOG(ERROR) << "unexpected argument '" << (*argv)[1] << "' (see --help)";
    return false;
  }
  return true;
}

std::string JoinHostPort(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

sigset_t BlockStopSignals() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForSignalFor(const sigset_t& signals, absl::Duration timeout) {
  const timespec ts = absl::ToTimespec(timeout);
  for (;;) {
    const int signal = sigtimedwait(&signals, nullptr, &ts);
    if (signal > 0) return signal;
    if (errno != EINTR) return 0;  // EAGAIN: timed out
  }
}

int WaitForSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

}  // namespace baton::flags
