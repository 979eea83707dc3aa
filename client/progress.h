// Client library header: ProgressPrinter, periodic "progress: ..." lines on
// stderr for runs that take longer than a couple of seconds.
#ifndef BATON_CLIENT_PROGRESS_H_
#define BATON_CLIENT_PROGRESS_H_

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace baton::client {

// Runs its own thread from construction to destruction. Every `period`,
// starting at `first` (so short runs print nothing), it calls `line` with the
// seconds elapsed and prints "progress: <s>s, <line>" on `out` unless `line`
// returned an empty string. `line` is only ever called from that thread, so
// it may keep state (the previous count, for a rate) in its captures; what
// it reads from the workers must be atomic.
class ProgressPrinter {
 public:
  using LineFn = std::function<std::string(double seconds)>;

  explicit ProgressPrinter(
      LineFn line, FILE* out = stderr,
      std::chrono::milliseconds first = std::chrono::seconds(2),
      std::chrono::milliseconds period = std::chrono::seconds(1));
  ~ProgressPrinter();  // stops and joins; prints nothing more
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  int lines_printed() const;  // for tests

 private:
  void Loop(LineFn line, FILE* out, std::chrono::milliseconds first,
            std::chrono::milliseconds period);

  // std::mutex rather than absl::Mutex: ThreadSanitizer sees std's (Debian's
  // libabsl is not instrumented).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  int lines_ = 0;      // guarded by mu_
  std::thread thread_;
};

}  // namespace baton::client

#endif  // BATON_CLIENT_PROGRESS_H_
