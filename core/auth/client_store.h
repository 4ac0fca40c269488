// The SMART client registry in PostgreSQL (sql/0003_auth.sql): registration, lookup, the
// JWKS cache of clients registered by URL, and the assertion replay cache.
//
// AddClient validates before storing: a JWK Set by value must pass ParseJwks (public keys we
// can use), a JWKS URL must be https (http only when allow_http, for loopback tests), the
// allowed scopes must parse (auth/scopes.h) and Group ids must be FHIR ids. client_ids are
// random (128 bits, base64url), so they cannot be guessed or enumerated.
//
// Thread-safety: functions over a caller-owned connection.

#ifndef FHIRBULK_AUTH_CLIENT_STORE_H_
#define FHIRBULK_AUTH_CLIENT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/pg.h"
#include "util/status.h"

namespace fhirbulk {

struct NewClient {
  std::string name;
  std::string jwks;      // JWK Set JSON, or empty
  std::string jwks_url;  // or this
  std::string allowed_scopes = "system/*.read";
  std::vector<std::string> allowed_groups;  // empty: no Group restriction
  bool allow_http = false;
  // An operator client (the operator console): may hold operator/ scopes (auth/scopes.h).
  bool is_operator = false;
};

struct ClientRecord {
  std::string client_id;
  std::string name;
  std::string jwks;  // by value; empty when registered by URL
  std::string jwks_url;
  std::string allowed_scopes;
  bool group_restricted = false;
  std::vector<std::string> allowed_groups;
  bool enabled = true;
  std::string created_at;
  // JWKS fetched from jwks_url, when cached and not expired (jwks_cache_fresh).
  std::string jwks_cache;
  bool jwks_cache_fresh = false;
  double jwks_cache_age_seconds = 0;  // since it was fetched; large when never
  bool is_operator = false;           // sql/0015: may hold operator/ scopes
};

Result<std::string> AddClient(PgConnection* conn, const NewClient& client);

// A fresh random client_id (22 base64url characters) whose first character is alphanumeric,
// so it is never read as an option when typed after `fhir-bulk client disable`.
std::string NewClientId();
Result<std::vector<ClientRecord>> ListClients(PgConnection* conn);
Result<std::optional<ClientRecord>> FindClient(PgConnection* conn, const std::string& client_id);
Status SetClientEnabled(PgConnection* conn, const std::string& client_id, bool enabled);
Status RemoveClient(PgConnection* conn, const std::string& client_id);
// Replaces the JWK Set of a client registered by value (`fhir-bulk client set-keys`), checked
// as AddClient checks it; the client_id, scopes and groups stay. The old keys stop verifying
// at the next token request (every node reads the set from here). NotFound for an unknown
// client, InvalidArgument for one registered by URL (its keys live at the URL).
Status SetClientJwks(PgConnection* conn, const std::string& client_id, const std::string& jwks);

// Caches a JWKS fetched for the client for max_age_seconds.
Status StoreJwksCache(PgConnection* conn, const std::string& client_id, const std::string& jwks,
                      int max_age_seconds);

// Records an assertion id; false when (client_id, jti) was already recorded and has not
// expired (a replay). Also deletes a batch of expired entries now and then.
Result<bool> RememberJti(PgConnection* conn, const std::string& client_id, const std::string& jti,
                         int64_t expires_at);

// The groups a client may export, as its record says (for kick-off checks); nullopt when the
// client is unknown or disabled.
struct ClientPolicy {
  bool group_restricted = false;
  std::vector<std::string> allowed_groups;
};
Result<std::optional<ClientPolicy>> EnabledClientPolicy(PgConnection* conn,
                                                        const std::string& client_id);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_CLIENT_STORE_H_
