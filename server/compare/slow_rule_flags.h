// Internal header (comparison servers): the --slow_us, --slow_mode and
// --slow_byte flags of the benchmark's echo servers, and the SlowRule they
// describe (server/compare/slow_rule.h).
#ifndef BATON_SERVER_COMPARE_SLOW_RULE_FLAGS_H_
#define BATON_SERVER_COMPARE_SLOW_RULE_FLAGS_H_

#include "server/compare/slow_rule.h"

namespace baton {

// The process's rule, built from the flags on first call (after flag
// parsing); lives until exit. Safe to call from any thread.
const SlowRule& SlowRuleFromFlags();

// SlowRuleFromFlags() if --slow_us turned it on (logging its description
// once), else null: what a server hands its handlers.
const SlowRule* ActiveSlowRule();

// Appended to the servers' usage messages.
inline constexpr char kSlowRuleUsage[] =
    "head-of-line benchmark: --slow_us=1000 --slow_mode=sleep|spin delays "
    "messages starting with --slow_byte";

}  // namespace baton

#endif  // BATON_SERVER_COMPARE_SLOW_RULE_FLAGS_H_
