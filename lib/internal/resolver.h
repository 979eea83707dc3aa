// Internal header: Resolver, host name lookups for Reactor::Connect on the
// reactor's own epoll instance and timer queue (c-ares).
//
// One c-ares channel per reactor, created on the first lookup (a reactor
// that only connects to literals never reads the resolver configuration).
// c-ares 1.18 channels are not thread-safe and any worker may handle a
// resolver event, so every call into the channel runs under one mutex.
// c-ares calls back only from inside those calls; the callbacks store
// results and note which lookups finished, and the finished ones are
// announced (`done`) after the mutex is released, so an announcement may
// re-enter the Resolver.
//
// The channel's sockets sit in the reactor's epoll as internal sources
// (EPOLLONESHOT like every source, re-armed after each event) whose data is
// kInternalTag | kResolverSourceTag | fd; its retransmission timeouts are
// one entry of the reactor's timer queue. Nothing here blocks: /etc/hosts
// is read, and queries are sent, without waiting.
//
// Answers are kept in a ResolverCache (its own mutex, never held across a
// c-ares call; when both are held, mu_ is taken first) for a Connect to
// read through Cached before it starts a lookup:
//   - a DNS answer for its records' smallest TTL (CNAMEs included);
//   - a hosts file answer (c-ares gives it no TTL; it is the one kind
//     answered from inside ares_getaddrinfo) for kHostsFileTtlNs (5 s), so
//     an edit of the file is seen within seconds;
//   - a name that does not exist or has no address (NOT_FOUND) for
//     kNegativeTtlNs (2 s);
// each capped by ReactorOptions::dns_cache_max_ttl (zero: nothing kept).
// Failures of the servers (timeouts, refusals) are not kept. A connect that
// finds its answer in the cache takes the cache's mutex only: it never
// waits for a c-ares call of another thread.
//
// Lookups of one name that run at the same time share one query: a Start
// for a name whose query is in flight joins it, and each joined key gets
// the answer with its own port. Forget drops only its own key: the query
// goes on for the others (and its answer still fills the cache).
#ifndef BATON_INTERNAL_RESOLVER_H_
#define BATON_INTERNAL_RESOLVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/internal/mutex.h"
#include "lib/internal/poller.h"
#include "lib/internal/resolver_cache.h"
#include "lib/internal/timer_queue.h"

struct ares_channeldata;
struct ares_addrinfo;

namespace baton::internal {

// Marks a resolver socket among the internal sources (listener sources are
// small indices and never reach this bit); the low 32 bits are its fd.
constexpr uint64_t kResolverSourceTag = uint64_t{1} << 62;

class Resolver {
 public:
  // How long answers without a TTL of their own are kept (each capped by
  // the cache's maximum TTL).
  static constexpr int64_t kHostsFileTtlNs = int64_t{5} * 1000000000;
  static constexpr int64_t kNegativeTtlNs = int64_t{2} * 1000000000;

  // `servers`: c-ares server list ("127.0.0.1:5353,[::1]:53"); empty: the
  // system's resolver configuration. `done(key)`: the lookup started with
  // `key` finished; Take(key) has its result. `cache_max_ttl_ns` (<= 0: no
  // cache) and `cache_max_names`: the answer cache's bounds.
  Resolver(Poller* poller, TimerQueue* timers, std::string servers,
           std::function<void(uint64_t key)> done, int64_t cache_max_ttl_ns,
           size_t cache_max_names);
  // Ends every lookup (their results are dropped, `done` is not called).
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The cached answer for `host` with `port` filled in, if there is one
  // that has not expired (takes the cache's mutex only).
  std::optional<LookupResult> Cached(const std::string& host, int port);

  // How Start went: a query was sent, or the lookup joined one of the same
  // name in flight (or found the answer cached after all).
  enum class Started { kQuery, kJoined };

  // Starts looking up `host` (IPv6 and IPv4, /etc/hosts first, in the
  // order getaddrinfo would use) for `port`. The result may be ready before
  // Start returns (a hosts file entry); `done(key)` is called either way.
  // Fails if the channel cannot be set up; `key` must not be in use.
  absl::StatusOr<Started> Start(uint64_t key, const std::string& host,
                                int port);

  // The result of `key`'s lookup once it finished (then forgets it);
  // nullopt while it runs. NOT_FOUND for a name that does not exist or has
  // no address, UNAVAILABLE or DEADLINE_EXCEEDED when the servers failed.
  std::optional<LookupResult> Take(uint64_t key);

  // Drops `key`'s lookup: its result is discarded when it comes.
  void Forget(uint64_t key);

  // An epoll event on a resolver socket (`data` has kResolverSourceTag).
  void HandleEvent(uint64_t data, uint32_t events);

  // Lookups started and not yet taken or forgotten (tests).
  size_t pending() const;
  // Tests: stops the cache's clock, and moves it forward (answers expire
  // without a wait).
  void FreezeCacheClockForTest() { cache_.FreezeClockForTest(); }
  void AdvanceCacheClockForTest(int64_t ns) { cache_.AdvanceClockForTest(ns); }

 private:
  struct Query;
  struct Entry {
    int port = 0;
    std::optional<LookupResult> result;
  };
  // A query in flight, by the name and the address family it asks for.
  using FlightKey = std::pair<std::string, int>;

  // c-ares callbacks; they run inside calls made under mu_.
  static void OnSocketState(void* self, int fd, int readable,
                            int writable) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  static void OnResult(void* query, int status, int timeouts,
                       ares_addrinfo* info) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  absl::Status EnsureChannelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Programs the timer queue entry for the channel's next timeout.
  void UpdateTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTimer(uint64_t sequence);
  // Calls `done` for each finished lookup (no lock held).
  void Announce(std::vector<uint64_t> finished);

  Poller* const poller_;
  TimerQueue* const timers_;
  const std::string servers_;
  const std::function<void(uint64_t)> done_;

  mutable Mutex mu_;
  ares_channeldata* channel_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool destroying_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Each query in flight and the keys waiting for it (forgotten ones are
  // skipped when it ends).
  absl::flat_hash_map<FlightKey, std::vector<uint64_t>> flights_
      ABSL_GUARDED_BY(mu_);
  // The query being handed to ares_getaddrinfo: an answer for it that
  // comes from inside that call is the hosts file's.
  const Query* starting_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Finished while the mutex was held; announced after it is released.
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);
  // The channel's sockets and the interest each is armed with.
  absl::flat_hash_map<int, uint32_t> sockets_ ABSL_GUARDED_BY(mu_);
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t timer_deadline_ns_ ABSL_GUARDED_BY(mu_) = 0;
  // Tells the current timer entry from one cancelled while it ran.
  uint64_t timer_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Guarded by its own mutex (taken after mu_ when both are held).
  ResolverCache cache_;
};

// Deletes the lookup of a connection that ends while its name is being
// resolved: the result, whenever it arrives, touches nothing of it.
class PendingLookup {
 public:
  PendingLookup(Resolver* resolver, uint64_t key)
      : resolver_(resolver), key_(key) {}
  ~PendingLookup() { resolver_->Forget(key_); }
  PendingLookup(const PendingLookup&) = delete;
  PendingLookup& operator=(const PendingLookup&) = delete;
  std::optional<LookupResult> Take() { return resolver_->Take(key_); }

 private:
  Resolver* const resolver_;
  const uint64_t key_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_RESOLVER_H_
