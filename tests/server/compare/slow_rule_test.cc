// Unit tests of SlowRule (server/compare/slow_rule.h): it delays once per
// marker byte and never for anything else. Counts only; no timing assertions.
#include "server/compare/slow_rule.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace baton {
namespace {

TEST(SlowRuleTest, OffRuleNeverCounts) {
  SlowRule rule(0, SlowRule::Mode::kSleep, 0xff);
  EXPECT_FALSE(rule.enabled());
  EXPECT_EQ(rule.Apply(std::string(10, '\xff')), 0);
  EXPECT_EQ(rule.slow_messages(), 0u);
  EXPECT_EQ(rule.Describe(), "slow rule: off");
}

TEST(SlowRuleTest, CountsEachMarkerByteOnlyInBothModes) {
  for (SlowRule::Mode mode : {SlowRule::Mode::kSleep, SlowRule::Mode::kSpin}) {
    SlowRule rule(1, mode, 0x7e);
    EXPECT_TRUE(rule.enabled());
    EXPECT_EQ(rule.Apply(""), 0);
    EXPECT_EQ(rule.Apply("no marker here"), 0);
    EXPECT_EQ(rule.Apply("~first"), 1);  // a message that starts with it
    EXPECT_EQ(rule.Apply("~one~two~three"), 3);  // coalesced messages
    EXPECT_EQ(rule.Apply(std::string("\x7f\x7d\0", 3)), 0);
    EXPECT_EQ(rule.slow_messages(), 4u);
    EXPECT_EQ(rule.Summary(), "slow rule: 4 slow messages delayed");
  }
}

TEST(SlowRuleTest, DescribesItself) {
  SlowRule sleep(1000, SlowRule::Mode::kSleep, 0xff);
  EXPECT_EQ(sleep.Describe(),
            "slow rule: sleep 1000 us per message starting with byte 0xff");
  SlowRule spin(5, SlowRule::Mode::kSpin, 0);
  EXPECT_EQ(spin.Describe(),
            "slow rule: spin 5 us per message starting with byte 0x00");
}

TEST(SlowRuleTest, CountsFromManyThreads) {
  SlowRule rule(1, SlowRule::Mode::kSpin, 0xff);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&rule] {
      for (int i = 0; i < 100; ++i)
        rule.Apply(
            "\xff"
            "abc");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rule.slow_messages(), 400u);
}

}  // namespace
}  // namespace baton
