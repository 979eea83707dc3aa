// Internal (comparison servers): SlowRule.
#include "server/compare/slow_rule.h"

#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "lib/net/clock.h"

namespace baton {

int SlowRule::Apply(absl::string_view data) const {
  if (delay_ns_ <= 0) return 0;
  int n = 0;
  const char* p = data.data();
  const char* const end = data.data() + data.size();
  while (p < end) {
    p = static_cast<const char*>(std::memchr(p, marker_, end - p));
    if (p == nullptr) break;
    ++p;
    ++n;
    Delay();
  }
  if (n > 0) slow_messages_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void SlowRule::Delay() const {
  const int64_t deadline = net::MonotonicNanos() + delay_ns_;
  if (mode_ == Mode::kSpin) {
    // Burns CPU like a handler that computes; the thread stays runnable.
    while (net::MonotonicNanos() < deadline) {
    }
    return;
  }
  // Blocks like a handler that waits on a disk or a lock: the thread sleeps.
  timespec ts = {static_cast<time_t>(deadline / 1000000000),
                 static_cast<long>(deadline % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) ==
         EINTR) {
  }
}

std::string SlowRule::Describe() const {
  if (!enabled()) return "slow rule: off";
  return absl::StrFormat(
      "slow rule: %s %d us per message starting with byte "
      "0x%02x",
      mode_ == Mode::kSpin ? "spin" : "sleep", delay_ns_ / 1000, marker_);
}

std::string SlowRule::Summary() const {
  return absl::StrFormat("slow rule: %d slow messages delayed",
                         slow_messages());
}

}  // namespace baton
