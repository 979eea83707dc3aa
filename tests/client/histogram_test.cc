// Unit tests for client/histogram.h.
#include "client/histogram.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace baton::client {
namespace {

TEST(HistogramTest, EmptyIsAllZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0);
  EXPECT_EQ(h.Percentile(0.5), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 20; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 10);
  EXPECT_EQ(h.Percentile(1.0), 20);
  EXPECT_EQ(h.Percentile(0.0), 1);
  EXPECT_DOUBLE_EQ(h.mean(), 10.5);
}

TEST(HistogramTest, PercentilesWithinThreePercent) {
  Histogram h;
  // 1..100000 us in ns: the q-quantile is q * 100000 us.
  for (int64_t us = 1; us <= 100000; ++us) h.Record(us * 1000);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double want = q * 100000 * 1000;
    EXPECT_NEAR(h.Percentile(q), want, want * 0.03) << q;
  }
  EXPECT_EQ(h.Percentile(1.0), h.max());
  EXPECT_EQ(h.max(), 100000 * 1000);
  EXPECT_EQ(h.min(), 1000);
}

TEST(HistogramTest, MergeIsTheSameAsRecordingBoth) {
  Histogram a, b, both;
  for (int64_t v = 1; v < 5000; v += 7) {
    a.Record(v * 13);
    both.Record(v * 13);
  }
  for (int64_t v = 1; v < 3000; v += 3) {
    b.Record(v * 101);
    both.Record(v * 101);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), both.min());
  EXPECT_EQ(a.max(), both.max());
  EXPECT_DOUBLE_EQ(a.mean(), both.mean());
  for (double q : {0.1, 0.5, 0.99}) {
    EXPECT_EQ(a.Percentile(q), both.Percentile(q)) << q;
  }
}

TEST(HistogramTest, HugeAndNegativeValuesAreClamped) {
  Histogram h;
  h.Record(-5);
  h.Record(int64_t{1} << 50);
  EXPECT_EQ(h.count(), 2);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.Percentile(1.0), int64_t{1} << 50);
}

}  // namespace
}  // namespace baton::client
