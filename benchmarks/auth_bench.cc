// Authorization micro-benchmarks, each beside the raw cryptography it cannot avoid (same run):
//
//   client assertions   ParseCompactJws + VerifyAsymmetric of an ES384 and an RS384 (2048-bit)
//                       SMART assertion (BM_VerifyAssertion); the parse alone
//                       (BM_ParseAssertion); baseline: OpenSSL's EVP_DigestVerify of the same
//                       signature over the same input, key and context set up each time as
//                       VerifyAsymmetric does (BM_RawVerifyBaseline).
//   client keys         ParseJwks of the client's registered one-key JWK Set, RS384 and ES384:
//                       the token endpoint parses (and EVP_PKEY_public_check()s) the stored set
//                       on every token request (auth/token_endpoint.cc ResolveKey), so this is
//                       part of each token's cost (BM_ParseJwks).
//   access tokens       VerifyAccessToken of a server token (HS256, what every API request and
//                       download does); baseline: the HMAC-SHA256 of its signing input alone
//                       (HmacSha256, as the server computes it), and the same MAC with the
//                       algorithm fetched once (BM_HmacPrefetchedAlternative, not server code).
//   signed file URLs    VerifyFileQuery; baseline: the HMAC-SHA256 of the MAC input alone.
//   scopes              ScopeSet::Parse of "system/*.read" and of a five-scope list.
//
//   fhirbulk_bench --benchmark_filter='Assertion|RawVerify|Jwks|AccessToken|FileQuery|Hmac|Scope'

#include <benchmark/benchmark.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "auth/access_token.h"
#include "auth/jwk.h"
#include "auth/jws.h"
#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "auth/signed_url.h"
#include "auth/token_cache.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace {

constexpr int64_t kNow = 1750000000;

std::shared_ptr<EVP_PKEY> MakeKey(bool rsa) {
  EVP_PKEY* k = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  if (k == nullptr) std::abort();
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

std::string SignSha384(EVP_PKEY* k, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, k) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) {
    std::abort();
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     input.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  return sig;
}

std::string DerToRaw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) std::abort();
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(96, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, 48) != 48 || BN_bn2binpad(s, o + 48, 48) != 48) std::abort();
  ECDSA_SIG_free(sig);
  return out;
}

// A client assertion as a SMART client sends it, with its key and DER signature.
struct Assertion {
  Jwk key;
  std::string token;
  std::string signing_input;
  std::string der_signature;  // what OpenSSL verifies (RSA: the signature itself)
};

const Assertion& MakeAssertion(bool rsa) {
  static Assertion* cache[2] = {nullptr, nullptr};
  Assertion*& a = cache[rsa ? 1 : 0];
  if (a != nullptr) return *a;
  a = new Assertion();
  a->key.kty = rsa ? KeyType::kRsa : KeyType::kEc;
  a->key.kid = rsa ? "rsa-1" : "ec-1";
  a->key.key = MakeKey(rsa);
  const std::string alg = rsa ? "RS384" : "ES384";
  std::string header = "{\"alg\":\"" + alg + "\",\"kid\":\"" + a->key.kid + "\",\"typ\":\"JWT\"}";
  std::string claims =
      "{\"iss\":\"Yp3oUq8cV2rRkQ1-xTz9wA\",\"sub\":\"Yp3oUq8cV2rRkQ1-xTz9wA\","
      "\"aud\":\"https://ehr.example.org/fhir/auth/token\",\"exp\":" +
      std::to_string(kNow + 240) + ",\"jti\":\"c0b8d4e2-6a51-4f0e-9f39-7d2a1b8e5c43\"}";
  a->signing_input = Base64UrlEncode(header) + "." + Base64UrlEncode(claims);
  a->der_signature = SignSha384(a->key.key.get(), a->signing_input);
  std::string jws_sig = rsa ? a->der_signature : DerToRaw(a->der_signature);
  a->token = a->signing_input + "." + Base64UrlEncode(jws_sig);
  // sanity: it verifies
  auto parsed = ParseCompactJws(a->token);
  if (!parsed.ok() || !VerifyAsymmetric(*parsed, a->key).ok()) std::abort();
  return *a;
}

void BM_VerifyAssertion(benchmark::State& state) {
  const Assertion& a = MakeAssertion(state.range(0) != 0);
  for (auto _ : state) {
    auto parsed = ParseCompactJws(a.token);
    if (!parsed.ok()) {
      state.SkipWithError(parsed.status().ToString().c_str());
      return;
    }
    Status s = VerifyAsymmetric(*parsed, a.key);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  state.SetLabel(state.range(0) ? "RS384" : "ES384");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyAssertion)->ArgName("rsa")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_ParseAssertion(benchmark::State& state) {
  const Assertion& a = MakeAssertion(state.range(0) != 0);
  for (auto _ : state) {
    auto parsed = ParseCompactJws(a.token);
    if (!parsed.ok()) {
      state.SkipWithError(parsed.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(parsed->signature.data());
  }
  state.SetLabel(state.range(0) ? "RS384" : "ES384");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAssertion)->ArgName("rsa")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Baseline: the signature check alone (a fresh EVP_MD_CTX per call, as VerifyAsymmetric).
void BM_RawVerifyBaseline(benchmark::State& state) {
  const Assertion& a = MakeAssertion(state.range(0) != 0);
  const auto* sig = reinterpret_cast<const unsigned char*>(a.der_signature.data());
  const auto* in = reinterpret_cast<const unsigned char*>(a.signing_input.data());
  for (auto _ : state) {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, a.key.key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), sig, a.der_signature.size(), in, a.signing_input.size()) != 1) {
      state.SkipWithError("verify");
      return;
    }
  }
  state.SetLabel(state.range(0) ? "RS384" : "ES384");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawVerifyBaseline)->ArgName("rsa")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

std::string BnParam(EVP_PKEY* k, const char* name, int pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &raw) != 1) std::abort();
  int len = pad_to > 0 ? pad_to : BN_num_bytes(raw);
  std::string out(static_cast<size_t>(len), '\0');
  if (BN_bn2binpad(raw, reinterpret_cast<unsigned char*>(out.data()), len) != len) std::abort();
  BN_free(raw);
  return out;
}

// The client's public JWK Set as registered (one key, with kid and alg).
std::string JwksOf(const Assertion& a) {
  EVP_PKEY* k = a.key.key.get();
  std::string jwk =
      a.key.kty == KeyType::kRsa
          ? "{\"kty\":\"RSA\",\"kid\":\"" + a.key.kid + "\",\"alg\":\"RS384\",\"n\":\"" +
                Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
                Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_RSA_E)) + "\"}"
          : "{\"kty\":\"EC\",\"kid\":\"" + a.key.kid +
                "\",\"alg\":\"ES384\",\"crv\":\"P-384\",\"x\":\"" +
                Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_X, 48)) + "\",\"y\":\"" +
                Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_Y, 48)) + "\"}";
  return "{\"keys\":[" + jwk + "]}";
}

void BM_ParseJwks(benchmark::State& state) {
  const std::string jwks = JwksOf(MakeAssertion(state.range(0) != 0));
  for (auto _ : state) {
    auto keys = ParseJwks(jwks);
    if (!keys.ok() || keys->size() != 1) {
      state.SkipWithError(keys.ok() ? "expected one key" : keys.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(keys->front().key.get());
  }
  state.SetLabel(state.range(0) ? "RS384" : "ES384");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseJwks)->ArgName("rsa")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// --- access tokens and signed URLs (HMAC-SHA256) ----------------------------------------------

const KeyRing& Ring() {
  static const KeyRing* ring = [] {
    auto r =
        KeyRing::Parse("k1 3f1c9a7e5b2d4068a1c3e5f7092b4d6f8a0c2e4f6a8b0d2f4e6a8c0e2f4a6b8d\n");
    if (!r.ok()) std::abort();
    return new KeyRing(std::move(r).value());
  }();
  return *ring;
}

const std::string& AccessToken() {
  static const std::string* token = [] {
    auto scopes = ScopeSet::Parse("system/*.read");
    if (!scopes.ok()) std::abort();
    return new std::string(IssueAccessToken(Ring(), "Yp3oUq8cV2rRkQ1-xTz9wA", *scopes, kNow, 300));
  }();
  return *token;
}

void BM_VerifyAccessToken(benchmark::State& state) {
  const std::string& token = AccessToken();
  for (auto _ : state) {
    auto p = VerifyAccessToken(Ring(), token, kNow + 10);
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(p->client_id.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyAccessToken);

// Baseline: HMAC-SHA256 of the token's signing input (the MAC alone).
void BM_HmacAccessTokenBaseline(benchmark::State& state) {
  const std::string& token = AccessToken();
  std::string input = token.substr(0, token.rfind('.'));
  for (auto _ : state) {
    std::string mac = HmacSha256(Ring().signing_secret(), input);
    benchmark::DoNotOptimize(mac.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HmacAccessTokenBaseline);

// The same MAC with the HMAC algorithm fetched once and one keyed context reused
// (EVP_MAC_init with a NULL key keeps the key), written out here: what auth/jws.cc HmacSha256
// does since issue 17 (per thread and secret) instead of HMAC()'s EVP_Q_mac, which fetched the
// algorithm and the digest by name on every call. The floor for BM_HmacAccessTokenBaseline.
void BM_HmacPrefetchedAlternative(benchmark::State& state) {
  const std::string& token = AccessToken();
  std::string input = token.substr(0, token.rfind('.'));
  const std::string& secret = Ring().signing_secret();
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (ctx == nullptr || EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret.data()),
                                     secret.size(), params) != 1) {
    state.SkipWithError("EVP_MAC setup");
    return;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  for (auto _ : state) {
    size_t len = 0;
    if (EVP_MAC_init(ctx, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input.data()), input.size()) !=
            1 ||
        EVP_MAC_final(ctx, out, &len, sizeof(out)) != 1) {
      state.SkipWithError("EVP_MAC");
      break;
    }
    benchmark::DoNotOptimize(out[0]);
  }
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HmacPrefetchedAlternative);

// A verified token remembered per process (auth/token_cache.h): what a download or a poll
// with the same bearer token pays after its first request, against BM_VerifyAccessToken.
void BM_AccessTokenCacheHit(benchmark::State& state) {
  const std::string& token = AccessToken();
  AccessTokenCache cache(std::make_shared<const KeyRing>(Ring()), 300, 4096);
  for (auto _ : state) {
    auto p = cache.Verify(token, kNow + 10);
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize((*p)->client_id.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AccessTokenCacheHit);

constexpr std::string_view kJob = "0b7e3c1a-5f2d-4e8b-9a6c-1d3f5b7e9a2c";
constexpr std::string_view kFile = "Observation.3.1.ndjson";

void BM_VerifyFileQuery(benchmark::State& state) {
  std::string query = SignFileQuery(Ring(), kJob, kFile, "Yp3oUq8cV2rRkQ1-xTz9wA", kNow + 3600);
  for (auto _ : state) {
    auto who = VerifyFileQuery(Ring(), kJob, kFile, query, kNow);
    if (!who.ok()) {
      state.SkipWithError(who.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(who->data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyFileQuery);

// Baseline: HMAC-SHA256 of the same MAC input (auth/signed_url.h).
void BM_HmacFileQueryBaseline(benchmark::State& state) {
  std::string input = "fhir-bulk-file-v1\n" + std::string(kJob) + "/" + std::string(kFile) +
                      "\nYp3oUq8cV2rRkQ1-xTz9wA\n" + std::to_string(kNow + 3600);
  for (auto _ : state) {
    std::string mac = HmacSha256(Ring().signing_secret(), input);
    benchmark::DoNotOptimize(mac.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HmacFileQueryBaseline);

// --- scopes ---------------------------------------------------------------------------------

void BM_ScopeSetParse(benchmark::State& state) {
  const char* text = state.range(0) == 0
                         ? "system/*.read"
                         : "system/Patient.read system/Observation.rs system/Condition.read "
                           "system/Encounter.r system/MedicationRequest.read";
  for (auto _ : state) {
    auto s = ScopeSet::Parse(text);
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(s->scopes().data());
  }
  state.SetLabel(state.range(0) == 0 ? "1 scope" : "5 scopes");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScopeSetParse)->ArgName("list")->Arg(0)->Arg(1);

}  // namespace
}  // namespace fhirbulk
