// Internal (servers): the proxy's handlers; see proxy_handler.h.
#include "server/proxy_handler.h"

#include <glog/logging.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace baton::proxy {
namespace {

// What the two sides of one proxied connection share.
struct ProxyLink {
  // Set while that side has paused its reading for its peer's backlog.
  std::atomic<bool> client_paused{false};
  std::atomic<bool> upstream_paused{false};
};

class ProxySide : public ConnectionHandler {
 public:
  // `peer`: the other side's id; the client side learns it in OnOpen.
  ProxySide(Reactor* reactor, const ProxyConfig* config,
            std::shared_ptr<ProxyLink> link, bool is_client, ConnectionId peer)
      : reactor_(reactor),
        config_(config),
        link_(std::move(link)),
        is_client_(is_client),
        peer_(peer) {}

  void OnOpen(Connection& conn) override {
    if (!is_client_) return;
    const ConnectionId client = conn.id();
    Reactor* reactor = reactor_;
    const ProxyConfig* config = config_;
    std::shared_ptr<ProxyLink> link = link_;
    absl::StatusOr<ConnectionId> upstream = reactor_->Connect(
        config_->upstream, [reactor, config, link, client] {
          return std::make_unique<ProxySide>(reactor, config, link,
                                             /*is_client=*/false, client);
        });
    if (!upstream.ok()) {
      LOG(WARNING) << "upstream " << Upstream() << ": " << upstream.status()
                   << "; closing client";
      conn.Close();
      return;
    }
    peer_ = *upstream;
  }

  void OnData(Connection& conn, absl::string_view data) override {
    if (!reactor_->Write(peer_, data)) {
      conn.Close();  // the other side is gone (its OnClose acts too)
      return;
    }
    if (reactor_->pending_output(peer_) <= config_->high_water) return;
    // Back-pressure: pause, then look again in case the peer drained in
    // between (its OnDrained may have run before our flag was set).
    std::atomic<bool>& paused = MyFlag();
    paused.store(true);
    conn.PauseReading();
    if (reactor_->pending_output(peer_) <= config_->high_water &&
        paused.exchange(false)) {
      conn.ResumeReading();
    }
  }

  void OnDrained(Connection& conn) override {
    if (PeerFlag().exchange(false)) reactor_->ResumeReading(peer_);
  }

  // This side's peer finished sending: pass the EOF on once everything
  // before it is through. We stay open for the other direction; the
  // reactor closes us when our own sending side is shut too.
  void OnPeerClosed(Connection& conn) override {
    if (!reactor_->ShutdownWrite(peer_)) conn.Close();
  }

  void OnClose(Connection& conn, const absl::Status& reason) override {
    // ABORTED here means the client side aborted us (its own failure).
    if (!is_client_ && !reason.ok() && !absl::IsAborted(reason)) {
      LOG_EVERY_N(WARNING, 100) << "upstream " << Upstream() << ": " << reason
                                << "; closing client (" << google::COUNTER
                                << " so far)";
    }
    if (reason.ok()) {
      reactor_->Close(peer_);  // sends what is queued first
    } else {
      reactor_->Abort(peer_);
    }
    // A peer waiting for our drain must not stay paused (it is closing
    // anyway, but its queued input should still flow).
    if (PeerFlag().exchange(false)) reactor_->ResumeReading(peer_);
  }

 private:
  std::atomic<bool>& MyFlag() {
    return is_client_ ? link_->client_paused : link_->upstream_paused;
  }
  std::atomic<bool>& PeerFlag() {
    return is_client_ ? link_->upstream_paused : link_->client_paused;
  }
  std::string Upstream() const {
    const std::string& a = config_->upstream.address;
    return a.find(':') == a.npos
               ? absl::StrCat(a, ":", config_->upstream.port)
               : absl::StrCat("[", a, "]:", config_->upstream.port);
  }

  Reactor* reactor_;
  const ProxyConfig* config_;
  std::shared_ptr<ProxyLink> link_;
  const bool is_client_;
  ConnectionId peer_;
};

}  // namespace

absl::Status ParseUpstream(absl::string_view text, ConnectOptions* options) {
  const size_t colon = text.rfind(':');
  if (colon == text.npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("upstream '", text, "': want HOST:PORT"));
  }
  absl::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("upstream '", text, "': port must be 1..65535"));
  }
  options->address = std::string(host);
  options->port = port;
  return absl::OkStatus();
}

HandlerFactory ClientFactory(Reactor* reactor, const ProxyConfig* config) {
  return [reactor, config] {
    return std::make_unique<ProxySide>(reactor, config,
                                       std::make_shared<ProxyLink>(),
                                       /*is_client=*/true, ConnectionId{});
  };
}

}  // namespace baton::proxy
