// Internal header: TlsClientContextCache, the client TLS contexts one
// reactor built for Reactor::Connect, by options object. Building a context
// reads its CA file (and certificate and key): a program that connects
// with one ConnectOptions::tls object many times pays that once.
//
// Keyed by the options object's identity (the shared_ptr's pointee), held
// weakly: an entry whose options object is gone is dropped, and one whose
// address was reused by a new object is not mistaken for it. At most
// `capacity` entries are kept, so a program that makes new options objects
// for every connect (and keeps them) costs bounded memory: it builds a
// context each time, as before. An options object must not change once
// given to Connect (it is shared as const).
//
// Owns: the cached contexts (each also shared by the sessions made from it).
// Threads: Get is safe from any thread (one mutex; the context is built
//   outside it).
#ifndef BATON_INTERNAL_TLS_CONTEXT_CACHE_H_
#define BATON_INTERNAL_TLS_CONTEXT_CACHE_H_

#include <cstddef>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"
#include "lib/internal/mutex.h"
#include "lib/tls/tls_context.h"

namespace baton::internal {

class TlsClientContextCache {
 public:
  static constexpr size_t kDefaultCapacity = 64;

  explicit TlsClientContextCache(size_t capacity = kDefaultCapacity)
      : capacity_(capacity) {}
  TlsClientContextCache(const TlsClientContextCache&) = delete;
  TlsClientContextCache& operator=(const TlsClientContextCache&) = delete;

  // The context for `options`: the one built for this object before, or a
  // new one (cached if it could be built; an error is not cached).
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> Get(
      const std::shared_ptr<const TlsClientOptions>& options);

  // Entries held now, for tests.
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<const TlsClientOptions> options;
    std::shared_ptr<const tls::TlsContext> context;
  };

  const size_t capacity_;
  mutable Mutex mu_;
  absl::flat_hash_map<const TlsClientOptions*, Entry> entries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_TLS_CONTEXT_CACHE_H_
