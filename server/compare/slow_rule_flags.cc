// Internal (comparison servers): the slow-rule flags.
#include "server/compare/slow_rule_flags.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>
#include <string>

#include "lib/cli/validators.h"

DEFINE_int64(slow_us, 0,
             "benchmark service time: delay each message whose first byte is "
             "--slow_byte by this many microseconds before echoing it (0: "
             "off; at most 10000000). `bench --slow_connections=K` sends "
             "such messages");
DEFINE_string(slow_mode, "sleep",
              "how a slow message is delayed: sleep (the handler blocks, like "
              "waiting on a disk) or spin (it computes, using the CPU)");
DEFINE_int32(slow_byte, 255,
             "marker byte (0..255) of slow messages; must match the bench's "
             "--slow_byte");

namespace {

bool ValidateSlowUs(const char* flag, int64_t value) {
  return baton::cli::ValidateInRange(flag, value, 0, 10000000,
                                     " microseconds (0: off)");
}

bool ValidateSlowMode(const char* flag, const std::string& value) {
  if (value == "sleep" || value == "spin") return true;
  std::fprintf(stderr, "--%s=%s: must be sleep or spin\n", flag, value.c_str());
  return false;
}

}  // namespace

DEFINE_validator(slow_us, &ValidateSlowUs);
DEFINE_validator(slow_mode, &ValidateSlowMode);
DEFINE_validator(slow_byte, &baton::cli::ValidateByte);

namespace baton {

const SlowRule& SlowRuleFromFlags() {
  static const SlowRule* const rule =
      new SlowRule(FLAGS_slow_us,
                   FLAGS_slow_mode == "spin" ? SlowRule::Mode::kSpin
                                             : SlowRule::Mode::kSleep,
                   static_cast<unsigned char>(FLAGS_slow_byte));
  return *rule;
}

const SlowRule* ActiveSlowRule() {
  static const SlowRule* const active = [] {
    const SlowRule& rule = SlowRuleFromFlags();
    if (!rule.enabled()) return static_cast<const SlowRule*>(nullptr);
    LOG(INFO) << rule.Describe();
    return &rule;
  }();
  return active;
}

}  // namespace baton
