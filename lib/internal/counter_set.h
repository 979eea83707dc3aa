// Internal header: CounterSet, a reactor's counters (ReactorCounters), one
// block per worker plus one shared by every other thread, and the test that
// tells a reactor's own worker threads from the rest.
//
// Threads: every function is safe from any thread.
// Owns: the counter blocks. Calls: nothing (reads the calling thread's
// WorkerContext). Every component that counts gets a reference to it.
#ifndef BATON_INTERNAL_COUNTER_SET_H_
#define BATON_INTERNAL_COUNTER_SET_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "baton/counters.h"
#include "lib/internal/worker_context.h"

namespace baton::internal {

// Counters of one worker, written only by that worker (relaxed load+store,
// no locked instruction on the hot path) and read by anyone.
struct alignas(64) WorkerCounters {
#define BATON_WORKER_COUNTER(name, what) std::atomic<uint64_t> name{0};
  BATON_REACTOR_COUNTERS(BATON_WORKER_COUNTER)
#undef BATON_WORKER_COUNTER

  ReactorCounters Snapshot() const;
};

class CounterSet {
 public:
  explicit CounterSet(int workers)
      : blocks_(new WorkerCounters[workers + 1]), workers_(workers) {}
  CounterSet(const CounterSet&) = delete;
  CounterSet& operator=(const CounterSet&) = delete;

  // Adds `n` to the counter `field` (e.g. &WorkerCounters::accepts): in the
  // calling worker's own block without a locked instruction, or, off this
  // reactor's workers, in the shared block with fetch_add.
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    const WorkerContext* worker = CurrentWorker();
    if (worker != nullptr && worker->counters == this) {
      // Only this thread writes its counters: no locked instruction needed.
      std::atomic<uint64_t>& c = blocks_[worker->index].*field;
      c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    } else {
      (blocks_[workers_].*field).fetch_add(n, std::memory_order_relaxed);
    }
  }

  // The calling thread is one of this reactor's workers (its WorkerContext
  // counts into this set).
  bool InWorkerThread() const {
    const WorkerContext* worker = CurrentWorker();
    return worker != nullptr && worker->counters == this;
  }

  // Every block summed (Reactor::Counters).
  ReactorCounters Total() const;
  // One snapshot per worker, in worker order (Reactor::ThreadCounters).
  std::vector<ReactorCounters> PerWorker() const;

 private:
  std::unique_ptr<WorkerCounters[]> blocks_;
  const int workers_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_COUNTER_SET_H_
