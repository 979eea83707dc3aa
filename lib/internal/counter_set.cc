// Internal: CounterSet snapshots.
#include "lib/internal/counter_set.h"

namespace baton::internal {

ReactorCounters WorkerCounters::Snapshot() const {
  ReactorCounters c;
#define BATON_SNAPSHOT_COUNTER(name, what) \
  c.name = name.load(std::memory_order_relaxed);
  BATON_REACTOR_COUNTERS(BATON_SNAPSHOT_COUNTER)
#undef BATON_SNAPSHOT_COUNTER
  return c;
}

ReactorCounters CounterSet::Total() const {
  ReactorCounters total;
  for (int i = 0; i <= workers_; ++i) total += blocks_[i].Snapshot();
  return total;
}

std::vector<ReactorCounters> CounterSet::PerWorker() const {
  std::vector<ReactorCounters> out;
  for (int i = 0; i < workers_; ++i) out.push_back(blocks_[i].Snapshot());
  return out;
}

}  // namespace baton::internal
