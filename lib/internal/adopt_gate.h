// Internal header: AdoptGate, which lets connections made outside the
// event loop (Reactor::Adopt, Reactor::Connect) into the table only until
// Reactor::Wait's last sweep. Shared by the Acceptor, the Connector and
// ReactorCore::Wait.
#ifndef BATON_INTERNAL_ADOPT_GATE_H_
#define BATON_INTERNAL_ADOPT_GATE_H_

#include "absl/base/thread_annotations.h"
#include "lib/internal/mutex.h"

namespace baton::internal {

// Adopt and Connect against Wait: once the workers are joined and the last
// sweep of the table begins, `closed` is set and they refuse (and close)
// instead of leaving a connection nobody will close. Never held while
// joining, so an Adopt from a handler cannot deadlock with Wait.
struct AdoptGate {
  Mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_ADOPT_GATE_H_
