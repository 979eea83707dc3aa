// Client library header: how bench prints latencies and progress.
#ifndef BATON_CLIENT_REPORT_H_
#define BATON_CLIENT_REPORT_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "client/histogram.h"
#include "client/json_writer.h"
#include "client/progress.h"

namespace baton::client {

// A latency histogram (nanoseconds) in microseconds, as --json's
// "latency_us" object: mean, p50, p90, p99, p999, max.
JsonWriter LatencyJson(const Histogram& h);
// The same as one text line.
std::string LatencyText(const Histogram& h);

// A progress line callback that reports a running count and its rate.
ProgressPrinter::LineFn CountLine(const char* unit,
                                  const std::atomic<int64_t>* count);

}  // namespace baton::client

#endif  // BATON_CLIENT_REPORT_H_
