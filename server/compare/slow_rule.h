// Internal header (comparison servers): SlowRule, the service-time rule of
// the head-of-line benchmark, shared by every echo server that can apply it
// (baton_echo, Asio, reuseport, poll, select, thread per connection). The
// product //server:echo has no such rule.
//
// A client marks a message as slow by making its first byte the marker
// (`//client:bench --slow_connections=K` does, and puts the marker nowhere
// else, so each marker byte received is exactly one slow message whatever
// the segmentation). Before echoing what it read, a server calls Apply(),
// which blocks (sleep) or burns CPU (spin) for the configured time once per
// marker byte in the data. With delay 0 the rule is off and Apply() only
// returns 0.
//
// Thread rule: immutable after construction except for the counter; Apply()
// and slow_messages() are safe to call from any thread.
#ifndef BATON_SERVER_COMPARE_SLOW_RULE_H_
#define BATON_SERVER_COMPARE_SLOW_RULE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace baton {

class SlowRule {
 public:
  enum class Mode { kSleep, kSpin };

  // `delay_us` 0 turns the rule off.
  SlowRule(int64_t delay_us, Mode mode, unsigned char marker)
      : delay_ns_(delay_us * 1000), mode_(mode), marker_(marker) {}
  SlowRule(const SlowRule&) = delete;
  SlowRule& operator=(const SlowRule&) = delete;

  bool enabled() const { return delay_ns_ > 0; }
  unsigned char marker() const { return marker_; }

  // Delays once per marker byte in `data` (nothing when off); returns how
  // many slow messages that was.
  int Apply(absl::string_view data) const;

  // Slow messages delayed so far (all threads).
  uint64_t slow_messages() const {
    return slow_messages_.load(std::memory_order_relaxed);
  }

  // "slow rule: sleep 1000 us per message starting with byte 0xff" or
  // "slow rule: off", for the start-up log.
  std::string Describe() const;
  // "slow rule: N slow messages delayed", for the exit log.
  std::string Summary() const;

 private:
  void Delay() const;

  const int64_t delay_ns_;
  const Mode mode_;
  const unsigned char marker_;
  mutable std::atomic<uint64_t> slow_messages_{0};
};

}  // namespace baton

#endif  // BATON_SERVER_COMPARE_SLOW_RULE_H_
