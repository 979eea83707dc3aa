// Internal: the Connector's host name lookups. A Connect to a host name
// whose answer the Resolver has cached starts its first attempt at once, as
// a literal does (a cached NOT_FOUND fails it at once). Otherwise it looks
// the name up on the reactor's Resolver; the connection stays in
// ConnectionPhase::kConnecting without a socket meanwhile. The lookup's
// result and its deadline both raise kTimerDue on the connection's id (the
// Resolver's callback calls ForeignRequests::Request), so only the claim
// holder ever reads the result. The attempts then try every address in
// order (connector.cc).
#include <glog/logging.h>
#include <sys/epoll.h>

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/internal/connection_extras.h"
#include "lib/internal/connector.h"
#include "lib/net/clock.h"

namespace baton::internal {

void Connector::StartLookup(Slot* slot) {
  ConnectState& cs = *slot->owner.extras->connect;
  if (std::optional<LookupResult> cached = resolver_.Cached(cs.host, cs.port);
      cached.has_value()) {
    Count(&WorkerCounters::dns_cache_hits);
    if (!cached->ok()) {
      Count(&WorkerCounters::connect_failures);
      Teardown(slot, absl::Status(cached->status().code(),
                                  absl::StrCat("connect ", cs.peer, ": ",
                                               cached->status().message())));
      return;
    }
    cs.addresses = std::move(**cached);
    bool connected = false;
    if (!StartAttempt(slot, &connected)) return;
    // Not registered yet: Serve's Rearm adds the socket for EPOLLOUT.
    Serve(slot, connected ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    return;
  }
  Count(&WorkerCounters::dns_cache_misses);
  // The result (maybe ready before Start returns) and the lookup's
  // deadline both raise kTimerDue.
  const uint64_t key = ConnectionTable::IdOf(slot);
  cs.lookup = std::make_unique<PendingLookup>(&resolver_, key);
  absl::StatusOr<Resolver::Started> started =
      resolver_.Start(key, cs.host, cs.port);
  if (!started.ok()) {
    const absl::Status& s = started.status();
    Count(&WorkerCounters::connect_failures);
    Teardown(slot, absl::Status(s.code(), absl::StrCat("connect ", cs.peer,
                                                       ": ", s.message())));
    return;
  }
  if (*started == Resolver::Started::kQuery) {
    Count(&WorkerCounters::dns_lookups);
  }
  cs.deadline_ns =
      net::DeadlineAfter(net::MonotonicNanos(), cs.resolve_timeout_ns);
  cs.timer = cs.deadline_ns == net::kNeverNanos
                 ? 0
                 : AddTimerDue(slot, cs.deadline_ns);
  Serve(slot, 0u);  // no socket yet: nothing to arm
}

bool Connector::ServeLookup(Slot* slot, uint32_t requests) {
  ConnectState& cs = *slot->owner.extras->connect;
  if (!(requests & kTimerDue)) return true;
  std::optional<LookupResult> result = cs.lookup->Take();
  absl::Status failure;
  if (!result.has_value()) {
    if (net::MonotonicNanos() < cs.deadline_ns) return true;  // not yet
    cs.timer = 0;
    failure = absl::DeadlineExceededError(absl::StrCat(
        "resolve ", cs.host, ": timed out after ",
        absl::FormatDuration(absl::Nanoseconds(cs.resolve_timeout_ns))));
  } else if (!result->ok()) {
    failure = result->status();
  }
  if (!failure.ok()) {
    Count(&WorkerCounters::connect_failures);
    VLOG(1) << failure;
    Teardown(slot, absl::Status(failure.code(),
                                absl::StrCat("connect ", cs.peer, ": ",
                                             failure.message())));
    return false;
  }
  if (cs.timer != 0) timers_.Cancel(cs.timer);
  cs.timer = 0;
  cs.lookup.reset();
  cs.addresses = std::move(**result);
  VLOG(1) << "resolved " << cs.host << ": " << cs.addresses.size()
          << " addresses";
  return StartNextAttempt(slot);
}

}  // namespace baton::internal
