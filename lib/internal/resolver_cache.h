// Internal header: ResolverCache, the answers of a reactor's Resolver kept
// for reuse, so that a Connect to a name looked up a moment ago starts its
// first attempt at once, without a lookup.
//
// Keyed by (name, address family asked for); the value is the address list
// without ports (Resolver fills in each connect's port) or NOT_FOUND, and
// the time it expires. How long an answer is kept is the Resolver's choice
// (the DNS answer's smallest TTL, a fixed time for hosts file answers and
// for names that do not exist), capped here by the maximum TTL; a maximum
// of zero keeps nothing. At most `max_names` entries: adding one more drops
// the least recently used. Expired entries are dropped when next looked up
// or when they reach the end of the recency order.
//
// Threads: every function is safe from any thread. One mutex guards the
// cache and is held only inside these functions, never across a call into
// c-ares: a connect that finds its answer here waits for no lookup of
// another name. (The Resolver may call Insert and Find while it holds its
// own channel mutex, so that mutex is always taken first.)
#ifndef BATON_INTERNAL_RESOLVER_CACHE_H_
#define BATON_INTERNAL_RESOLVER_CACHE_H_

#include <sys/socket.h>

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/internal/mutex.h"

namespace baton::internal {

// One address of a name, with the port filled in.
struct ResolvedAddress {
  sockaddr_storage address = {};
  socklen_t length = 0;
};

using LookupResult = absl::StatusOr<std::vector<ResolvedAddress>>;

class ResolverCache {
 public:
  // `max_ttl_ns` <= 0: nothing is kept. `max_names` >= 1.
  ResolverCache(int64_t max_ttl_ns, size_t max_names);
  ResolverCache(const ResolverCache&) = delete;
  ResolverCache& operator=(const ResolverCache&) = delete;

  bool enabled() const { return max_ttl_ns_ > 0; }

  // The answer kept for (`host`, `family`) if it has not expired; it
  // becomes the most recently used.
  std::optional<LookupResult> Find(absl::string_view host, int family);

  // Keeps `result` for `ttl_ns` capped by the maximum (replacing what was
  // kept for the name); a TTL <= 0 keeps nothing and drops the old entry.
  void Insert(absl::string_view host, int family, const LookupResult& result,
              int64_t ttl_ns);

  // Names kept, expired ones not yet dropped included (tests).
  size_t size() const;
  // Tests, expiry without waiting: stops the cache's clock (from then on it
  // moves only by AdvanceClockForTest), and moves it forward by `ns`.
  void FreezeClockForTest();
  void AdvanceClockForTest(int64_t ns);

 private:
  struct Entry {
    std::string host;
    int family;
    LookupResult result;
    int64_t expires_ns;
  };
  using Order = std::list<Entry>;  // most recently used first
  // Keys view the host string of their list node, which never moves.
  using Key = std::pair<absl::string_view, int>;

  int64_t NowLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(Order::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_ttl_ns_;
  const size_t max_names_;
  mutable Mutex mu_;
  Order order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Key, Order::iterator> index_ ABSL_GUARDED_BY(mu_);
  // The test clock's time once frozen (FreezeClockForTest), else 0.
  int64_t frozen_now_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_RESOLVER_CACHE_H_
