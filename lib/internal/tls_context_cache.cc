// Internal: TlsClientContextCache.
#include "lib/internal/tls_context_cache.h"

#include <utility>

namespace baton::internal {

absl::StatusOr<std::shared_ptr<const tls::TlsContext>>
TlsClientContextCache::Get(
    const std::shared_ptr<const TlsClientOptions>& options) {
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(options.get());
    if (it != entries_.end()) {
      // A live object at this address is this one; an expired entry is a
      // dead object whose address was reused.
      if (!it->second.options.expired()) return it->second.context;
      entries_.erase(it);
    }
  }
  // Built outside the lock (it reads files). Two first connects at once
  // may both build; the later one's context is kept.
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
      tls::TlsContext::ForClient(*options);
  if (!context.ok()) return context.status();
  MutexLock lock(&mu_);
  if (entries_.size() >= capacity_) {
    absl::erase_if(entries_, [](const auto& entry) {
      return entry.second.options.expired();
    });
    // Still full of live objects: make room (they build again if reused).
    if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  }
  entries_[options.get()] = Entry{options, *context};
  return context;
}

size_t TlsClientContextCache::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace baton::internal
