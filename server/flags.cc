// Internal (servers): the common server flags, flag validators and signal
// helpers.
#include "server/flags.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <thread>

#include "baton/reactor_limits.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"

DEFINE_int32(port, 12345, "TCP port to listen on (0 picks a free port)");
DEFINE_string(address, "127.0.0.1", "IPv4 or IPv6 address to listen on");
DEFINE_int32(threads, 0,
             "worker threads (0: one per CPU); poll_echo, select_echo and "
             "thread_echo choose their own threading and ignore it");

namespace {

bool ValidateThreads(const char* flag, int32_t value) {
  return baton::cli::ValidateInRange(flag, value, 0, baton::kReactorMaxThreads,
                                     " (0: one per CPU)");
}

}  // namespace

DEFINE_validator(port, &baton::cli::ValidatePort<baton::cli::PortUse::kListen>);
DEFINE_validator(address, &baton::cli::ValidateAddressLiteral);
DEFINE_validator(threads, &ValidateThreads);

namespace baton::flags {

bool ValidateMaxEvents(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, 1, kReactorMaxEvents);
}

bool ValidateRounds(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, kReactorUnboundedRereads,
                              kReactorMaxRereadRounds, " (-1: no bound)");
}

bool ValidateReadBufferSize(const char* flag, int64_t value) {
  return cli::ValidateInRange(
      flag, value, static_cast<int64_t>(kReactorMinReadBufferSize),
      static_cast<int64_t>(kReactorMaxReadBufferSize), " bytes");
}

bool ValidateDeferSeconds(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, 0, 60, " seconds");
}

int ThreadCount() {
  if (FLAGS_threads > 0) return FLAGS_threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool InitServer(int* argc, char*** argv, const char* usage) {
  gflags::SetUsageMessage(usage);
  FLAGS_logtostderr = true;
  cli::ParseFlags(argc, argv);
  google::InitGoogleLogging((*argv)[0]);
  if (*argc > 1) {
    LOG(ERROR) << "unexpected argument '" << (*argv)[1] << "' (see --help)";
    return false;
  }
  return true;
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
