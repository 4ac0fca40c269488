#include "auth/signed_url.h"

#include <cctype>

#include "auth/jws.h"
#include "http/query_string.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace {

std::string MacInput(std::string_view job_id, std::string_view file, std::string_view client_id,
                     int64_t expires) {
  std::string in = "fhir-bulk-file-v1\n";
  in.append(job_id);
  in += '/';
  in.append(file);
  in += '\n';
  in.append(client_id);
  in += '\n';
  in += std::to_string(expires);
  return in;
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

std::string SignFileQuery(const KeyRing& ring, std::string_view job_id, std::string_view file,
                          std::string_view client_id, int64_t expires) {
  std::string mac = HmacSha256(ring.signing_secret(), MacInput(job_id, file, client_id, expires));
  return "client=" + PercentEncode(client_id) + "&expires=" + std::to_string(expires) +
         "&kid=" + ring.signing_kid() + "&signature=" + Base64UrlEncode(mac);
}

bool HasFileSignature(std::string_view query) {
  auto params = SplitQueryString(query);
  if (!params.ok()) return false;
  for (const QueryParam& p : *params) {
    if (p.name == "signature") return true;
  }
  return false;
}

Result<std::string> VerifyFileQuery(const KeyRing& ring, std::string_view job_id,
                                    std::string_view file, std::string_view query, int64_t now) {
  if (query.size() > kMaxSignedQueryBytes) return Status::PermissionDenied("signed URL too long");
  size_t separators = 0;
  for (char c : query) separators += c == '&' ? 1 : 0;
  if (separators >= kMaxSignedQueryParams) {
    return Status::PermissionDenied("signed URL has too many parameters");
  }
  auto params = SplitQueryString(query);
  if (!params.ok()) return Status::PermissionDenied("malformed signed URL");
  std::string client, expires_text, kid, signature;
  int seen = 0;
  for (const QueryParam& p : *params) {
    std::string* slot = p.name == "client"      ? &client
                        : p.name == "expires"   ? &expires_text
                        : p.name == "kid"       ? &kid
                        : p.name == "signature" ? &signature
                                                : nullptr;
    if (slot == nullptr) continue;
    auto value = PercentDecode(p.raw_value, false);
    if (!value.ok() || !slot->empty()) return Status::PermissionDenied("malformed signed URL");
    *slot = std::move(value).value();
    seen++;
  }
  if (seen != 4 || client.empty() || expires_text.empty() || expires_text.size() > 12 ||
      expires_text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::PermissionDenied("incomplete signed URL");
  }
  const std::string* secret = ring.Find(kid);
  std::string mac;
  if (secret == nullptr || !Base64UrlDecode(signature, &mac)) {
    return Status::PermissionDenied("signed URL does not verify");
  }
  int64_t expires = std::stoll(expires_text);
  if (!ConstantTimeEquals(HmacSha256(*secret, MacInput(job_id, file, client, expires)), mac)) {
    return Status::PermissionDenied("signed URL does not verify");
  }
  // Checked after the MAC so that an altered expiry reads as altered, not as expired.
  if (expires <= now) return Status::PermissionDenied("signed URL expired");
  return client;
}

}  // namespace fhirbulk
