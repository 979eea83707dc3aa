// Client library header: Summary, the min/mean/percentiles of a small set of
// values (the barrier bench's per-thread averages).
#ifndef BATON_CLIENT_SUMMARY_H_
#define BATON_CLIENT_SUMMARY_H_

#include <cstddef>
#include <vector>

namespace baton::client {

struct Summary {
  size_t count = 0;
  double min = 0;
  double mean = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

// Exact nearest-rank percentiles (the value at rank ceil(q * n)), the same
// definition Histogram::Percentile uses, so the two modes' figures compare.
// All fields are 0 for an empty input.
Summary Summarize(std::vector<double> values);

// The nearest-rank `q`-quantile of `sorted` (ascending, non-empty).
double NearestRank(const std::vector<double>& sorted, double q);

}  // namespace baton::client

#endif  // BATON_CLIENT_SUMMARY_H_
