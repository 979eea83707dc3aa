// Client library: open-loop pacing for the HTTP load. Each request has a
// time fixed in advance (t0 + i / rate); it goes out on a new connection
// then, or as soon as a slot frees if the cap on requests in flight is
// full, and its latency runs from that scheduled time. A server that stalls
// thus shows the stall in the latencies instead of slowing the generator
// down (no coordinated omission).
#include <cmath>
#include <vector>

#include "client/http_worker.h"

namespace baton::client {

void RunPaced(const HttpLoadOptions& o, const HttpRunClock& clock, int index,
              HttpWorker* worker) {
  std::vector<HttpSlot*> free;
  for (HttpSlot& s : worker->slots()) free.push_back(&s);
  const double ns_per_request = 1e9 / o.rate;
  auto due = [&](int64_t i) {
    return clock.start_ns + static_cast<int64_t>(std::llround(
                                static_cast<double>(i) * ns_per_request));
  };
  int64_t next = index;          // this thread's next request to send
  int64_t checked_late = index;  // requests before it were checked for late
  for (;;) {
    for (HttpSlot* s : worker->TakeFinished()) free.push_back(s);
    const int64_t now = NowNanos();
    int64_t next_due = due(next);
    while (next_due < clock.end_ns && next_due <= now && !free.empty()) {
      HttpSlot* s = free.back();
      free.pop_back();
      worker->Start(*s, next_due, next_due >= clock.measure_ns);
      next += o.threads;
      next_due = due(next);
    }
    if (free.empty()) {
      // Every request due by now that no slot could take is late, once.
      if (checked_late < next) checked_late = next;
      for (;; checked_late += o.threads) {
        const int64_t d = due(checked_late);
        if (d >= clock.end_ns || d > now) break;
        if (d >= clock.measure_ns) ++worker->result().late;
      }
    }
    const bool all_sent = next_due >= clock.end_ns;
    if (all_sent && worker->active() == 0) break;
    // Wake for the next request if a slot can take it; else for an answer
    // (Poll returns on events, and after 50 ms at most).
    worker->Poll(!all_sent && !free.empty() ? next_due : now + 50000000);
  }
}

}  // namespace baton::client
