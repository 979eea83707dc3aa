// Test support: a client and a server TlsSession joined by in-memory
// buffers, and the certificates they use.
#ifndef BATON_TESTS_LIB_TLS_TLS_PAIR_H_
#define BATON_TESTS_LIB_TLS_TLS_PAIR_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "baton/tls.h"
#include "lib/tls/tls_context.h"
#include "lib/tls/tls_session.h"
#include "tests/util/test_certificates.h"

namespace baton::tls::testing {

// One side: its session and the plaintext it has read.
struct Side {
  std::unique_ptr<TlsSession> session;
  std::string received;
};

inline std::unique_ptr<TlsSession> MustSession(
    absl::StatusOr<std::shared_ptr<const TlsContext>> context) {
  EXPECT_TRUE(context.ok()) << context.status();
  if (!context.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<TlsSession>> session =
      TlsSession::Create(*std::move(context));
  EXPECT_TRUE(session.ok()) << session.status();
  return session.ok() ? *std::move(session) : nullptr;
}

// Reads all the plaintext `side` can produce now; true if anything changed.
inline bool Drain(Side& side, size_t read_size = 4096) {
  const TlsSession::State before = side.session->state();
  bool progress = false;
  std::string buffer(read_size, '\0');
  for (int i = 0; i < 1 << 20; ++i) {
    const size_t n = side.session->Read(buffer.data(), buffer.size());
    if (n == 0) break;
    side.received.append(buffer.data(), n);
    progress = true;
  }
  EXPECT_FALSE(side.session->HasBufferedInput());
  return progress || side.session->state() != before;
}

// Moves `from`'s ciphertext to `to` in pieces of at most `piece` bytes,
// reading after each piece; true if any byte moved.
inline bool Transfer(Side& from, Side& to, size_t piece) {
  std::string bytes;
  from.session->TakeOutput(&bytes);
  for (size_t at = 0; at < bytes.size(); at += piece) {
    to.session->Feed(absl::string_view(bytes).substr(at, piece));
    Drain(to);
  }
  return !bytes.empty();
}

// Runs both sides until neither has anything more to say.
inline void Pump(Side& client, Side& server, size_t piece = 1 << 30) {
  for (int round = 0; round < 10000; ++round) {
    bool progress = Drain(client) | Drain(server);
    progress |= Transfer(client, server, piece);
    progress |= Transfer(server, client, piece);
    if (!progress) return;
  }
  ADD_FAILURE() << "the sessions kept talking for 10000 rounds";
}

inline TlsServerOptions ServerOptions(const baton::testing::TestPki& pki) {
  TlsServerOptions options;
  options.certificate_chain_file = pki.server.certificate_file;
  options.private_key_file = pki.server.key_file;
  return options;
}

inline TlsClientOptions ClientOptions(const baton::testing::TestPki& pki) {
  TlsClientOptions options;
  options.ca_file = pki.ca.certificate_file;
  options.server_name = "localhost";
  return options;
}

// A deterministic, non-repeating-looking payload.
inline std::string Pattern(size_t size, int seed = 0) {
  std::string out(size, '\0');
  uint32_t x = 2463534242u + seed;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return out;
}

}  // namespace baton::tls::testing

#endif  // BATON_TESTS_LIB_TLS_TLS_PAIR_H_
