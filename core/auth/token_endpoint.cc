#include "auth/token_endpoint.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iterator>
#include <map>

#include "auth/access_token.h"
#include "auth/client_store.h"
#include "auth/jwk.h"
#include "auth/jwks_fetcher.h"
#include "auth/jws.h"
#include "auth/scopes.h"
#include "http/query_string.h"
#include "util/log_escape.h"
#include "util/mutex.h"

namespace fhirbulk {
namespace {

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr int64_t kMaxAssertionLifetime = 300;
constexpr size_t kMaxJtiLength = 256;
constexpr double kMinRefetchSeconds = 10;

TokenResult Error(const char* error, const std::string& description,
                  const std::string& detail = {}) {
  TokenResult t;
  t.response.status = 400;
  t.response.content_type = "application/json";
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("error");
  w.String(error);
  w.Key("error_description");
  w.String(description);
  w.EndObject();
  t.response.body.assign(b.GetString(), b.GetSize());
  t.response.AddHeader("Cache-Control", "no-store");
  t.response.AddHeader("Pragma", "no-cache");
  t.detail = std::string(error) + ": " + (detail.empty() ? description : detail);
  t.error = error;
  return t;
}

// RFC 6749 has no token-endpoint error for overload; temporarily_unavailable (section 4.1.2.1)
// is what OAuth clients recognise, with a 503 and a Retry-After they can honour.
TokenResult TemporarilyUnavailable(const std::string& description, int retry_after_seconds) {
  TokenResult t = Error("temporarily_unavailable", description);
  t.response.status = 503;
  t.response.AddHeader("Retry-After", std::to_string(retry_after_seconds));
  return t;
}

TokenResult InvalidClient(const std::string& description, const std::string& detail = {}) {
  return Error("invalid_client", description, detail);
}

bool IsFormContentType(std::string_view ct) {
  constexpr std::string_view kForm = "application/x-www-form-urlencoded";
  if (ct.size() < kForm.size()) return false;
  for (size_t i = 0; i < kForm.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(ct[i])) != kForm[i]) return false;
  }
  std::string_view rest = ct.substr(kForm.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest.empty() || rest.front() == ';';
}

// Steps 1-3; fills *form on success.
std::optional<TokenResult> Precheck(std::string_view content_type, std::string_view body,
                                    TokenForm* form) {
  if (!IsFormContentType(content_type)) {
    return Error("invalid_request", "Content-Type must be application/x-www-form-urlencoded");
  }
  // Bounded before splitting: a token request is four short fields and one assertion.
  if (body.size() > kMaxTokenFormBytes) {
    return Error("invalid_request", "the form body is larger than " +
                                        std::to_string(kMaxTokenFormBytes / 1024) + " KiB");
  }
  if (static_cast<size_t>(std::count(body.begin(), body.end(), '&')) >= kMaxTokenFormFields) {
    return Error("invalid_request",
                 "the form body has more than " + std::to_string(kMaxTokenFormFields) + " fields");
  }
  auto params = SplitQueryString(body);
  if (!params.ok()) return Error("invalid_request", "the form body is malformed");
  for (const QueryParam& p : *params) {
    if (p.name.size() > kMaxTokenFieldNameBytes) {
      return Error("invalid_request", "a form field name is too long");
    }
    auto value = PercentDecode(p.raw_value, true);
    if (value.ok() && value->size() > kMaxTokenFieldBytes) {
      return Error("invalid_request", "form field " + LogEscape(p.name, 64) + " is too long");
    }
    if (!value.ok()) return Error("invalid_request", "the form body is malformed");
    if (p.name == "scope" && value->find_first_not_of(' ') == std::string::npos) {
      // Sent but empty (or blanks): a request for no access at all, which RFC 6749 §5.2
      // calls an invalid scope; checked before "empty = omitted" below.
      return Error("invalid_scope", "the scope parameter is empty");
    }
    if (value->empty()) continue;  // RFC 6749: an empty parameter is an omitted one
    if (!form->fields.emplace(p.name, std::move(value).value()).second) {
      return Error("invalid_request", "parameter " + LogEscape(p.name, 64) + " is repeated");
    }
  }
  for (const char* required :
       {"grant_type", "client_assertion_type", "client_assertion", "scope"}) {
    if (form->fields.count(required) == 0) {
      return Error("invalid_request", std::string("missing parameter ") + required);
    }
  }
  if (form->get("grant_type") != "client_credentials") {
    return Error("unsupported_grant_type", "only client_credentials is supported");
  }
  if (form->get("client_assertion_type") != kJwtBearer) {
    return InvalidClient("client_assertion_type must be " + std::string(kJwtBearer));
  }
  return std::nullopt;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

const rapidjson::Value* Claim(const rapidjson::Value& claims, const char* name) {
  auto it = claims.FindMember(name);
  return it == claims.MemberEnd() ? nullptr : &it->value;
}

std::string StringClaim(const rapidjson::Value& claims, const char* name) {
  const rapidjson::Value* v = Claim(claims, name);
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength())
                                       : std::string();
}

// NumericDate: integer seconds (a JSON number; fractions are truncated as RFC 7519 allows).
// Numbers beyond +-2^62 (1e300, 2^64-1) are clamped there: converting them would be undefined
// behaviour, and clamped they still compare as far past or far future.
bool TimeClaim(const rapidjson::Value& claims, const char* name, int64_t* out) {
  const rapidjson::Value* v = Claim(claims, name);
  if (v == nullptr || !v->IsNumber()) return false;
  if (v->IsInt64()) {
    *out = v->GetInt64();
    return true;
  }
  constexpr double kLimit = 4611686018427387904.0;  // 2^62
  double d = v->GetDouble();
  if (d >= kLimit) {
    *out = int64_t{1} << 62;
  } else if (d <= -kLimit) {
    *out = -(int64_t{1} << 62);
  } else {
    *out = static_cast<int64_t>(d);
  }
  return true;
}

bool AudienceMatches(const rapidjson::Value& claims, const std::string& token_url) {
  const rapidjson::Value* aud = Claim(claims, "aud");
  if (aud == nullptr) return false;
  if (aud->IsString()) return token_url == aud->GetString();
  if (!aud->IsArray()) return false;
  for (const auto& a : aud->GetArray()) {
    if (a.IsString() && token_url == a.GetString()) return true;
  }
  return false;
}

// ParseJwks with a per-process memo keyed by the JWK Set text: building and checking the
// OpenSSL keys (EVP_PKEY_public_check: ~3 ms for RSA-2048) would otherwise dominate every
// token request. Same text, same keys, so the memo never goes stale.
Result<std::vector<Jwk>> ParseJwksMemo(const std::string& json, bool skip_unusable_keys) {
  constexpr size_t kMaxMemo = 512;
  static Mutex mu;
  static std::map<std::pair<std::string, bool>, std::vector<Jwk>> memo GUARDED_BY(mu);
  auto key = std::make_pair(json, skip_unusable_keys);
  {
    MutexLock lock(&mu);
    auto it = memo.find(key);
    if (it != memo.end()) return it->second;
  }
  auto keys = ParseJwks(json, skip_unusable_keys);
  if (keys.ok()) {
    MutexLock lock(&mu);
    if (memo.size() >= kMaxMemo) memo.clear();
    memo.emplace(std::move(key), *keys);
  }
  return keys;
}

// Per-process bounds on fetching clients' JWKS (TokenEndpointOptions): a JWKS host that is
// slow, or says no-cache, or fails, must not turn every token request into a fetch that
// holds a pool thread for seconds.
class JwksFetchGate {
 public:
  enum class Verdict { kFetched, kReused, kRecentFailure, kInFlight, kBusy };

  static JwksFetchGate& Instance() {
    static JwksFetchGate gate;
    return gate;
  }

  // Fetches `url` for `client_id` if the limits allow; kReused/kRecentFailure repeat the last
  // fetch of this client within the interval (*out or *error), kInFlight/kBusy fetch nothing.
  Verdict Fetch(const std::string& client_id, const std::string& url, const TokenEndpointOptions& o,
                FetchedJwks* out, std::string* error) EXCLUDES(mu_) {
    const auto now = std::chrono::steady_clock::now();
    const auto interval = std::chrono::seconds(std::max(0, o.jwks_min_fetch_interval_seconds));
    {
      MutexLock lock(&mu_);
      auto it = clients_.find(client_id);
      if (it != clients_.end()) {
        const Last& last = it->second;
        if (last.in_flight) return Verdict::kInFlight;
        if (now - last.at < interval) {
          if (!last.ok) {
            *error = last.error;
            return Verdict::kRecentFailure;
          }
          *out = last.result;
          return Verdict::kReused;
        }
      }
      if (in_flight_ >= std::max(1, o.jwks_max_concurrent_fetches)) return Verdict::kBusy;
      Prune(now, interval);  // fetches are rare: keeps only entries that still limit
      in_flight_++;
      Last& last = clients_[client_id];
      last.in_flight = true;
      last.at = now;
    }
    auto f = FetchJwks(url, o.allow_insecure_jwks);
    MutexLock lock(&mu_);
    in_flight_--;
    Last& last = clients_[client_id];
    last.in_flight = false;
    last.at = std::chrono::steady_clock::now();  // the interval runs from the answer
    last.ok = f.ok();
    if (f.ok()) {
      last.result = *f;
      last.error.clear();
      *out = std::move(f).value();
      return Verdict::kFetched;
    }
    last.result = FetchedJwks();
    last.error = f.status().message();
    *error = last.error;
    return Verdict::kRecentFailure;
  }

 private:
  struct Last {
    std::chrono::steady_clock::time_point at;
    bool in_flight = false;
    bool ok = false;
    FetchedJwks result;
    std::string error;
  };
  // Entries older than the interval carry no limit any more; dropping them bounds the memory
  // (a fetched set is up to 64 KiB) by the clients fetched within one interval.
  void Prune(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::duration iv)
      REQUIRES(mu_) {
    for (auto it = clients_.begin(); it != clients_.end();) {
      it = !it->second.in_flight && now - it->second.at >= iv ? clients_.erase(it) : std::next(it);
    }
  }
  Mutex mu_;
  int in_flight_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Last> clients_ GUARDED_BY(mu_);
};

// Keys with the header's kid whose type suits its alg.
std::vector<Jwk> Candidates(const std::vector<Jwk>& keys, const ParsedJws& jws) {
  KeyType want = jws.alg == "ES384" ? KeyType::kEc : KeyType::kRsa;
  std::vector<Jwk> out;
  for (const Jwk& k : keys) {
    if (k.kid == jws.kid && k.kty == want) out.push_back(k);
  }
  return out;
}

// Step 8. On success *key is the one key to verify with; a non-OK Status is a database error.
// *busy: the key set had to be fetched but the fetch limits refused for now (a 503).
Status ResolveKey(PgConnection* conn, const TokenEndpointOptions& o, const ClientRecord& client,
                  const ParsedJws& jws, std::optional<Jwk>* key, std::string* why, bool* busy) {
  if (!jws.jku.empty() && (client.jwks_url.empty() || jws.jku != client.jwks_url)) {
    *why = "jku does not match the registered JWKS URL";
    return Status::OK();
  }
  std::vector<Jwk> pool;
  if (!client.jwks.empty()) {
    auto keys = ParseJwksMemo(client.jwks, false);
    if (!keys.ok()) {
      *why = "registered JWK Set unusable: " + keys.status().message();
      return Status::OK();
    }
    pool = std::move(keys).value();
  } else {
    // A body the jsonb cache column refuses (not JSON at all: an HTML error page, say) is not
    // cached; it is the client's problem, not a database failure. Whatever Cache-Control
    // says, a set is kept at least jwks_min_cache_seconds.
    auto cache = [&](const FetchedJwks& f) -> Status {
      int max_age = std::max(f.max_age_seconds, o.jwks_min_cache_seconds);
      Status s = StoreJwksCache(conn, client.client_id, f.body, max_age);
      return s.code() == Status::Code::kInvalidArgument ? Status::OK() : s;
    };
    JwksFetchGate& gate = JwksFetchGate::Instance();
    bool fetched = false;
    std::string body;
    if (client.jwks_cache_fresh) {
      body = client.jwks_cache;
    } else {
      FetchedJwks f;
      std::string error;
      switch (gate.Fetch(client.client_id, client.jwks_url, o, &f, &error)) {
        case JwksFetchGate::Verdict::kFetched:
          FHIRBULK_RETURN_IF_ERROR(cache(f));
          [[fallthrough]];
        case JwksFetchGate::Verdict::kReused:
          body = std::move(f.body);
          fetched = true;
          break;
        case JwksFetchGate::Verdict::kRecentFailure:
          *why = "cannot fetch the client's JWKS: " + error;
          return Status::OK();
        case JwksFetchGate::Verdict::kInFlight:
        case JwksFetchGate::Verdict::kBusy:
          *busy = true;
          return Status::OK();
      }
    }
    auto keys = ParseJwksMemo(body, /*skip_unusable_keys=*/true);
    const Status parsed = keys.status();
    if (keys.ok()) pool = std::move(keys).value();
    // A key rotated in since the cache was filled: fetch again, at most every few seconds
    // (the gate's interval per process, the cache's age across processes and nodes).
    if (!fetched && Candidates(pool, jws).empty() &&
        client.jwks_cache_age_seconds >= kMinRefetchSeconds) {
      FetchedJwks f;
      std::string error;
      if (gate.Fetch(client.client_id, client.jwks_url, o, &f, &error) ==
          JwksFetchGate::Verdict::kFetched) {
        FHIRBULK_RETURN_IF_ERROR(cache(f));
        auto again = ParseJwksMemo(f.body, /*skip_unusable_keys=*/true);
        if (again.ok()) pool = std::move(again).value();
      }
    }
    if (!parsed.ok() && pool.empty()) {
      *why = "the client's JWKS is unusable: " + parsed.message();
      return Status::OK();
    }
  }
  std::vector<Jwk> matching = Candidates(pool, jws);
  if (matching.size() != 1) {
    *why = matching.empty() ? "no key with kid '" + LogEscape(jws.kid, 64) + "' for " + jws.alg
                            : "several keys with kid '" + LogEscape(jws.kid, 64) + "'";
    return Status::OK();
  }
  *key = matching.front();
  return Status::OK();
}

TokenResult Success(const TokenEndpointOptions& o, const std::string& client_id,
                    const ScopeSet& granted, int64_t now) {
  int lifetime = std::clamp(o.token_lifetime_seconds, 1, kMaxTokenLifetimeSeconds);
  TokenResult t;
  t.client_id = client_id;
  t.detail = granted.ToString();
  t.response.status = 200;
  t.response.content_type = "application/json";
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("access_token");
  w.String(IssueAccessToken(*o.keys, client_id, granted, now, lifetime));
  w.Key("token_type");
  w.String("bearer");
  w.Key("expires_in");
  w.Int(lifetime);
  w.Key("scope");
  w.String(t.detail);
  w.EndObject();
  t.response.body.assign(b.GetString(), b.GetSize());
  t.response.AddHeader("Cache-Control", "no-store");
  t.response.AddHeader("Pragma", "no-cache");
  return t;
}

}  // namespace

std::string TokenForm::get(const char* name) const {
  auto it = fields.find(name);
  return it == fields.end() ? std::string() : it->second;
}

std::optional<TokenResult> PrecheckTokenRequest(std::string_view content_type,
                                                std::string_view body, TokenForm* form) {
  return Precheck(content_type, body, form);
}

std::optional<TokenResult> PrecheckTokenRequest(std::string_view content_type,
                                                std::string_view body) {
  TokenForm form;
  return Precheck(content_type, body, &form);
}

Result<TokenResult> HandleTokenRequest(PgConnection* conn, const TokenEndpointOptions& o,
                                       std::string_view content_type, std::string_view body,
                                       int64_t now) {
  TokenForm form;
  if (auto early = Precheck(content_type, body, &form)) return std::move(*early);
  return HandleTokenForm(conn, o, form, now);
}

Result<TokenResult> HandleTokenForm(PgConnection* conn, const TokenEndpointOptions& o,
                                    const TokenForm& form, int64_t now) {
  // 4: the JWS and its header
  auto parsed = ParseCompactJws(form.get("client_assertion"));
  if (!parsed.ok())
    return InvalidClient("client_assertion is not a JWT", parsed.status().message());
  ParsedJws& jws = *parsed;
  if (jws.alg != "RS384" && jws.alg != "ES384") {
    return InvalidClient("client_assertion must be signed with RS384 or ES384",
                         "alg '" + LogEscape(jws.alg, 64) + "' not allowed");
  }
  if (jws.kid.empty()) return InvalidClient("client_assertion header has no kid");
  if (!jws.has_typ || !EqualsIgnoreCase(jws.typ, "JWT")) {
    return InvalidClient("client_assertion header typ must be JWT");
  }

  // 5: who claims to be calling
  const rapidjson::Value& claims = jws.claims;
  std::string iss = StringClaim(claims, "iss");
  std::string sub = StringClaim(claims, "sub");
  std::string jti = StringClaim(claims, "jti");
  int64_t exp = 0;
  if (iss.empty() || sub.empty() || jti.empty() || Claim(claims, "aud") == nullptr ||
      !TimeClaim(claims, "exp", &exp)) {
    return InvalidClient("client_assertion needs iss, sub, aud, exp and jti");
  }
  if (iss != sub) return InvalidClient("client_assertion iss and sub differ");
  if (jti.size() > kMaxJtiLength) return InvalidClient("client_assertion jti too long");
  // iss and jti become PostgreSQL text: a NUL would cut them short (another client's id,
  // another jti) and bytes that are not UTF-8 would fail the query (a 503 for a bad request).
  for (const std::string* text : {&iss, &jti}) {
    if (text->find('\0') != std::string::npos || !IsValidUtf8(*text)) {
      return InvalidClient("client_assertion iss, sub and jti must be UTF-8 text");
    }
  }
  std::string form_client = form.get("client_id");
  if (!form_client.empty() && form_client != iss) {
    return InvalidClient("client_id does not match the assertion's iss");
  }
  auto found = FindClient(conn, iss);
  if (!found.ok()) return found.status();
  if (!found->has_value())
    return InvalidClient("unknown client", "unknown client " + LogEscape(iss, 64));
  const ClientRecord& client = **found;
  auto with_client = [&](TokenResult t) {
    t.client_id = client.client_id;
    return t;
  };
  if (!client.enabled) return with_client(InvalidClient("client is disabled"));

  // 6, 7: audience and time
  if (!AudienceMatches(claims, o.token_url)) {
    return with_client(InvalidClient("client_assertion aud must be " + o.token_url));
  }
  const int64_t skew = o.clock_skew_seconds;
  if (exp <= now - skew) return with_client(InvalidClient("client_assertion expired"));
  if (exp > now + kMaxAssertionLifetime + skew) {
    return with_client(InvalidClient("client_assertion exp is more than 5 minutes ahead"));
  }
  int64_t t = 0;
  if (TimeClaim(claims, "nbf", &t) && t > now + skew) {
    return with_client(InvalidClient("client_assertion not valid yet (nbf)"));
  }
  if (TimeClaim(claims, "iat", &t) && t > now + skew) {
    return with_client(InvalidClient("client_assertion issued in the future (iat)"));
  }

  // 8, 9: the key and the signature
  std::optional<Jwk> key;
  std::string why;
  bool busy = false;
  FHIRBULK_RETURN_IF_ERROR(ResolveKey(conn, o, client, jws, &key, &why, &busy));
  if (busy) {
    return with_client(TemporarilyUnavailable(
        "the client's JWK Set is being fetched or fetches are at their limit; retry shortly",
        std::max(1, o.jwks_min_fetch_interval_seconds / 2)));
  }
  if (!key) return with_client(InvalidClient("no usable key for client_assertion", why));
  Status verified = VerifyAsymmetric(jws, *key);
  if (!verified.ok()) {
    return with_client(InvalidClient("client_assertion signature invalid", verified.message()));
  }

  // 10: replay
  // Kept until exp + 2 x skew: covers a database clock up to `skew` ahead of this node's.
  auto fresh = RememberJti(conn, client.client_id, jti, exp + 2 * skew);
  if (!fresh.ok()) return fresh.status();
  if (!*fresh) return with_client(InvalidClient("client_assertion jti already used"));

  // 11: scopes
  auto requested = ScopeSet::Parse(form.get("scope"));
  if (!requested.ok()) return with_client(Error("invalid_scope", requested.status().message()));
  auto allowed = ScopeSet::Parse(client.allowed_scopes);
  if (!allowed.ok()) {
    return with_client(Error("invalid_scope", "the client's registered scopes are unusable"));
  }
  if (allowed->operator_bits() != 0 && !client.is_operator) {
    // sql/0015's CHECK forbids it; never grant operator scopes on a row that slipped past.
    return with_client(Error("invalid_scope", "the client's registered scopes are unusable"));
  }
  ScopeSet granted = ScopeSet::Intersect(*requested, *allowed);
  if (granted.empty()) {
    return with_client(
        Error("invalid_scope", "none of the requested scopes is allowed for this client"));
  }
  return Success(o, client.client_id, granted, now);
}

}  // namespace fhirbulk
