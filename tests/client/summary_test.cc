// Unit tests for client/summary.h.
#include "client/summary.h"

#include <gtest/gtest.h>

namespace baton::client {
namespace {

TEST(SummaryTest, EmptyIsAllZero) {
  const Summary s = Summarize({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.max, 0);
}

TEST(SummaryTest, NearestRankOnUnsortedInput) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);
  const Summary s = Summarize(values);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_EQ(s.p50, 50);  // rank ceil(0.5 * 100) = 50
  EXPECT_EQ(s.p99, 99);
}

TEST(SummaryTest, OneValue) {
  const Summary s = Summarize({7.5});
  EXPECT_EQ(s.min, 7.5);
  EXPECT_EQ(s.p50, 7.5);
  EXPECT_EQ(s.p99, 7.5);
  EXPECT_EQ(s.max, 7.5);
}

TEST(SummaryTest, SmallSetP99IsTheMaximum) {
  const Summary s = Summarize({3, 1, 2});
  EXPECT_EQ(s.p50, 2);
  EXPECT_EQ(s.p99, 3);
  EXPECT_EQ(NearestRank({1, 2, 3}, 0.0), 1);
}

}  // namespace
}  // namespace baton::client
