// Internal header: TlsOptionsCache, the TLS contexts built for
// Connection::StartTls, one per options object. Building a context reads
// certificate, key and CA files, so a server upgrading every connection
// with the same shared_ptr<const TlsServerOptions> reads them once.
//
// Keyed by the options object's identity (the shared_ptr's control block),
// held weakly: an entry lives while its options object does, so a caller
// making a new options object per upgrade leaves only expired entries,
// which are dropped whenever the map has doubled since the last sweep.
// A failed build is not kept (the next StartTls tries again and reports
// the error again). Thread-safe; building happens outside the lock, so two
// threads upgrading with a new options object at once may both build, and
// one context wins.
#ifndef BATON_INTERNAL_TLS_OPTIONS_CACHE_H_
#define BATON_INTERNAL_TLS_OPTIONS_CACHE_H_

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

  absl::StatusOr<Context> Get(
      const std::shared_ptr<const TlsServerOptions>& options) {
    return Find(options, [&] { return tls::TlsContext::ForServer(*options); });
  }
  absl::StatusOr<Context> Get(
      const std::shared_ptr<const TlsClientOptions>& options) {
    return Find(options, [&] { return tls::TlsContext::ForClient(*options); });
  }

  // Entries held (live or expired); for tests.
  size_t size() {
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
    if (entries_.size() >= 2 * swept_size_) {
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.options.expired()) {
          entries_.erase(it++);
        } else {
          ++it;
        }
      }
      swept_size_ = entries_.size() < 8 ? 8 : entries_.size();
    }
    Entry& entry = entries_[key];
    entry.options = options;
    entry.context = *context;
    return context;
  }

  // `held` names `options` (an address is reused only after its object
  // died, and then `held` has expired or names another control block).
  template <typename Options>
  static bool SameObject(const std::weak_ptr<const void>& held,
                         const std::shared_ptr<const Options>& options) {
    return !held.expired() && !held.owner_before(options) &&
           !options.owner_before(held);
  }

  Mutex mu_;
  absl::flat_hash_map<const void*, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t swept_size_ ABSL_GUARDED_BY(mu_) = 8;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_TLS_OPTIONS_CACHE_H_
