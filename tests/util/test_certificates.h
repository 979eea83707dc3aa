// Test utility: certificates and keys generated at test time with OpenSSL
// (P-256 keys), written as PEM files under $TEST_TMPDIR. Nothing is
// committed: every test run makes its own.
#ifndef BATON_TESTS_UTIL_TEST_CERTIFICATES_H_
#define BATON_TESTS_UTIL_TEST_CERTIFICATES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace baton::testing {

struct CertificateFiles {
  std::string certificate_file;  // PEM certificate
  std::string key_file;          // PEM private key (unencrypted)
};

// A test authority and certificates it signed.
struct TestPki {
  CertificateFiles ca;      // self-signed CA certificate
  CertificateFiles server;  // leaf: subjectAltName DNS:localhost, IP:127.0.0.1
  CertificateFiles client;  // leaf: CN=<name>-client, for client auth
};

// A self-signed certificate (CN=`name`, also a CA, so it can be its own
// trust anchor) whose subjectAltName lists `dns_names` and `ips`.
absl::StatusOr<CertificateFiles> WriteSelfSignedCertificate(
    const std::string& name,
    const std::vector<std::string>& dns_names = {"localhost"},
    const std::vector<std::string>& ips = {"127.0.0.1"});

// A CA named `name` and a server and a client certificate it signed.
absl::StatusOr<TestPki> WriteTestPki(const std::string& name);

}  // namespace baton::testing

#endif  // BATON_TESTS_UTIL_TEST_CERTIFICATES_H_
