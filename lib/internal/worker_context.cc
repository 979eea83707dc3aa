// Internal: the calling thread's WorkerContext and its spare output queues.
#include "lib/internal/worker_context.h"

#include <utility>

namespace baton::internal {
namespace {

thread_local WorkerContext* tls_worker = nullptr;

// Drained output queues a worker keeps (RecycleOutputQueue).
constexpr size_t kMaxSpareQueues = 64;

}  // namespace

WorkerContext* CurrentWorker() { return tls_worker; }

void SetCurrentWorker(WorkerContext* context) { tls_worker = context; }

std::unique_ptr<OutputQueue> NewOutputQueue() {
  WorkerContext* worker = CurrentWorker();
  if (worker == nullptr || worker->spare_queues.empty()) {
    return std::make_unique<OutputQueue>();
  }
  std::unique_ptr<OutputQueue> queue = std::move(worker->spare_queues.back());
  worker->spare_queues.pop_back();
  return queue;
}

void RecycleOutputQueue(std::unique_ptr<OutputQueue>* queue) {
  WorkerContext* worker = CurrentWorker();
  if (*queue == nullptr || worker == nullptr ||
      worker->spare_queues.size() >= kMaxSpareQueues) {
    queue->reset();
    return;
  }
  (*queue)->Clear();
  worker->spare_queues.push_back(std::move(*queue));
}

}  // namespace baton::internal
