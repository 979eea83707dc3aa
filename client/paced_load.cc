// Client library: open-loop pacing for the HTTP load. Each request has a
// time fixed in advance (t0 + i / rate); it goes out on a new connection
// then, or as soon as a slot frees if the cap on requests in flight is
// full, and its latency runs from that scheduled time. A server that stalls
// thus shows the stall in the latencies instead of slowing the generator
// down (no coordinated omission).
#include <cmath>
#include <deque>

#include "client/http_worker.h"

namespace baton::client {

void RunPaced(const HttpLoadOptions& o, const HttpRunClock& clock, int index,
              HttpWorker* worker) {
  // Free slots in the order they became free, so each request takes the
  // one free longest: a request is late exactly when even that one became
  // free after the request's time (every slot was busy then), whatever
  // delays the generator itself had.
  std::deque<HttpSlot*> free;
  for (HttpSlot& s : worker->slots()) free.push_back(&s);
  const double ns_per_request = 1e9 / o.rate;
  auto due = [&](int64_t i) {
    return clock.start_ns + static_cast<int64_t>(std::llround(
                                static_cast<double>(i) * ns_per_request));
  };
  int64_t next = index;  // this thread's next request
  for (;;) {
    for (HttpSlot* s : worker->TakeFinished()) free.push_back(s);
    const int64_t now = NowNanos();
    int64_t next_due = due(next);
    while (next_due < clock.end_ns && next_due <= now && !free.empty()) {
      HttpSlot* s = free.front();
      free.pop_front();
      const bool measured = next_due >= clock.measure_ns;
      if (measured) {
        if (s->ended_ns > next_due) ++worker->result().late;
        worker->result().send_lag.Record(now - next_due);
      }
      worker->Start(*s, next_due, measured);
      next += o.threads;
      next_due = due(next);
    }
    const bool all_sent = next_due >= clock.end_ns;
    if (all_sent && worker->active() == 0) break;
    // Wake for the next request if a slot can take it; else for an answer
    // (Poll returns on events, and after 50 ms at most).
    worker->Poll(!all_sent && !free.empty() ? next_due : now + 50000000);
  }
}

}  // namespace baton::client
