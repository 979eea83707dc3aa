// Internal header (servers): flag validators and signal helpers shared by the
// baton servers' main()s.
#ifndef BATON_SERVER_FLAGS_H_
#define BATON_SERVER_FLAGS_H_

#include <signal.h>

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace baton::flags {

// gflags validators: each prints a clear message on failure (gflags then
// exits with an error).
bool ValidatePort(const char* flag, int32_t value);
bool ValidateAddress(const char* flag, const std::string& value);
bool ValidateThreads(const char* flag, int32_t value);
bool ValidateMaxEvents(const char* flag, int32_t value);
bool ValidateRounds(const char* flag, int32_t value);
bool ValidateDeferSeconds(const char* flag, int32_t value);
bool ValidateNonNegative(const char* flag, int64_t value);
bool ValidatePositive(const char* flag, int64_t value);

// Parses flags (logging to stderr by default) and starts glog. Returns false
// after logging why if positional arguments are left over.
bool InitServer(int* argc, char*** argv, const char* usage);

// "ADDR:PORT", or "[ADDR]:PORT" for IPv6.
std::string JoinHostPort(const std::string& address, int port);

// Blocks SIGINT and SIGTERM in the calling thread (and threads it creates
// later) and ignores SIGPIPE. Returns the blocked set for WaitForSignal.
sigset_t BlockStopSignals();

// Waits for one of `signals`; returns its number.
int WaitForSignal(const sigset_t& signals);
// Like WaitForSignal, but gives up after `timeout` and returns 0.
int WaitForSignalFor(const sigset_t& signals, absl::Duration timeout);

}  // namespace baton::flags

#endif  // BATON_SERVER_FLAGS_H_
