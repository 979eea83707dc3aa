// Internal (servers): the proxy's handlers; see proxy_handler.h.
#include "server/proxy_handler.h"

#include <glog/logging.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/net/address.h"
#include "lib/net/endpoint.h"

namespace baton::proxy {
namespace {

// One direction of a pair: what one side (the writer) has queued at the
// other (the drainer).
struct Direction {
  // Guards the charge: the writer recharges after a write, the drainer
  // after a drain and at close, each from a fresh pending_output snapshot
  // taken under the lock, so the last snapshot taken is the one that
  // counts.
  std::mutex mu;
  // This direction's part of Shared::queued; written under mu, read
  // without it on the writer's fast path.
  std::atomic<size_t> charged{0};
  bool drainer_closed = false;  // guarded by mu: nothing to charge any more
  // Set while the writer has paused its reading for this direction.
  std::atomic<bool> writer_paused{false};
};

// What the two sides of one proxied connection share.
struct ProxyLink {
  Direction to_upstream;  // client -> upstream
  Direction to_client;    // upstream -> client
  std::atomic<uint64_t> client{0};
  std::atomic<uint64_t> upstream{0};
  // Sides whose OnClose is still to come (a live pair: > 0).
  std::atomic<int> open_sides{2};
  // The client has closed: an upstream closing after it was closed by us.
  std::atomic<bool> client_closed{false};
  // The upstream connected: bytes may have flowed, so an error ends the
  // pair with a reset.
  std::atomic<bool> upstream_opened{false};
};

// Why a side must pause after a write.
enum class Pause { kNone, kHighWater, kMaxQueued };

// `pending`: what the writer's peer has queued; `total`: what every pair
// has queued.
Pause Decide(size_t pending, size_t total, const ProxyConfig& config) {
  if (pending > config.high_water) return Pause::kHighWater;
  if (pending > 0 && total > config.max_queued) return Pause::kMaxQueued;
  return Pause::kNone;
}

// Closes `fd` with a reset instead of a FIN when the reactor closes it.
void ResetOnClose(int fd) {
  if (fd < 0) return;
  const linger hard = {1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
}

}  // namespace

struct Proxy::Shared {
  Shared(Reactor* r, const ProxyConfig& c) : reactor(r), config(c) {}

  Reactor* const reactor;
  const ProxyConfig config;

  std::atomic<uint64_t> pairs{0};
  std::atomic<uint64_t> upstream_failures{0};
  std::atomic<uint64_t> high_water_pauses{0};
  std::atomic<uint64_t> max_queued_pauses{0};
  std::atomic<uint64_t> pairs_cut{0};
  // Sum of every Direction::charged.
  std::atomic<size_t> queued{0};
  std::atomic<size_t> peak_queued{0};
  // CutAll has begun: failures from here on are ours.
  std::atomic<bool> cutting{false};

  mutable std::mutex links_mu;
  std::unordered_map<ProxyLink*, std::shared_ptr<ProxyLink>> links;

  std::string Upstream() const {
    return net::JoinHostPort(config.upstream.address, config.upstream.port);
  }

  // Counts a failed or broken upstream; the warning is rate-limited (one
  // per 100), the counter is not.
  void UpstreamFailed(const absl::Status& why) {
    const uint64_t failures = upstream_failures.fetch_add(1) + 1;
    LOG_EVERY_N(WARNING, 100)
        << "upstream " << Upstream() << ": " << why << "; closing client ("
        << failures << " upstream failures)";
  }

  void Register(const std::shared_ptr<ProxyLink>& link) {
    std::lock_guard<std::mutex> lock(links_mu);
    links.emplace(link.get(), link);
  }
  void SideClosed(ProxyLink* link) {
    if (link->open_sides.fetch_sub(1) != 1) return;
    std::lock_guard<std::mutex> lock(links_mu);
    links.erase(link);
  }

  // Sets `dir`'s charge to `snapshot()` (taken under its lock); returns
  // the process-wide total after it.
  template <typename F>
  size_t Recharge(Direction& dir, F snapshot) {
    std::lock_guard<std::mutex> lock(dir.mu);
    const size_t now = dir.drainer_closed ? 0 : snapshot();
    return Adjust(dir, now);
  }
  // The drainer is gone: its queue with it.
  void Discharge(Direction& dir) {
    std::lock_guard<std::mutex> lock(dir.mu);
    dir.drainer_closed = true;
    Adjust(dir, 0);
  }
  size_t Adjust(Direction& dir, size_t now) {
    const size_t before = dir.charged.load(std::memory_order_relaxed);
    dir.charged.store(now, std::memory_order_relaxed);
    if (now >= before) {
      const size_t total = queued.fetch_add(now - before) + (now - before);
      size_t peak = peak_queued.load(std::memory_order_relaxed);
      while (total > peak && !peak_queued.compare_exchange_weak(peak, total)) {
      }
      return total;
    }
    return queued.fetch_sub(before - now) - (before - now);
  }
};

namespace {

class ProxySide : public ConnectionHandler {
 public:
  // `peer`: the other side's id; the client side learns it in OnOpen.
  ProxySide(Proxy::Shared* shared, std::shared_ptr<ProxyLink> link,
            bool is_client, ConnectionId peer)
      : shared_(shared),
        reactor_(shared->reactor),
        link_(std::move(link)),
        is_client_(is_client),
        peer_(peer) {}

  void OnOpen(Connection& conn) override {
    if (!is_client_) {
      // Connected: the client may send now.
      link_->upstream_opened.store(true);
      reactor_->ResumeReading(peer_);
      return;
    }
    shared_->pairs.fetch_add(1, std::memory_order_relaxed);
    link_->client.store(conn.id().value);
    shared_->Register(link_);
    // Nothing is read from the client until its upstream is open, so a
    // slow or unreachable upstream queues nothing here.
    conn.PauseReading();
    Proxy::Shared* shared = shared_;
    std::shared_ptr<ProxyLink> link = link_;
    const ConnectionId client = conn.id();
    absl::StatusOr<ConnectionId> upstream =
        reactor_->Connect(shared_->config.upstream, [shared, link, client] {
          return std::make_unique<ProxySide>(shared, link,
                                             /*is_client=*/false, client);
        });
    if (!upstream.ok()) {
      link_->open_sides.fetch_sub(1);  // no upstream side was created
      shared_->UpstreamFailed(upstream.status());
      conn.Abort();
      return;
    }
    peer_ = *upstream;
    link_->upstream.store(peer_.value);
  }

  void OnData(Connection& conn, absl::string_view data) override {
    if (!reactor_->Write(peer_, data)) {
      conn.Close();  // the other side is gone (its OnClose acts too)
      return;
    }
    Direction& out = Out();
    const size_t pending = reactor_->pending_output(peer_);
    // The common case: the peer took everything and nothing was charged.
    if (pending == 0 && out.charged.load(std::memory_order_relaxed) == 0) {
      return;
    }
    const ConnectionId peer = peer_;
    Reactor* reactor = reactor_;
    const size_t total = shared_->Recharge(
        out, [reactor, peer] { return reactor->pending_output(peer); });
    const Pause pause = Decide(pending, total, shared_->config);
    if (pause == Pause::kNone) return;
    if (pause == Pause::kHighWater) {
      shared_->high_water_pauses.fetch_add(1, std::memory_order_relaxed);
    } else {
      const uint64_t n = shared_->max_queued_pauses.fetch_add(1) + 1;
      LOG_EVERY_T(WARNING, 10)
          << "proxy holds " << total << " bytes queued, over its bound of "
          << shared_->config.max_queued
          << " (--max_queued_bytes): sides pause reading until their bytes "
             "drain ("
          << n << " pauses so far)";
    }
    // Pause, then look again in case the peer drained in between (its
    // OnDrained may have run before our flag was set).
    out.writer_paused.store(true);
    conn.PauseReading();
    const size_t now = reactor_->pending_output(peer_);
    if (Decide(now, shared_->queued.load(), shared_->config) == Pause::kNone &&
        out.writer_paused.exchange(false)) {
      conn.ResumeReading();
    }
  }

  void OnDrained(Connection& conn) override {
    Direction& in = In();
    shared_->Recharge(in, [&conn] { return conn.pending_output(); });
    if (in.writer_paused.exchange(false)) reactor_->ResumeReading(peer_);
  }

  // This side's peer finished sending: pass the EOF on once everything
  // before it is through. We stay open for the other direction; the
  // reactor closes us when our own sending side is shut too.
  void OnPeerClosed(Connection& conn) override {
    if (!reactor_->ShutdownWrite(peer_)) conn.Close();
  }

  void OnClose(Connection& conn, const absl::Status& reason) override {
    if (is_client_) {
      link_->client_closed.store(true);
    } else if (!reason.ok() && !absl::IsAborted(reason) &&
               !absl::IsCancelled(reason) && !link_->client_closed.load() &&
               !shared_->cutting.load()) {
      // Closed by the upstream or the network, not by us.
      shared_->UpstreamFailed(reason);
    }
    if (reason.ok()) {
      reactor_->Close(peer_);  // sends what is queued first
    } else {
      // Cut short: once the pair has carried bytes, a reset on both sides,
      // so neither reads a cut stream as complete. (A client whose
      // upstream never connected has received nothing and is closed
      // plainly.)
      if (link_->upstream_opened.load()) ResetOnClose(conn.fd());
      reactor_->Abort(peer_);
    }
    // Our queue is gone.
    shared_->Discharge(In());
    // A peer waiting for our drain must not stay paused (it is closing
    // anyway, but its queued input should still flow).
    if (In().writer_paused.exchange(false)) reactor_->ResumeReading(peer_);
    shared_->SideClosed(link_.get());
  }

 private:
  // What this side writes to its peer, and what its peer writes to it.
  Direction& Out() {
    return is_client_ ? link_->to_upstream : link_->to_client;
  }
  Direction& In() { return is_client_ ? link_->to_client : link_->to_upstream; }

  Proxy::Shared* const shared_;
  Reactor* const reactor_;
  const std::shared_ptr<ProxyLink> link_;
  const bool is_client_;
  ConnectionId peer_;
};

}  // namespace

std::string ProxyCounters::ToString() const {
  return absl::StrCat(
      "pairs ", pairs, ", upstream failures ", upstream_failures,
      ", high-water pauses ", high_water_pauses, ", max-queued pauses ",
      max_queued_pauses, ", pairs cut ", pairs_cut, ", queued bytes ",
      queued_bytes, " (peak ", peak_queued_bytes, ")");
}

absl::Status ParseUpstream(absl::string_view text, ConnectOptions* options) {
  absl::StatusOr<net::Endpoint> endpoint = net::ParseEndpoint(text);
  if (!endpoint.ok()) return endpoint.status();
  if (endpoint->is_unix()) {
    options->unix_path = endpoint->unix_path;
    options->port = 0;
    return absl::OkStatus();
  }
  // A host name is looked up by Reactor::Connect for every client.
  if (!net::IsAddressLiteral(endpoint->host) &&
      !net::IsHostName(endpoint->host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': '", endpoint->host,
                     "' is neither an IP address literal nor a host name (want "
                     "HOST:PORT, IP:PORT or [IPv6]:PORT)"));
  }
  options->address = endpoint->host;
  options->port = endpoint->port;
  return absl::OkStatus();
}

Proxy::Proxy(Reactor* reactor, const ProxyConfig& config)
    : shared_(std::make_unique<Shared>(reactor, config)) {}

Proxy::~Proxy() = default;

HandlerFactory Proxy::ClientFactory() {
  Shared* shared = shared_.get();
  return [shared] {
    return std::make_unique<ProxySide>(shared, std::make_shared<ProxyLink>(),
                                       /*is_client=*/true, ConnectionId{});
  };
}

size_t Proxy::live_pairs() const {
  std::lock_guard<std::mutex> lock(shared_->links_mu);
  return shared_->links.size();
}

size_t Proxy::CutAll() {
  std::vector<std::pair<ConnectionId, ConnectionId>> pairs;
  {
    std::lock_guard<std::mutex> lock(shared_->links_mu);
    shared_->cutting.store(true);
    for (const auto& [raw, link] : shared_->links) {
      pairs.emplace_back(ConnectionId{link->client.load()},
                         ConnectionId{link->upstream.load()});
    }
  }
  // Aborting one side aborts the other too; both at once for speed. An
  // upstream id still 0 (Connect not yet returned) is left to its client.
  for (const auto& [client, upstream] : pairs) {
    shared_->reactor->Abort(client);
    if (upstream.value != 0) shared_->reactor->Abort(upstream);
  }
  shared_->pairs_cut.fetch_add(pairs.size());
  return pairs.size();
}

ProxyCounters Proxy::Counters() const {
  ProxyCounters c;
  c.pairs = shared_->pairs.load();
  c.upstream_failures = shared_->upstream_failures.load();
  c.high_water_pauses = shared_->high_water_pauses.load();
  c.max_queued_pauses = shared_->max_queued_pauses.load();
  c.pairs_cut = shared_->pairs_cut.load();
  c.queued_bytes = shared_->queued.load();
  c.peak_queued_bytes = shared_->peak_queued.load();
  return c;
}

}  // namespace baton::proxy
