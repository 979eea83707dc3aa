// Internal: per-connection timers (Connection::RunAfter) and kTimerDue, the
// request the timer queue raises for them and for connect deadlines. A
// timer queue callback never touches owner state: it raises kTimerDue on the
// connection's id (stale after teardown, so a late one is a no-op) through
// Request, as a foreign Close would, and the owner, holding the claim, runs
// whatever is due. The timer queue runs a whole batch of due entries on one
// thread; Request only queues each connection on the ready queue, so
// connections whose timers fall due together are served by every free
// thread at once, not one after another on that one.
#include "lib/internal/connection_timers.h"

#include <glog/logging.h>

#include <utility>

#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/foreign_requests.h"
#include "lib/net/clock.h"

namespace baton::internal {

ConnectionTimers::ConnectionTimers(TimerQueue& timers, CounterSet& counters,
                                   ForeignRequests* requests,
                                   ConnectionLifetime* lifetime)
    : timers_(timers),
      counters_(counters),
      requests_(requests),
      lifetime_(lifetime) {}

uint64_t ConnectionTimers::AddTimerDue(Slot* slot, int64_t deadline_ns) {
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  return timers_.Add(deadline_ns, 0,
                     [this, id] { requests_->Request(id, kTimerDue); });
}

uint64_t ConnectionTimers::OwnerRunAfter(Slot* slot, absl::Duration delay,
                                         std::function<void(Connection&)> fn) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  if (!owner.serving() || !fn) return 0;
  const int64_t deadline = net::DeadlineAfter(net::MonotonicNanos(),
                                              absl::ToInt64Nanoseconds(delay));
  const uint64_t id = AddTimerDue(slot, deadline);
  ExtrasOf(owner).timers.push_back(
      ConnectionTimer{id, deadline, std::move(fn)});
  return id;
}

bool ConnectionTimers::OwnerCancelTimer(Slot* slot, uint64_t id) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  if (!owner.extras || id == 0) return false;
  std::vector<ConnectionTimer>& timers = owner.extras->timers;
  for (size_t i = 0; i < timers.size(); ++i) {
    if (timers[i].id != id) continue;
    timers_.Cancel(id);
    timers.erase(timers.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

bool ConnectionTimers::RunDueTimers(Slot* slot) {
  OwnerState& owner = slot->owner;
  const int64_t now = net::MonotonicNanos();
  // One at a time, earliest first: a callback may add or cancel timers
  // (including due ones, which then do not run) or close the connection.
  while (owner.extras && owner.serving()) {
    std::vector<ConnectionTimer>& timers = owner.extras->timers;
    size_t best = timers.size();
    for (size_t i = 0; i < timers.size(); ++i) {
      if (timers[i].deadline_ns > now) continue;
      if (best == timers.size() ||
          timers[i].deadline_ns < timers[best].deadline_ns) {
        best = i;
      }
    }
    if (best == timers.size()) break;
    ConnectionTimer timer = std::move(timers[best]);
    timers.erase(timers.begin() + static_cast<std::ptrdiff_t>(best));
    // Its queue entry may not have fired yet (a neighbour's did).
    timers_.Cancel(timer.id);
    Count(&WorkerCounters::tasks);
    if (!lifetime_->Upcall(slot,
                           [&timer](ConnectionHandler&, Connection& conn) {
                             timer.fn(conn);
                           })) {
      return false;
    }
  }
  return true;
}

void ConnectionTimers::CancelConnectionTimers(Slot* slot) {
  OwnerState& owner = slot->owner;
  if (!owner.extras) return;
  for (const ConnectionTimer& timer : owner.extras->timers) {
    timers_.Cancel(timer.id);
  }
  owner.extras->timers.clear();
  if (owner.extras->tls && owner.extras->tls->handshake_timer != 0) {
    timers_.Cancel(owner.extras->tls->handshake_timer);
    owner.extras->tls->handshake_timer = 0;
  }
  if (owner.extras->connect && owner.extras->connect->timer != 0) {
    timers_.Cancel(owner.extras->connect->timer);
    owner.extras->connect->timer = 0;
  }
}

}  // namespace baton::internal
