// Public API implementation: Connection and ConnectionHandler defaults.
#include "baton/connection.h"

#include <utility>

#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_tls.h"
#include "lib/internal/reactor_core.h"

namespace baton {

int Connection::fd() const { return slot_->owner.fd; }

Reactor& Connection::reactor() const { return *core_->owner(); }

void Connection::Write(absl::string_view data, WriteHint hint) {
  core_->OwnerWrite(slot_, data, hint == WriteHint::kMoreFollows);
}

bool Connection::SendFile(int file_fd, int64_t offset, int64_t length,
                          FileOwnership ownership) {
  return core_->OwnerSendFile(slot_, file_fd, offset, length,
                              ownership == FileOwnership::kTransfer);
}

const TlsPeer* Connection::tls() const {
  const internal::TlsState* tls = internal::TlsOf(slot_->owner);
  return tls != nullptr ? &tls->peer : nullptr;
}

size_t Connection::pending_output() const {
  return slot_->out_bytes.load(std::memory_order_relaxed);
}

void Connection::Close() { core_->OwnerClose(slot_); }

void Connection::Abort() { core_->OwnerAbort(slot_); }

void Connection::PauseReading() {
  internal::AssertClaimed(slot_);
  slot_->owner.user_paused = true;
}

void Connection::ResumeReading() {
  internal::AssertClaimed(slot_);
  slot_->owner.user_paused = false;
}

void Connection::ShutdownWrite() { core_->OwnerShutdownWrite(slot_); }

void Connection::Retain(size_t n) {
  internal::AssertClaimed(slot_);
  internal::OwnerState& owner = slot_->owner;
  DCHECK(owner.delivered > 0) << "Connection::Retain outside OnData";
  owner.retain = n < owner.delivered ? n : owner.delivered;
}

Connection::TimerId Connection::RunAfter(absl::Duration delay,
                                         std::function<void(Connection&)> fn) {
  return core_->OwnerRunAfter(slot_, delay, std::move(fn));
}

bool Connection::CancelTimer(TimerId id) {
  return core_->OwnerCancelTimer(slot_, id);
}

absl::Status Connection::StartTls(
    std::shared_ptr<const TlsServerOptions> options) {
  return core_->OwnerStartTls(slot_, options);
}

absl::Status Connection::StartTls(
    std::shared_ptr<const TlsClientOptions> options) {
  return core_->OwnerStartTls(slot_, options);
}

ConnectionHandler::~ConnectionHandler() = default;

void ConnectionHandler::OnPeerClosed(Connection& conn) { conn.Close(); }

}  // namespace baton
