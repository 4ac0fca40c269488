// Signed file URLs: a download link that carries its own authorization, so files can be served
// by any nginx that has the URL key (another node, an edge in front of shared storage, a CDN
// origin) with no database and no bearer token (manifest requiresAccessToken: false).
//
//   <base>/$export-files/<job>/<file>?client=<id>&expires=<unix s>&kid=<kid>&signature=<b64url>
//   signature = HMAC-SHA256(secret[kid], "fhir-bulk-file-v1\n<job>/<file>\n<client>\n<expires>")
//
// The MAC binds job, file, client and expiry: changing any of them, or the kid, fails.
// Verification compares in constant time and needs no state; a query longer than
// kMaxSignedQueryBytes or with more than kMaxSignedQueryParams parameters is refused before
// it is split. Lifetimes (ServerOptions::signed_url_lifetime_seconds) default to 300 s and are
// at most 1 h: a signed URL is a bearer capability, and state-free verification means a
// disabled client's URLs stop working only when they expire (new ones need a status poll,
// which checks the client).
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_AUTH_SIGNED_URL_H_
#define FHIRBULK_AUTH_SIGNED_URL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/key_ring.h"
#include "util/status.h"

#include "fhirbulk/defaults.h"

namespace fhirbulk {

// Signed URLs are bearer capabilities: they expire on bearer-token timescales (IG 3.0.0).
constexpr int kDefaultSignedUrlLifetimeSeconds = FHIRBULK_DEFAULT_SIGNED_URL_LIFETIME;
constexpr int kMaxSignedUrlLifetimeSeconds = FHIRBULK_MAX_SIGNED_URL_LIFETIME;
// The query of a signed URL is ~150 bytes; anything much longer is refused unparsed.
constexpr size_t kMaxSignedQueryBytes = 2048;
constexpr size_t kMaxSignedQueryParams = 16;

// The query string (without '?') for `<job>/<file>`.
std::string SignFileQuery(const KeyRing& ring, std::string_view job_id, std::string_view file,
                          std::string_view client_id, int64_t expires);

// The client the URL was issued to. PermissionDenied ("expired", "bad signature", ...) when
// the query does not carry a valid, unexpired signature for `<job>/<file>`.
Result<std::string> VerifyFileQuery(const KeyRing& ring, std::string_view job_id,
                                    std::string_view file, std::string_view query, int64_t now);

// True when the query carries a "signature" parameter (the request means to use a signed URL).
bool HasFileSignature(std::string_view query);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_SIGNED_URL_H_
