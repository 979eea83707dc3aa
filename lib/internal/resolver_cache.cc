// Internal: ResolverCache (see resolver_cache.h).
#include "lib/internal/resolver_cache.h"

#include <algorithm>

#include "lib/net/clock.h"

namespace baton::internal {

ResolverCache::ResolverCache(int64_t max_ttl_ns, size_t max_names)
    : max_ttl_ns_(max_ttl_ns), max_names_(std::max<size_t>(max_names, 1)) {}

std::optional<LookupResult> ResolverCache::Find(absl::string_view host,
                                                int family) {
  if (!enabled()) return std::nullopt;
  MutexLock lock(&mu_);
  auto found = index_.find(Key(host, family));
  if (found == index_.end()) return std::nullopt;
  Order::iterator it = found->second;
  if (NowLocked() >= it->expires_ns) {
    EraseLocked(it);
    return std::nullopt;
  }
  order_.splice(order_.begin(), order_, it);
  return it->result;
}

void ResolverCache::Insert(absl::string_view host, int family,
                           const LookupResult& result, int64_t ttl_ns) {
  if (!enabled()) return;
  MutexLock lock(&mu_);
  if (auto found = index_.find(Key(host, family)); found != index_.end()) {
    EraseLocked(found->second);
  }
  if (ttl_ns <= 0) return;
  while (order_.size() >= max_names_) EraseLocked(std::prev(order_.end()));
  order_.push_front(Entry{std::string(host), family, result,
                          NowLocked() + std::min(ttl_ns, max_ttl_ns_)});
  index_.emplace(Key(order_.front().host, family), order_.begin());
}

size_t ResolverCache::size() const {
  MutexLock lock(&mu_);
  return order_.size();
}

void ResolverCache::FreezeClockForTest() {
  MutexLock lock(&mu_);
  if (frozen_now_ns_ == 0) frozen_now_ns_ = net::MonotonicNanos();
}

void ResolverCache::AdvanceClockForTest(int64_t ns) {
  FreezeClockForTest();
  MutexLock lock(&mu_);
  frozen_now_ns_ += ns;
}

int64_t ResolverCache::NowLocked() const {
  return frozen_now_ns_ != 0 ? frozen_now_ns_ : net::MonotonicNanos();
}

void ResolverCache::EraseLocked(Order::iterator it) {
  // The key views the node's string: out of the index first.
  index_.erase(Key(it->host, it->family));
  order_.erase(it);
}

}  // namespace baton::internal
