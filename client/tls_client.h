// Client library header: TLS for the load generators — the client context
// they use, and blocking TLS round trips for the barrier bench.
#ifndef BATON_CLIENT_TLS_CLIENT_H_
#define BATON_CLIENT_TLS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"
#include "lib/tls/tls_context.h"
#include "lib/tls/tls_session.h"

namespace baton::client {

// TlsContext::ForClient(options) with session_resumption off, made never
// to resume a session: it asks for no session tickets (SSL_OP_NO_TICKET)
// and keeps no session cache, and no session is ever set on a connection,
// so every new connection of a load generator costs the server a full
// handshake.
absl::StatusOr<std::shared_ptr<const tls::TlsContext>> FullHandshakeContext(
    const TlsClientOptions& options);

// Blocking TLS on a connected socket (blocking or not: every call here
// uses MSG_DONTWAIT and poll), each bounded by `deadline_ns` (NowNanos()).
// The handshake: OK once the session is open.
absl::Status HandshakeBlocking(int fd, tls::TlsSession& session,
                               int64_t deadline_ns);
// Sends `message` and reads exactly message.size() plaintext bytes back
// into `reply`; "" when they equal `message`, else what went wrong.
std::string TlsEchoRoundTrip(int fd, tls::TlsSession& session,
                             const std::string& message, int timeout_ms,
                             std::string* reply);
// close_notify, best effort (no wait).
void CloseTls(int fd, tls::TlsSession& session);

}  // namespace baton::client

#endif  // BATON_CLIENT_TLS_CLIENT_H_
