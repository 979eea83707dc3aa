// Internal: Connection::StartTls, the upgrade of an open plaintext
// connection to TLS in place. After it the connection is served exactly as
// a TLS listener's (connection_tls.cc); only the handshake's end differs
// (OnTlsReady instead of OnOpen, OnClose on failure) while
// TlsState::upgrading is set. Every function here runs with the caller
// holding the slot's claim.
#include <glog/logging.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/connection_tls.h"
#include "lib/net/clock.h"

namespace baton::internal {

absl::Status ConnectionLifetime::CanUpgradeToTls(const Slot* slot) const {
  AssertClaimed(slot);
  const OwnerState& owner = slot->owner;
  if (owner.extras != nullptr && owner.extras->tls != nullptr) {
    return absl::FailedPreconditionError(
        "StartTls: the connection already speaks TLS");
  }
  if (!owner.open()) {
    return absl::FailedPreconditionError(
        absl::StrCat("StartTls: the connection is ",
                     ConnectionPhaseName(owner.phase), ", not open"));
  }
  if (owner.shutdown_due || owner.write_shut) {
    return absl::FailedPreconditionError(
        "StartTls: the connection's sending side is shut down");
  }
  if (owner.peer_closed) {
    return absl::FailedPreconditionError(
        "StartTls: the peer has closed its sending side");
  }
  if (owner.write_error != 0) {
    return absl::FailedPreconditionError("StartTls: a send has failed");
  }
  return absl::OkStatus();
}

absl::Status ConnectionLifetime::UpgradeToTls(
    Slot* slot, const std::shared_ptr<const tls::TlsContext>& context) {
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
      tls::TlsSession::Create(context);
  if (!session.ok()) return session.status();
  OwnerState& owner = slot->owner;
  auto state = std::make_unique<TlsState>();
  state->session = *std::move(session);
  state->upgrading = true;
  OwnerExtras& extras = ExtrasOf(owner);
  if (owner.delivered > 0) {
    // Inside OnData: its data is Deliver's; it feeds the retained tail
    // when the call returns.
    state->feed_after_ondata = true;
    state->upgrade_input = owner.retain;
  } else if (!extras.input.empty()) {
    // Input retained by an earlier OnData came after the upgrade point.
    state->session->Feed(
        absl::string_view(extras.input.data(), extras.input.size()));
    extras.input.Release();
    state->plaintext_left = true;  // the socket will not signal for it
  }
  const absl::Duration timeout = context->handshake_timeout();
  if (timeout != absl::InfiniteDuration()) {
    state->handshake_deadline_ns = net::DeadlineAfter(
        net::MonotonicNanos(), absl::ToInt64Nanoseconds(timeout));
    state->handshake_timer =
        connection_timers_->AddTimerDue(slot, state->handshake_deadline_ns);
  }
  extras.tls = std::move(state);
  {
    // A foreign Write that took out_mu before this went into the plaintext
    // queue (sent first); every later one queues plaintext to encrypt.
    MutexLock lock(&slot->out_mu);
    slot->state.fetch_or(kTlsOutput, std::memory_order_acq_rel);
  }
  TlsState& tls = *extras.tls;
  if (!context->is_server()) {
    tls.session->Read(nullptr, 0);  // the ClientHello, behind the plaintext
    QueueTlsOutput(slot, tls);
  }
  VLOG(1) << "StartTls (fd " << owner.fd << ") as "
          << (context->is_server() ? "server" : "client");
  return absl::OkStatus();
}

}  // namespace baton::internal
