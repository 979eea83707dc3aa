// Test utility implementation: P-256 keys and X.509 certificates made with
// the OpenSSL API.
#include "tests/util/test_certificates.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace baton::testing {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

struct Issued {
  KeyPtr key{nullptr, EVP_PKEY_free};
  CertPtr certificate{nullptr, X509_free};
};

absl::StatusOr<std::string> NewDirectory() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string path =
      absl::StrCat(base != nullptr ? base : "/tmp", "/certs.XXXXXX");
  if (::mkdtemp(path.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", path, ": ", std::strerror(errno)));
  }
  return path;
}

bool AddExtension(X509* certificate, X509V3_CTX* ctx, int nid,
                  const std::string& value) {
  X509_EXTENSION* extension =
      X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (extension == nullptr) return false;
  const bool added = X509_add_ext(certificate, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added;
}

// A certificate for a new P-256 key, signed by `issuer` (self-signed when
// null). `san` is a subjectAltName value ("DNS:localhost,IP:127.0.0.1").
absl::StatusOr<Issued> Issue(const std::string& common_name, bool ca,
                             const std::string& san, const Issued* issuer) {
  static std::atomic<long> serial{1};
  Issued out;
  out.key.reset(EVP_EC_gen("P-256"));
  out.certificate.reset(X509_new());
  X509* x = out.certificate.get();
  if (out.key == nullptr || x == nullptr) {
    return absl::InternalError("key or certificate allocation failed");
  }
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600);
  X509_set_pubkey(x, out.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer->certificate.get() : x;
  EVP_PKEY* signer_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, x, nullptr, nullptr, 0);
  bool ok = AddExtension(x, &ctx, NID_basic_constraints,
                         ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
            AddExtension(x, &ctx, NID_key_usage,
                         ca ? "critical,digitalSignature,keyCertSign,cRLSign"
                            : "critical,digitalSignature") &&
            AddExtension(x, &ctx, NID_subject_key_identifier, "hash");
  if (ok && !ca) {
    ok = AddExtension(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (ok && !san.empty()) {
    ok = AddExtension(x, &ctx, NID_subject_alt_name, san);
  }
  if (!ok || X509_sign(x, signer_key, EVP_sha256()) == 0) {
    return absl::InternalError("certificate extension or signature failed");
  }
  return out;
}

absl::StatusOr<CertificateFiles> WriteFiles(const Issued& issued,
                                            const std::string& directory,
                                            const std::string& stem) {
  CertificateFiles files{absl::StrCat(directory, "/", stem, ".crt"),
                         absl::StrCat(directory, "/", stem, ".key")};
  BIO* cert_bio = BIO_new_file(files.certificate_file.c_str(), "w");
  const bool cert_ok = cert_bio != nullptr &&
                       PEM_write_bio_X509(cert_bio, issued.certificate.get());
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_file(files.key_file.c_str(), "w");
  const bool key_ok =
      key_bio != nullptr &&
      PEM_write_bio_PrivateKey(key_bio, issued.key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr);
  BIO_free(key_bio);
  if (!cert_ok || !key_ok) {
    return absl::InternalError(absl::StrCat("writing ", stem, " PEM files"));
  }
  return files;
}

std::string SubjectAltName(const std::vector<std::string>& dns_names,
                           const std::vector<std::string>& ips) {
  std::vector<std::string> entries;
  for (const std::string& dns : dns_names) entries.push_back("DNS:" + dns);
  for (const std::string& ip : ips) entries.push_back("IP:" + ip);
  return absl::StrJoin(entries, ",");
}

}  // namespace

absl::StatusOr<CertificateFiles> WriteSelfSignedCertificate(
    const std::string& name, const std::vector<std::string>& dns_names,
    const std::vector<std::string>& ips) {
  absl::StatusOr<std::string> directory = NewDirectory();
  if (!directory.ok()) return directory.status();
  absl::StatusOr<Issued> issued =
      Issue(name, /*ca=*/true, SubjectAltName(dns_names, ips), nullptr);
  if (!issued.ok()) return issued.status();
  return WriteFiles(*issued, *directory, name);
}

absl::StatusOr<TestPki> WriteTestPki(const std::string& name) {
  absl::StatusOr<std::string> directory = NewDirectory();
  if (!directory.ok()) return directory.status();
  absl::StatusOr<Issued> ca = Issue(name + " CA", /*ca=*/true, "", nullptr);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<Issued> server =
      Issue(name + "-server", /*ca=*/false,
            SubjectAltName({"localhost"}, {"127.0.0.1"}), &*ca);
  if (!server.ok()) return server.status();
  absl::StatusOr<Issued> client =
      Issue(name + "-client", /*ca=*/false, "", &*ca);
  if (!client.ok()) return client.status();
  TestPki pki;
  for (auto [issued, stem, files] :
       {std::make_tuple(&*ca, "ca", &pki.ca),
        std::make_tuple(&*server, "server", &pki.server),
        std::make_tuple(&*client, "client", &pki.client)}) {
    absl::StatusOr<CertificateFiles> written =
        WriteFiles(*issued, *directory, stem);
    if (!written.ok()) return written.status();
    *files = *std::move(written);
  }
  return pki;
}

}  // namespace baton::testing
