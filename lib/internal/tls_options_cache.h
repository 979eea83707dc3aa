// Internal header: TlsOptionsCache, one reactor's TLS contexts by options
// object, for Connection::StartTls (both roles) and Reactor::Connect
// (ConnectOptions::tls). Building a context reads certificate, key and CA
// files, so a program that upgrades or connects many times with the same
// shared_ptr<const Tls...Options> reads them once.
//
// Keyed by the options object's identity, held weakly and compared by its
// control block: an entry lives while its options object does, and a dead
// object's address reused by a new one is never mistaken for it. Entries
// of options objects gone are dropped whenever the map has doubled since
// the last sweep, and at most `capacity` entries are kept: a program that
// makes (and keeps) a new options object for every use costs bounded
// memory and builds a context each time, as without a cache. A failed
// build is not kept (the next call tries again and reports the error
// again). An options object must not change once given (it is shared as
// const).
//
// Owns: the cached contexts (each also shared by the sessions made from it).
// Threads: Get is safe from any thread (one mutex; the context is built
//   outside it, so two first uses of an options object at once may both
//   build, and the later one's context is kept).
#ifndef BATON_INTERNAL_TLS_OPTIONS_CACHE_H_
#define BATON_INTERNAL_TLS_OPTIONS_CACHE_H_

#include <algorithm>
#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"
#include "lib/internal/mutex.h"
#include "lib/tls/tls_context.h"

namespace baton::internal {

class TlsOptionsCache {
 public:
  using Context = std::shared_ptr<const tls::TlsContext>;

  static constexpr size_t kDefaultCapacity = 64;

  explicit TlsOptionsCache(size_t capacity = kDefaultCapacity)
      : capacity_(std::max<size_t>(capacity, 1)) {}
  TlsOptionsCache(const TlsOptionsCache&) = delete;
  TlsOptionsCache& operator=(const TlsOptionsCache&) = delete;

  // The context for `options`: the one built for this object before, or a
  // new one (kept if it could be built; an error is not kept).
  absl::StatusOr<Context> Get(
      const std::shared_ptr<const TlsServerOptions>& options) {
    return Find(options, [&] { return tls::TlsContext::ForServer(*options); });
  }
  absl::StatusOr<Context> Get(
      const std::shared_ptr<const TlsClientOptions>& options) {
    return Find(options, [&] { return tls::TlsContext::ForClient(*options); });
  }

  // Entries held (live or expired); for tests.
  size_t size() const {
    MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::weak_ptr<const void> options;
    Context context;
  };

  template <typename Options, typename Build>
  absl::StatusOr<Context> Find(const std::shared_ptr<const Options>& options,
                               Build build) {
    const void* key = options.get();
    {
      MutexLock lock(&mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && SameObject(it->second.options, options)) {
        return it->second.context;
      }
    }
    absl::StatusOr<Context> context = build();
    if (!context.ok()) return context.status();
    MutexLock lock(&mu_);
    if (!entries_.contains(key)) MakeRoom();
    Entry& entry = entries_[key];
    entry.options = options;
    entry.context = *context;
    return context;
  }

  // Before a new key goes in: drops the entries of options objects gone
  // when the map has doubled since the last sweep or is full, then, if it
  // is still full of live ones, one of them (it builds again if reused).
  void MakeRoom() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (entries_.size() >= 2 * swept_size_ || entries_.size() >= capacity_) {
      absl::erase_if(entries_, [](const auto& entry) {
        return entry.second.options.expired();
      });
      swept_size_ = std::max<size_t>(entries_.size(), 8);
    }
    if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  }

  // `held` names `options` (an address is reused only after its object
  // died, and then `held` has expired or names another control block).
  template <typename Options>
  static bool SameObject(const std::weak_ptr<const void>& held,
                         const std::shared_ptr<const Options>& options) {
    return !held.expired() && !held.owner_before(options) &&
           !options.owner_before(held);
  }

  const size_t capacity_;
  mutable Mutex mu_;
  absl::flat_hash_map<const void*, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t swept_size_ ABSL_GUARDED_BY(mu_) = 8;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_TLS_OPTIONS_CACHE_H_
