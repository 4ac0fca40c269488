#include "auth/client_store.h"

#include <cctype>

#include "auth/access_token.h"
#include "auth/jwk.h"
#include "auth/scopes.h"
#include "fhir/resource_types.h"

namespace fhirbulk {
namespace {

constexpr const char* kClientColumns =
    "client_id, name, coalesce(jwks::text, ''), coalesce(jwks_url, ''), allowed_scopes, "
    "allowed_groups IS NOT NULL, coalesce(array_to_string(allowed_groups, ' '), ''), enabled, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "coalesce(jwks_cache::text, ''), coalesce(jwks_cache_expires > now(), false), "
    "coalesce(extract(epoch FROM now() - jwks_fetched_at), 1e9), operator";

std::vector<std::string> SplitSpaces(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

ClientRecord RowToClient(const PgResult& r, int row) {
  ClientRecord c;
  c.client_id = r.str(row, 0);
  c.name = r.str(row, 1);
  c.jwks = r.str(row, 2);
  c.jwks_url = r.str(row, 3);
  c.allowed_scopes = r.str(row, 4);
  c.group_restricted = r.get(row, 5) == "t";
  c.allowed_groups = SplitSpaces(r.str(row, 6));
  c.enabled = r.get(row, 7) == "t";
  c.created_at = r.str(row, 8);
  c.jwks_cache = r.str(row, 9);
  c.jwks_cache_fresh = r.get(row, 10) == "t";
  c.jwks_cache_age_seconds = std::stod(r.str(row, 11));
  c.is_operator = r.get(row, 12) == "t";
  return c;
}

Status CheckJwksUrl(const std::string& url, bool allow_http) {
  if (url.rfind("https://", 0) == 0 && url.size() > 8) return Status::OK();
  if (allow_http && url.rfind("http://", 0) == 0 && url.size() > 7) return Status::OK();
  return Status::InvalidArgument("the JWKS URL must be an https:// URL");
}

Status ExpectOneRow(const Result<PgResult>& r, const std::string& client_id) {
  if (!r.ok()) return r.status();
  if (std::string_view(r->affected()) != "1") {
    return Status::NotFound("no client " + client_id);
  }
  return Status::OK();
}

}  // namespace

std::string NewClientId() {
  for (;;) {
    std::string id = RandomId();
    if (std::isalnum(static_cast<unsigned char>(id[0]))) return id;
  }
}

Result<std::string> AddClient(PgConnection* conn, const NewClient& c) {
  if (c.name.empty()) return Status::InvalidArgument("a client needs a name");
  if (c.jwks.empty() == c.jwks_url.empty()) {
    return Status::InvalidArgument("give the client's public keys either as a JWK Set or a URL");
  }
  if (!c.jwks.empty()) {
    auto keys = ParseJwks(c.jwks);
    if (!keys.ok()) return keys.status();
  } else {
    FHIRBULK_RETURN_IF_ERROR(CheckJwksUrl(c.jwks_url, c.allow_http));
  }
  auto scopes = ScopeSet::Parse(c.allowed_scopes);
  if (!scopes.ok()) return scopes.status();
  if (scopes->empty()) return Status::InvalidArgument("a client needs at least one scope");
  if (scopes->operator_bits() != 0 && !c.is_operator) {
    return Status::InvalidArgument("operator/ scopes are for operator clients (--operator)");
  }
  for (const std::string& g : c.allowed_groups) {
    if (!IsValidFhirId(g)) return Status::InvalidArgument("'" + g + "' is not a Group id");
  }
  std::string id = NewClientId();
  PgParam groups = std::nullopt;
  std::string groups_literal;
  if (!c.allowed_groups.empty()) {
    groups_literal = PgTextArrayLiteral(c.allowed_groups);
    groups = groups_literal;
  }
  auto r = conn->Exec(
      "INSERT INTO auth_client (client_id, name, jwks, jwks_url, allowed_scopes, "
      "allowed_groups, operator) VALUES ($1, $2, $3::jsonb, $4, $5, $6::text[], $7::bool)",
      {id, c.name, c.jwks.empty() ? PgParam() : PgParam(c.jwks),
       c.jwks_url.empty() ? PgParam() : PgParam(c.jwks_url), scopes->ToString(), groups,
       c.is_operator ? "true" : "false"});
  if (!r.ok()) return r.status();
  return id;
}

Result<std::vector<ClientRecord>> ListClients(PgConnection* conn) {
  auto r = conn->Exec(std::string("SELECT ") + kClientColumns +
                      " FROM auth_client ORDER BY created_at, client_id");
  if (!r.ok()) return r.status();
  std::vector<ClientRecord> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); i++) out.push_back(RowToClient(*r, i));
  return out;
}

Result<std::optional<ClientRecord>> FindClient(PgConnection* conn, const std::string& client_id) {
  auto r =
      conn->Exec(std::string("SELECT ") + kClientColumns + " FROM auth_client WHERE client_id = $1",
                 {client_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<ClientRecord>();
  return std::optional<ClientRecord>(RowToClient(*r, 0));
}

Status SetClientEnabled(PgConnection* conn, const std::string& client_id, bool enabled) {
  return ExpectOneRow(conn->Exec("UPDATE auth_client SET enabled = $2::bool, updated_at = now() "
                                 "WHERE client_id = $1",
                                 {client_id, enabled ? "true" : "false"}),
                      client_id);
}

Status RemoveClient(PgConnection* conn, const std::string& client_id) {
  return ExpectOneRow(conn->Exec("DELETE FROM auth_client WHERE client_id = $1", {client_id}),
                      client_id);
}

Status SetClientJwks(PgConnection* conn, const std::string& client_id, const std::string& jwks) {
  auto keys = ParseJwks(jwks);
  if (!keys.ok()) return keys.status();
  auto r = conn->Exec(
      "UPDATE auth_client SET jwks = CASE WHEN jwks IS NULL THEN jwks ELSE $2::jsonb END, "
      "updated_at = now() WHERE client_id = $1 RETURNING jwks IS NOT NULL",
      {client_id, jwks});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status::NotFound("no client " + client_id);
  if (r->get(0, 0) != "t") {
    return Status::InvalidArgument("client " + client_id +
                                   " is registered with a JWKS URL: publish its new keys there");
  }
  return Status::OK();
}

Status StoreJwksCache(PgConnection* conn, const std::string& client_id, const std::string& jwks,
                      int max_age_seconds) {
  auto r = conn->Exec(
      "UPDATE auth_client SET jwks_cache = $2::jsonb, jwks_fetched_at = now(), "
      "jwks_cache_expires = now() + $3::int * interval '1 second' WHERE client_id = $1",
      {client_id, jwks, std::to_string(max_age_seconds)});
  return r.ok() ? Status::OK() : r.status();
}

Result<bool> RememberJti(PgConnection* conn, const std::string& client_id, const std::string& jti,
                         int64_t expires_at) {
  // Expired ids can be forgotten: an assertion carrying one is refused for its exp anyway.
  // A bounded batch per call keeps the cost per token flat.
  auto purge = conn->Exec(
      "DELETE FROM auth_jti WHERE ctid = ANY (ARRAY(SELECT ctid FROM auth_jti "
      "WHERE expires_at < now() LIMIT 100))");
  if (!purge.ok()) return purge.status();
  auto r = conn->Exec(
      "INSERT INTO auth_jti (client_id, jti, expires_at) "
      "VALUES ($1, $2, to_timestamp($3::bigint)) "
      "ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at "
      "WHERE auth_jti.expires_at < now() RETURNING 1",
      {client_id, jti, std::to_string(expires_at)});
  if (!r.ok()) return r.status();
  return r->rows() == 1;
}

Result<std::optional<ClientPolicy>> EnabledClientPolicy(PgConnection* conn,
                                                        const std::string& client_id) {
  auto r = conn->Exec(
      "SELECT allowed_groups IS NOT NULL, coalesce(array_to_string(allowed_groups, ' '), '') "
      "FROM auth_client WHERE client_id = $1 AND enabled",
      {client_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<ClientPolicy>();
  ClientPolicy p;
  p.group_restricted = r->get(0, 0) == "t";
  p.allowed_groups = SplitSpaces(r->str(0, 1));
  return std::optional<ClientPolicy>(std::move(p));
}

}  // namespace fhirbulk
