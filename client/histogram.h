// Client library header: Histogram, a fixed-size log-linear latency
// histogram (nanoseconds), mergeable across threads.
#ifndef BATON_CLIENT_HISTOGRAM_H_
#define BATON_CLIENT_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace baton::client {

// Values are bucketed by power of two with 32 linear sub-buckets each, so any
// recorded value is reported within ~3%. Covers 0 to 2^45 ns (~9.8 hours);
// larger values share the top bucket and are reported as the maximum.
class Histogram {
 public:
  void Record(int64_t value_ns);
  void Merge(const Histogram& other);

  int64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / count_ : 0;
  }
  // The value at quantile `q` in [0, 1] (upper edge of its bucket, clamped
  // to the maximum seen).
  int64_t Percentile(double q) const;

 private:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMajors = 41;
  static int BucketOf(int64_t value);
  static int64_t UpperEdge(int bucket);

  std::array<int64_t, kMajors * kSub> buckets_{};
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
};

}  // namespace baton::client

#endif  // BATON_CLIENT_HISTOGRAM_H_
