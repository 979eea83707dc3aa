// Client library: latency and progress text for bench.
#include "client/report.h"

#include "absl/strings/str_format.h"

namespace baton::client {

JsonWriter LatencyJson(const Histogram& h) {
  JsonWriter j;
  j.AddDouble("mean", h.mean() / 1e3, 2)
      .AddDouble("p50", h.Percentile(0.5) / 1e3, 2)
      .AddDouble("p90", h.Percentile(0.9) / 1e3, 2)
      .AddDouble("p99", h.Percentile(0.99) / 1e3, 2)
      .AddDouble("p999", h.Percentile(0.999) / 1e3, 2)
      .AddDouble("max", h.max() / 1e3, 2);
  return j;
}

std::string LatencyText(const Histogram& h) {
  return absl::StrFormat(
      "latency us: mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
      "max %.1f",
      h.mean() / 1e3, h.Percentile(0.5) / 1e3, h.Percentile(0.9) / 1e3,
      h.Percentile(0.99) / 1e3, h.Percentile(0.999) / 1e3, h.max() / 1e3);
}

ProgressPrinter::LineFn CountLine(const char* unit,
                                  const std::atomic<int64_t>* count) {
  return [unit, count, last = int64_t{0}, last_s = 0.0](double s) mutable {
    const int64_t now = count->load(std::memory_order_relaxed);
    const double rate = s > last_s ? (now - last) / (s - last_s) : 0;
    last = now;
    last_s = s;
    return absl::StrFormat("%d %s (%.0f/s)", now, unit, rate);
  };
}

}  // namespace baton::client
