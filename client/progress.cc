// Client library: ProgressPrinter.
#include "client/progress.h"

namespace baton::client {

ProgressPrinter::ProgressPrinter(LineFn line, FILE* out,
                                 std::chrono::milliseconds first,
                                 std::chrono::milliseconds period)
    : thread_(&ProgressPrinter::Loop, this, std::move(line), out, first,
              period) {}

ProgressPrinter::~ProgressPrinter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int ProgressPrinter::lines_printed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void ProgressPrinter::Loop(LineFn line, FILE* out,
                           std::chrono::milliseconds first,
                           std::chrono::milliseconds period) {
  const auto start = std::chrono::steady_clock::now();
  auto next = start + first;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_until(lock, next, [this] { return done_; })) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    // The callback reads only atomics; no need to hold the lock for it.
    lock.unlock();
    const std::string text = line(seconds);
    if (!text.empty()) {
      std::fprintf(out, "progress: %.0fs, %s\n", seconds, text.c_str());
      std::fflush(out);
    }
    lock.lock();
    if (!text.empty()) ++lines_;
    next += period;
  }
}

}  // namespace baton::client
