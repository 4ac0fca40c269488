#include "auth/access_token.h"

#include <openssl/rand.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "auth/jws.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace {

bool Int64Member(const rapidjson::Value& obj, const char* name, int64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return false;
  *out = it->value.GetInt64();
  return true;
}

}  // namespace

std::string RandomId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::abort();  // no entropy: nothing is safe
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

std::string IssueAccessToken(const KeyRing& ring, const std::string& client_id,
                             const ScopeSet& scopes, int64_t now, int lifetime_seconds) {
  lifetime_seconds = std::clamp(lifetime_seconds, 1, kMaxTokenLifetimeSeconds);
  rapidjson::StringBuffer header;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(header);
    w.StartObject();
    w.Key("alg");
    w.String("HS256");
    w.Key("typ");
    w.String("at+jwt");
    w.Key("kid");
    w.String(ring.signing_kid());
    w.EndObject();
  }
  rapidjson::StringBuffer claims;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(claims);
    w.StartObject();
    w.Key("sub");
    w.String(client_id);
    w.Key("scope");
    w.String(scopes.ToString());
    w.Key("iat");
    w.Int64(now);
    w.Key("exp");
    w.Int64(now + lifetime_seconds);
    w.Key("jti");
    w.String(RandomId());
    w.EndObject();
  }
  std::string input = Base64UrlEncode(std::string_view(header.GetString(), header.GetSize())) +
                      "." + Base64UrlEncode(std::string_view(claims.GetString(), claims.GetSize()));
  std::string mac = HmacSha256(ring.signing_secret(), input);
  return input + "." + Base64UrlEncode(mac);
}

Result<Principal> VerifyAccessToken(const KeyRing& ring, std::string_view token, int64_t now,
                                    int max_lifetime_seconds) {
  if (token.size() > kMaxAccessTokenBytes) return Status::Unauthenticated("token too long");
  auto jws = ParseCompactJws(token);
  if (!jws.ok()) return Status::Unauthenticated("malformed token");
  if (jws->alg != "HS256" || jws->typ != "at+jwt") {
    return Status::Unauthenticated("not an access token of this server");
  }
  const std::string* secret = ring.Find(jws->kid);
  if (secret == nullptr) return Status::Unauthenticated("unknown token key");
  if (!ConstantTimeEquals(HmacSha256(*secret, jws->signing_input), jws->signature)) {
    return Status::Unauthenticated("bad token signature");
  }
  const rapidjson::Value& c = jws->claims;
  Principal p;
  int64_t iat = 0;
  auto sub = c.FindMember("sub");
  auto scope = c.FindMember("scope");
  if (sub == c.MemberEnd() || !sub->value.IsString() || scope == c.MemberEnd() ||
      !scope->value.IsString() || !Int64Member(c, "exp", &p.expires_at) ||
      !Int64Member(c, "iat", &iat)) {
    return Status::Unauthenticated("token claims incomplete");
  }
  if (p.expires_at <= now) return Status::Unauthenticated("token expired");
  const int64_t skew = kAccessTokenClockSkewSeconds;
  if (iat > now + skew) return Status::Unauthenticated("token issued in the future");
  // iat <= now + skew here, so the sum cannot overflow (a difference could, for iat near -2^63).
  const int64_t max_lifetime = std::clamp(max_lifetime_seconds, 1, kMaxTokenLifetimeSeconds);
  if (p.expires_at > iat + max_lifetime + skew) {
    return Status::Unauthenticated("token lifetime exceeds the server's limit");
  }
  p.issued_at = iat;
  p.client_id = sub->value.GetString();
  auto scopes = ScopeSet::Parse(scope->value.GetString());
  if (!scopes.ok()) return Status::Unauthenticated("token scopes unreadable");
  p.scopes = std::move(scopes).value();
  return p;
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() + 1) return {};
  for (size_t i = 0; i < kScheme.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return {};
  }
  if (authorization[kScheme.size()] != ' ') return {};
  std::string_view token = authorization.substr(kScheme.size() + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace fhirbulk
