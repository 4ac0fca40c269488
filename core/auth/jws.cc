#include "auth/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "util/base64url.h"
#include "util/json_depth.h"

namespace fhirbulk {
namespace {

constexpr size_t kMaxTokenBytes = size_t{16} * 1024;
// JOSE headers and JWT claims are flat objects; a little nesting (aud arrays, cnf) is fine.
constexpr size_t kMaxJsonDepth = 16;
constexpr size_t kEs384SignatureBytes = 96;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::string StringMember(const rapidjson::Value& obj, const char* name, bool* present) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    if (present != nullptr) *present = it != obj.MemberEnd();
    return {};
  }
  if (present != nullptr) *present = true;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// JWS ES384 signatures are R||S; OpenSSL verifies DER.
bool RawEcdsaToDer(const std::string& raw, std::string* der) {
  if (raw.size() != kEs384SignatureBytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p, kEs384SignatureBytes / 2, nullptr);
  BIGNUM* s = BN_bin2bn(p + kEs384SignatureBytes / 2, kEs384SignatureBytes / 2, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der->resize(static_cast<size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(der->data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

}  // namespace

Result<ParsedJws> ParseCompactJws(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return Status::InvalidArgument("token too large");
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return Status::InvalidArgument("not a compact JWS (header.payload.signature)");
  }
  std::string header_json, payload_json;
  ParsedJws jws;
  if (!Base64UrlDecode(token.substr(0, d1), &header_json) ||
      !Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), &payload_json) ||
      !Base64UrlDecode(token.substr(d2 + 1), &jws.signature)) {
    return Status::InvalidArgument("a JWS part is not base64url");
  }
  if (!JsonNestingWithin(header_json, kMaxJsonDepth) ||
      !JsonNestingWithin(payload_json, kMaxJsonDepth)) {
    return Status::InvalidArgument("JWS JSON nested too deeply");
  }
  rapidjson::Document header;
  header.Parse<rapidjson::kParseIterativeFlag>(header_json.data(), header_json.size());
  if (header.HasParseError() || !header.IsObject()) {
    return Status::InvalidArgument("the JWS header is not a JSON object");
  }
  bool alg_present = false;
  jws.alg = StringMember(header, "alg", &alg_present);
  if (jws.alg.empty()) return Status::InvalidArgument("the JWS header has no alg");
  jws.kid = StringMember(header, "kid", nullptr);
  jws.typ = StringMember(header, "typ", &jws.has_typ);
  jws.jku = StringMember(header, "jku", nullptr);
  // Critical extensions we do not understand must make the token invalid (RFC 7515 4.1.11).
  if (header.HasMember("crit")) return Status::InvalidArgument("unsupported JWS crit header");
  jws.claims.Parse<rapidjson::kParseIterativeFlag>(payload_json.data(), payload_json.size());
  if (jws.claims.HasParseError() || !jws.claims.IsObject()) {
    return Status::InvalidArgument("the JWT claims are not a JSON object");
  }
  jws.signing_input.assign(token.substr(0, d2));
  return jws;
}

Status VerifyAsymmetric(const ParsedJws& jws, const Jwk& key) {
  bool rsa = jws.alg == "RS384";
  bool ec = jws.alg == "ES384";
  if (!rsa && !ec) return Status::Unauthenticated("algorithm '" + jws.alg + "' is not allowed");
  if ((rsa && key.kty != KeyType::kRsa) || (ec && key.kty != KeyType::kEc)) {
    return Status::Unauthenticated("algorithm " + jws.alg + " does not match the key type");
  }
  if (!key.alg.empty() && key.alg != jws.alg) {
    return Status::Unauthenticated("the key is registered for " + key.alg);
  }
  std::string der;
  const std::string* sig = &jws.signature;
  if (ec) {
    if (!RawEcdsaToDer(jws.signature, &der)) {
      return Status::Unauthenticated("ES384 signature is not 96 bytes of R||S");
    }
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key.key.get()) != 1) {
    return Status::Internal("cannot initialise signature verification");
  }
  int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
      reinterpret_cast<const unsigned char*>(jws.signing_input.data()), jws.signing_input.size());
  if (ok != 1) return Status::Unauthenticated("signature does not verify");
  return Status::OK();
}

namespace {

// HMAC() (EVP_Q_mac) fetches the HMAC algorithm and SHA-256 by name on every call, which
// costs more than the MAC of a short token. Instead: the algorithm is fetched once per
// process, and each thread keeps a context keyed with each secret it has used (a key ring
// holds a handful); EVP_MAC_init with no key restarts a context with its key.
struct MacFree {
  void operator()(EVP_MAC* m) const { EVP_MAC_free(m); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

EVP_MAC* HmacAlgorithm() {
  static const std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  return mac.get();
}

constexpr size_t kMaxKeyedContexts = 8;  // per thread; more secrets than that: start over

// nullptr when OpenSSL cannot set one up (then the caller falls back to HMAC()).
EVP_MAC_CTX* KeyedContext(std::string_view secret) {
  thread_local std::vector<std::pair<std::string, MacCtxPtr>> contexts;
  for (auto& [key, ctx] : contexts) {
    if (key == secret)
      return EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) == 1 ? ctx.get() : nullptr;
  }
  EVP_MAC* mac = HmacAlgorithm();
  if (mac == nullptr) return nullptr;
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                           secret.size(), params) != 1) {
    return nullptr;
  }
  if (contexts.size() >= kMaxKeyedContexts) contexts.clear();
  contexts.emplace_back(std::string(secret), std::move(ctx));
  return contexts.back().second.get();
}

}  // namespace

std::string HmacSha256(std::string_view secret, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  EVP_MAC_CTX* ctx = KeyedContext(secret);
  size_t mac_len = 0;
  if (ctx != nullptr &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
      EVP_MAC_final(ctx, out, &mac_len, sizeof(out)) == 1) {
    return std::string(reinterpret_cast<const char*>(out), mac_len);
  }
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace fhirbulk
