#include "auth/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <rapidjson/document.h>

#include <set>

#include "util/base64url.h"
#include "util/json_depth.h"
#include "util/log_escape.h"

namespace fhirbulk {
namespace {

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

constexpr size_t kMaxJwksBytes = size_t{64} * 1024;
constexpr size_t kMaxJwksKeys = 32;
constexpr size_t kMaxJwksDepth = 16;
constexpr int kMinRsaBits = 2048;
constexpr size_t kP384CoordinateBytes = 48;

Status KeyError(size_t index, const std::string& what) {
  return Status::InvalidArgument("JWK Set: key " + std::to_string(index) + ": " + what);
}

// A base64url member decoded; empty result means missing or malformed.
bool Member(const rapidjson::Value& key, const char* name, std::string* out) {
  auto it = key.FindMember(name);
  if (it == key.MemberEnd() || !it->value.IsString()) return false;
  return Base64UrlDecode(std::string_view(it->value.GetString(), it->value.GetStringLength()),
                         out) &&
         !out->empty();
}

Result<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return Status::InvalidArgument("key material rejected by OpenSSL");
  }
  EvpPkeyPtr key(pkey);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) <= 0) {
    return Status::InvalidArgument("the public key is not valid");
  }
  return key;
}

Result<EvpPkeyPtr> RsaKey(const rapidjson::Value& key) {
  std::string n, e;
  if (!Member(key, "n", &n) || !Member(key, "e", &e)) {
    return Status::InvalidArgument("an RSA key needs base64url members n and e");
  }
  std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                                                 static_cast<int>(n.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                                                 static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) return Status::Internal("out of memory");
  if (BN_num_bits(bn_n.get()) < kMinRsaBits) {
    return Status::InvalidArgument("RSA modulus has " + std::to_string(BN_num_bits(bn_n.get())) +
                                   " bits; at least 2048 are required");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return Status::Internal("out of memory");
  }
  return FromData("RSA", bld.get());
}

Result<EvpPkeyPtr> EcKey(const rapidjson::Value& key) {
  auto crv = key.FindMember("crv");
  if (crv == key.MemberEnd() || !crv->value.IsString() ||
      std::string_view(crv->value.GetString()) != "P-384") {
    return Status::InvalidArgument("an EC key must have crv P-384 (ES384)");
  }
  std::string x, y;
  if (!Member(key, "x", &x) || !Member(key, "y", &y) || x.size() != kP384CoordinateBytes ||
      y.size() != kP384CoordinateBytes) {
    return Status::InvalidArgument("an EC P-384 key needs x and y of 48 bytes each");
  }
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return Status::Internal("out of memory");
  }
  return FromData("EC", bld.get());
}

// One key of a set, checked as the header describes.
Result<Jwk> ParseKey(const rapidjson::Value& k) {
  if (!k.IsObject()) return Status::InvalidArgument("not an object");
  for (const char* secret : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (k.HasMember(secret)) {
      return Status::InvalidArgument(std::string("has the private member \"") + secret +
                                     "\"; register the public key only");
    }
  }
  auto kid = k.FindMember("kid");
  if (kid == k.MemberEnd() || !kid->value.IsString() || kid->value.GetStringLength() == 0) {
    return Status::InvalidArgument("has no kid");
  }
  Jwk jwk;
  jwk.kid.assign(kid->value.GetString(), kid->value.GetStringLength());
  auto alg = k.FindMember("alg");
  if (alg != k.MemberEnd()) {
    if (!alg->value.IsString()) return Status::InvalidArgument("alg is not a string");
    jwk.alg = alg->value.GetString();
  }
  auto kty = k.FindMember("kty");
  if (kty == k.MemberEnd() || !kty->value.IsString()) return Status::InvalidArgument("has no kty");
  std::string_view type = kty->value.GetString();
  Result<EvpPkeyPtr> key = Status::Internal("unset");
  if (type == "RSA") {
    jwk.kty = KeyType::kRsa;
    if (!jwk.alg.empty() && jwk.alg != "RS384") {
      return Status::InvalidArgument("alg '" + LogEscape(jwk.alg, 32) +
                                     "' is not supported for RSA (use RS384)");
    }
    key = RsaKey(k);
  } else if (type == "EC") {
    jwk.kty = KeyType::kEc;
    if (!jwk.alg.empty() && jwk.alg != "ES384") {
      return Status::InvalidArgument("alg '" + LogEscape(jwk.alg, 32) +
                                     "' is not supported for EC (use ES384)");
    }
    key = EcKey(k);
  } else {
    return Status::InvalidArgument("kty '" + LogEscape(type, 32) +
                                   "' is not supported (RSA or EC)");
  }
  if (!key.ok()) return key.status();
  jwk.key = std::shared_ptr<EVP_PKEY>(std::move(key).value().release(), EvpPkeyFree());
  return jwk;
}

}  // namespace

Result<std::vector<Jwk>> ParseJwks(std::string_view json, bool skip_unusable_keys) {
  if (json.size() > kMaxJwksBytes) return Status::InvalidArgument("JWK Set larger than 64 KiB");
  if (!JsonNestingWithin(json, kMaxJwksDepth)) {
    return Status::InvalidArgument("JWK Set nested too deeply");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("JWK Set is not a JSON object");
  }
  auto keys = doc.FindMember("keys");
  if (keys == doc.MemberEnd() || !keys->value.IsArray()) {
    return Status::InvalidArgument("JWK Set has no \"keys\" array");
  }
  // Each key costs an OpenSSL key check (~3 ms for RSA): a set is small or it is refused.
  if (keys->value.Size() > kMaxJwksKeys) {
    return Status::InvalidArgument("JWK Set has more than " + std::to_string(kMaxJwksKeys) +
                                   " keys");
  }
  std::vector<Jwk> out;
  std::set<std::string> kids;
  size_t index = 0;
  for (const auto& k : keys->value.GetArray()) {
    index++;
    auto jwk = ParseKey(k);
    if (!jwk.ok()) {
      if (skip_unusable_keys) continue;
      return KeyError(index, jwk.status().message());
    }
    // A repeated kid in a fetched set is left to key resolution, which refuses ambiguity.
    if (!kids.insert(jwk->kid).second && !skip_unusable_keys) {
      return KeyError(index, "kid '" + LogEscape(jwk->kid, 64) + "' repeated");
    }
    out.push_back(std::move(jwk).value());
  }
  if (out.empty()) {
    return Status::InvalidArgument(skip_unusable_keys ? "JWK Set has no usable key"
                                                      : "JWK Set has no keys");
  }
  return out;
}

}  // namespace fhirbulk
