#include "client/signing_key.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "client/bounded_json.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr size_t kP384Bytes = 48;  // one coordinate, and one of R and S

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct SigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// The reason OpenSSL gave last (and clears its error queue), for messages.
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// JWK values are unpadded base64url (RFC 7517); tolerate padding some generators add.
bool DecodeMember(const rapidjson::Value& jwk, const char* name, std::string* out) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd() || !it->value.IsString()) return false;
  std::string_view text(it->value.GetString(), it->value.GetStringLength());
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  return Base64UrlDecode(text, out) && !out->empty();
}

Bn ToBn(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

std::string BnBytes(const BIGNUM* bn, int pad_to = 0) {
  int n = pad_to > 0 ? pad_to : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(n), '\0');
  if (pad_to > 0) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), n);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  return out;
}

std::string StringMember(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : "";
}

Result<EVP_PKEY*> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_KEYPAIR, params.get()) <= 0) {
    return Status::InvalidArgument(std::string("unusable ") + type + " JWK: " + OpenSslError());
  }
  return pkey;
}

Result<EVP_PKEY*> RsaFromJwk(const rapidjson::Value& jwk) {
  std::string n, e, d;
  if (!DecodeMember(jwk, "n", &n) || !DecodeMember(jwk, "e", &e)) {
    return Status::InvalidArgument("RSA JWK without valid n and e");
  }
  if (!DecodeMember(jwk, "d", &d)) {
    return Status::InvalidArgument(
        "the JWK is a public key (no d): the client signs with its "
        "private key");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  std::vector<Bn> keep;  // the builder refers to these until to_param
  auto push = [&](const char* param, const std::string& bytes) {
    keep.push_back(ToBn(bytes));
    return keep.back() && OSSL_PARAM_BLD_push_BN(bld.get(), param, keep.back().get()) == 1;
  };
  bool ok = bld && push(OSSL_PKEY_PARAM_RSA_N, n) && push(OSSL_PKEY_PARAM_RSA_E, e) &&
            push(OSSL_PKEY_PARAM_RSA_D, d);
  // The CRT members are optional as a group (RFC 7518 §6.3.2): use them when all are there.
  std::string p, q, dp, dq, qi;
  if (ok && DecodeMember(jwk, "p", &p) && DecodeMember(jwk, "q", &q) &&
      DecodeMember(jwk, "dp", &dp) && DecodeMember(jwk, "dq", &dq) &&
      DecodeMember(jwk, "qi", &qi)) {
    ok = push(OSSL_PKEY_PARAM_RSA_FACTOR1, p) && push(OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
         push(OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) && push(OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) &&
         push(OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi);
  }
  if (!ok) return Status::InvalidArgument("RSA JWK: " + OpenSslError());
  return FromData("RSA", bld.get());
}

Result<EVP_PKEY*> EcFromJwk(const rapidjson::Value& jwk) {
  std::string crv = StringMember(jwk, "crv");
  if (crv != "P-384") {
    return Status::InvalidArgument("EC JWK on curve '" + crv + "': ES384 needs P-384");
  }
  std::string x, y, d;
  if (!DecodeMember(jwk, "x", &x) || !DecodeMember(jwk, "y", &y) || x.size() != kP384Bytes ||
      y.size() != kP384Bytes) {
    return Status::InvalidArgument("EC JWK: x and y must be 48-byte P-384 coordinates");
  }
  if (!DecodeMember(jwk, "d", &d)) {
    return Status::InvalidArgument(
        "the JWK is a public key (no d): the client signs with its "
        "private key");
  }
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  Bn priv = ToBn(d);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld || !priv ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1) {
    return Status::InvalidArgument("EC JWK: " + OpenSslError());
  }
  return FromData("EC", bld.get());
}

// ECDSA signatures: OpenSSL speaks DER (SEQUENCE of two INTEGERs), JWS raw R||S (RFC 7518
// §3.4), each zero-padded to the curve's size.
Result<std::string> DerToRaw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return Status::Internal("ECDSA signature is not DER: " + OpenSslError());
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  return BnBytes(r, kP384Bytes) + BnBytes(s, kP384Bytes);
}

Result<std::string> RawToDer(const std::string& raw) {
  if (raw.size() != 2 * kP384Bytes) return Status::InvalidArgument("not a 96-byte R||S");
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), kP384Bytes, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + kP384Bytes, kP384Bytes,
                        nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return Status::Internal("ECDSA_SIG: " + OpenSslError());
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

bool IsEc(const EVP_PKEY* pkey) { return EVP_PKEY_is_a(pkey, "EC") == 1; }

// Verifies a JWS signature (raw R||S for EC) with the key's public half.
bool Verify(EVP_PKEY* pkey, std::string_view input, const std::string& jws_sig) {
  std::string sig = jws_sig;
  if (IsEc(pkey)) {
    auto der = RawToDer(jws_sig);
    if (!der.ok()) return false;
    sig = *der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> md(EVP_MD_CTX_new());
  bool ok =
      md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha384(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::string ReadWholeFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  return ss.str();
}

int NoPassphrase(char*, int, int, void*) { return -1; }

}  // namespace

void SigningKey::PkeyDeleter::operator()(evp_pkey_st* p) const { EVP_PKEY_free(p); }

SigningKey::SigningKey(Pkey pkey, std::string alg) : pkey_(std::move(pkey)), alg_(std::move(alg)) {}
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

Result<SigningKey> SigningKey::LoadFile(const std::string& path, const std::string& kid) {
  bool ok = false;
  std::string text = ReadWholeFile(path, &ok);
  if (!ok) return Status::InvalidArgument("cannot read key file " + path);
  size_t first = text.find_first_not_of(" \t\r\n");
  bool jwk = first != std::string::npos && text[first] == '{';
  Result<SigningKey> key = jwk ? FromJwk(text, kid) : FromPem(text, kid);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

Result<SigningKey> SigningKey::FromJwk(std::string_view json, const std::string& kid) {
  rapidjson::Document doc;
  if (!ParseBoundedJson(json, &doc) || !doc.IsObject()) {
    return Status::InvalidArgument("the key is not a JSON object (JWK or JWK Set)");
  }
  const rapidjson::Value* jwk = &doc;
  auto keys = doc.FindMember("keys");
  if (keys != doc.MemberEnd()) {
    if (!keys->value.IsArray()) return Status::InvalidArgument("JWK Set: keys is not an array");
    jwk = nullptr;
    int private_keys = 0;
    for (const auto& k : keys->value.GetArray()) {
      if (!k.IsObject() || !k.HasMember("d")) continue;
      if (!kid.empty() && StringMember(k, "kid") != kid) continue;
      private_keys++;
      jwk = &k;
    }
    if (private_keys == 0) {
      return Status::InvalidArgument(kid.empty() ? "the JWK Set holds no private key"
                                                 : "no private key with kid '" + kid + "'");
    }
    if (private_keys > 1) {
      return Status::InvalidArgument("the JWK Set holds several private keys; choose one by kid");
    }
  }
  std::string kty = StringMember(*jwk, "kty");
  Result<EVP_PKEY*> pkey =
      kty == "RSA" ? RsaFromJwk(*jwk)
      : kty == "EC"
          ? EcFromJwk(*jwk)
          : Result<EVP_PKEY*>(Status::InvalidArgument("JWK kty '" + kty + "': RSA or EC wanted"));
  if (!pkey.ok()) return pkey.status();
  return Finish(Pkey(*pkey), StringMember(*jwk, "alg"), StringMember(*jwk, "kid"), kid);
}

Result<SigningKey> SigningKey::FromPem(std::string_view pem, const std::string& kid) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* pkey =
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr;
  if (pkey == nullptr) {
    std::string why = OpenSslError();
    if (pem.find("ENCRYPTED") != std::string_view::npos) {
      return Status::InvalidArgument(
          "encrypted PEM keys are not supported (decrypt it with 'openssl pkey')");
    }
    return Status::InvalidArgument("no private key in the PEM text: " + why);
  }
  return Finish(Pkey(pkey), "", "", kid);
}

Result<SigningKey> SigningKey::Finish(Pkey pkey, const std::string& jwk_alg,
                                      const std::string& jwk_kid, const std::string& want_kid) {
  std::string alg;
  if (EVP_PKEY_is_a(pkey.get(), "RSA") == 1) {
    if (EVP_PKEY_get_bits(pkey.get()) < 2048) {
      return Status::InvalidArgument("RSA keys must have at least 2048 bits");
    }
    alg = "RS384";
  } else if (IsEc(pkey.get())) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1 ||
        std::string(group) != "secp384r1") {
      return Status::InvalidArgument(std::string("EC key on curve '") + group +
                                     "': ES384 needs P-384 (secp384r1)");
    }
    alg = "ES384";
  } else {
    return Status::InvalidArgument("only RSA (RS384) and EC P-384 (ES384) keys can sign");
  }
  if (!jwk_alg.empty() && jwk_alg != alg) {
    return Status::InvalidArgument("the JWK says alg " + jwk_alg +
                                   "; SMART Backend Services "
                                   "uses " +
                                   alg + " for this key");
  }
  SigningKey key(std::move(pkey), alg);
  // A private half that does not match the public half would only fail at the server.
  static constexpr std::string_view kProbe = "fhir-bulk key self-test";
  auto sig = key.Sign(kProbe);
  if (!sig.ok() || !Verify(key.pkey_.get(), kProbe, *sig)) {
    return Status::InvalidArgument("the private key does not match its public key");
  }
  key.kid_ = !want_kid.empty() ? want_kid : !jwk_kid.empty() ? jwk_kid : key.Thumbprint();
  return key;
}

Result<std::string> SigningKey::Sign(std::string_view signing_input) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> md(EVP_MD_CTX_new());
  size_t len = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha384(), nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return Status::Internal("signing: " + OpenSslError());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return Status::Internal("signing: " + OpenSslError());
  }
  sig.resize(len);
  if (alg_ == "ES384") return DerToRaw(sig);
  return sig;
}

std::string SigningKey::ThumbprintInput() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  if (alg_ == "RS384") {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_E, &e);
    w.Key("e");
    w.String(Base64UrlEncode(e ? BnBytes(e) : ""));
    w.Key("kty");
    w.String("RSA");
    w.Key("n");
    w.String(Base64UrlEncode(n ? BnBytes(n) : ""));
    BN_free(n);
    BN_free(e);
  } else {
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    w.Key("crv");
    w.String("P-384");
    w.Key("kty");
    w.String("EC");
    w.Key("x");
    w.String(Base64UrlEncode(x ? BnBytes(x, kP384Bytes) : ""));
    w.Key("y");
    w.String(Base64UrlEncode(y ? BnBytes(y, kP384Bytes) : ""));
    BN_free(x);
    BN_free(y);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string SigningKey::Thumbprint() const {
  std::string input = ThumbprintInput();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), len));
}

std::string SigningKey::PublicJwk() const {
  rapidjson::Document members;
  std::string input = ThumbprintInput();
  members.Parse(input.data(), input.size());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("kty");
  w.String(StringMember(members, "kty"));
  w.Key("kid");
  w.String(kid_);
  w.Key("alg");
  w.String(alg_);
  w.Key("use");
  w.String("sig");
  for (const char* name : {"crv", "x", "y", "n", "e"}) {
    if (members.HasMember(name)) {
      w.Key(name);
      w.String(StringMember(members, name));
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RandomJti() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // The CSPRNG failing is not something to paper over with a weaker source.
    std::abort();
  }
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

Result<std::string> MakeClientAssertion(const SigningKey& key, const std::string& client_id,
                                        const std::string& token_url, int64_t now_seconds,
                                        int lifetime_seconds, const std::string& jti) {
  rapidjson::StringBuffer header;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(header);
    w.StartObject();
    w.Key("alg");
    w.String(key.alg());
    w.Key("kid");
    w.String(key.kid());
    w.Key("typ");
    w.String("JWT");
    w.EndObject();
  }
  rapidjson::StringBuffer claims;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(claims);
    w.StartObject();
    w.Key("iss");
    w.String(client_id);
    w.Key("sub");
    w.String(client_id);
    w.Key("aud");
    w.String(token_url);
    w.Key("exp");
    w.Int64(now_seconds + lifetime_seconds);
    w.Key("jti");
    w.String(jti.empty() ? RandomJti() : jti);
    w.EndObject();
  }
  std::string input = Base64UrlEncode(std::string_view(header.GetString(), header.GetSize())) +
                      "." + Base64UrlEncode(std::string_view(claims.GetString(), claims.GetSize()));
  auto sig = key.Sign(input);
  if (!sig.ok()) return sig.status();
  return input + "." + Base64UrlEncode(*sig);
}

}  // namespace client
}  // namespace fhirbulk
