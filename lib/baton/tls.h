// Public header: TLS configuration for a listener (TlsServerOptions) and for
// an outgoing connection (TlsClientOptions). Plain structs: a context built
// from them (lib/tls/tls_context.h) checks every field and reports a bad one
// as an error naming it. Certificates and keys are PEM files. And what a
// connection's handshake settled, for its handler (TlsPeer).
//
// Whatever the options, the engine negotiates TLS 1.2 or 1.3 only and
// refuses renegotiation (a TLS 1.2 peer asking for it gets a
// no_renegotiation alert).
#ifndef BATON_TLS_H_
#define BATON_TLS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace baton {

// The oldest protocol version a side accepts.
enum class TlsVersion {
  kTls12,
  kTls13,
};

// How a server treats client certificates.
enum class TlsClientCertificates {
  kNone,     // not asked for
  kRequest,  // asked for; verified if sent, a client without one is accepted
  kRequire,  // asked for and verified; a client without one fails
};

struct TlsServerOptions {
  // The server's certificate followed by any intermediates (PEM), and its
  // private key (PEM, unencrypted). Both required; the key must match.
  std::string certificate_chain_file;
  std::string private_key_file;
  // Client certificates: kRequest and kRequire verify them against
  // client_ca_file (PEM, one or more CA certificates; required then).
  TlsClientCertificates client_certificates = TlsClientCertificates::kNone;
  std::string client_ca_file;
  // Application protocols (ALPN) the server speaks, most preferred first,
  // e.g. {"h2", "http/1.1"}. Empty: no ALPN. A client offering ALPN with no
  // protocol in this list fails the handshake (no_application_protocol
  // alert); a client offering none is accepted. Each name 1..255 bytes.
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::kTls12;
  // A connection whose handshake has not completed this long after it was
  // accepted is closed. Must be positive; absl::InfiniteDuration() means
  // no limit.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Let returning clients resume a session (an abbreviated handshake):
  // TLS 1.3 session tickets and the TLS 1.2 session cache, with OpenSSL's
  // defaults. false: every handshake is a full one and the server issues
  // no tickets, which saves the tickets' bytes and work when clients never
  // return (and makes benchmarks of full handshakes comparable).
  bool session_resumption = true;
  // Sent as it is (plaintext), before the connection is closed, to a
  // client that sends a plain HTTP request instead of a ClientHello (the
  // engine recognises the request line). An HTTP server sets it to a 400
  // response, as nginx answers "plain HTTP request sent to HTTPS port";
  // empty: such a connection is closed with nothing sent.
  std::string plain_http_response;
};

struct TlsClientOptions {
  // Verify the server's certificate chain (and its name, see server_name).
  // On by default; turning it off accepts any certificate, including a
  // forged one, so it is only for tests against self-signed servers.
  bool verify_peer = true;
  // Trusted CA certificates (PEM). Empty: the system's default store
  // (/etc/ssl/certs on Debian).
  std::string ca_file;
  // The server's name: sent as SNI and, when verify_peer is on, checked
  // against the certificate (subjectAltName DNS entries, wildcards allowed
  // in the leftmost label). An IP literal ("127.0.0.1", "::1") is checked
  // against subjectAltName IP entries and not sent as SNI. Empty: no SNI
  // and no name check (the chain is still verified).
  std::string server_name;
  // Application protocols offered (ALPN), most preferred first. Empty: no
  // ALPN. Each name 1..255 bytes.
  std::vector<std::string> alpn;
  // A client certificate and its key (PEM), for servers that ask for one.
  // Both empty (none) or both set.
  std::string certificate_chain_file;
  std::string private_key_file;
  TlsVersion min_version = TlsVersion::kTls12;
  // A handshake not completed this long after the TCP connection opened
  // fails the connection. Must be positive; absl::InfiniteDuration() means
  // no limit.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Offer the server a session from an earlier connection made with the
  // same options (a TLS 1.3 ticket, used once, or a TLS 1.2 session), so
  // that a repeat connection skips the certificate and the signatures.
  // Only with a server_name: sessions are kept per options, and the name
  // ties them to one server. A server that declines one gets a full
  // handshake. false: every connection a full handshake.
  bool session_resumption = true;
};

// What a TLS connection's handshake settled, for its handler:
// Connection::tls() (null on a plain connection). Fixed once the handshake
// completes, before OnOpen.
class TlsPeer {
 public:
  TlsPeer() = default;
  TlsPeer(std::string alpn, TlsVersion version, std::string peer_subject,
          bool peer_verified, bool resumed = false)
      : alpn_(std::move(alpn)),
        version_(version),
        peer_subject_(std::move(peer_subject)),
        peer_verified_(peer_verified),
        resumed_(resumed) {}

  // The application protocol agreed by ALPN ("http/1.1"); empty if none.
  const std::string& alpn() const { return alpn_; }
  // The protocol version negotiated.
  TlsVersion version() const { return version_; }
  // Whether the peer presented a certificate and it verified against our
  // trusted CAs: on a server, a client certificate (kRequest or kRequire);
  // on a client, the server's (false with verify_peer off).
  bool peer_verified() const { return peer_verified_; }
  // The peer's verified name, empty unless peer_verified(): on a server the
  // client certificate's subject ("CN=alice,O=Example", RFC 2253); on a
  // client the name the server's certificate matched (server_name).
  const std::string& peer_subject() const { return peer_subject_; }
  // Whether the handshake was abbreviated, reusing the TLS session of a
  // previous connection: no certificate was sent, and peer_verified() and
  // peer_subject() are those of that connection's full handshake.
  bool resumed() const { return resumed_; }

 private:
  std::string alpn_;
  TlsVersion version_ = TlsVersion::kTls12;
  std::string peer_subject_;
  bool peer_verified_ = false;
  bool resumed_ = false;
};

}  // namespace baton

#endif  // BATON_TLS_H_
