// Public header: the valid ranges of ReactorOptions' bounded fields.
// Reactor::Create rejects values outside them; command-line front ends use
// the same constants to reject a bad flag before creating a reactor.
#ifndef BATON_REACTOR_LIMITS_H_
#define BATON_REACTOR_LIMITS_H_

#include <cstddef>

namespace baton {

// ReactorOptions::threads: 0..kReactorMaxThreads (0: one per CPU).
inline constexpr int kReactorMaxThreads = 1024;

// ReactorOptions::tls_handshake_nice: 1..kReactorMaxHandshakeNice.
inline constexpr int kReactorMaxHandshakeNice = 19;

// ReactorOptions::max_events: 1..kReactorMaxEvents.
inline constexpr int kReactorMaxEvents = 4096;

// ReactorOptions::max_connections: 1..kReactorMaxConnections (2^31).
inline constexpr size_t kReactorMaxConnections = size_t{1} << 31;

// ReactorOptions::reread_rounds: kReactorUnboundedRereads (no bound),
// or 0..kReactorMaxRereadRounds.
inline constexpr int kReactorUnboundedRereads = -1;
inline constexpr int kReactorMaxRereadRounds = 1 << 20;

// ReactorOptions::read_buffer_size:
// kReactorMinReadBufferSize..kReactorMaxReadBufferSize (512 B..64 MiB).
inline constexpr size_t kReactorMinReadBufferSize = 512;
inline constexpr size_t kReactorMaxReadBufferSize = size_t{64} << 20;

}  // namespace baton

#endif  // BATON_REACTOR_LIMITS_H_
