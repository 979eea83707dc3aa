// Client library: Histogram.
#include "client/histogram.h"

#include <algorithm>
#include <cmath>

namespace baton::client {

int Histogram::BucketOf(int64_t value) {
  if (value < kSub) return static_cast<int>(std::max<int64_t>(value, 0));
  const int msb = 63 - __builtin_clzll(static_cast<uint64_t>(value));
  const int major = msb - kSubBits + 1;
  const int sub = static_cast<int>((value >> (msb - kSubBits)) & (kSub - 1));
  return std::min(major * kSub + sub, kMajors * kSub - 1);
}

int64_t Histogram::UpperEdge(int bucket) {
  const int major = bucket / kSub;
  const int sub = bucket % kSub;
  if (major == 0) return sub;
  const int shift = major - 1;
  return ((int64_t{kSub} + sub + 1) << shift) - 1;
}

void Histogram::Record(int64_t value_ns) {
  if (value_ns < 0) value_ns = 0;
  ++buckets_[BucketOf(value_ns)];
  ++count_;
  sum_ += value_ns;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

int64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  const int64_t rank = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      // The last bucket also holds everything beyond the range: its upper
      // edge would understate those, the maximum does not.
      if (i + 1 == buckets_.size()) return max_;
      return std::clamp(UpperEdge(static_cast<int>(i)), min_, max_);
    }
  }
  return max_;
}

}  // namespace baton::client
