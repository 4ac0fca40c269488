// The client's reading of a completed export's manifest (Bulk Data IG v2.0.0 §3.1).
//
// Required: transactionTime (an instant), requiresAccessToken (a boolean), output (an
// array). `request` is read when present (v2 requires it, v4 drops it, the client needs
// nothing from it). `error` is required by the IG but "[]" is only a SHOULD, so a missing
// one reads as empty; a v4-style `outcome` array is read as `error` when `error` is absent.
// `deleted` is optional. Every item needs a type and an absolute http(s) url; count, when present,
// is a non-negative integer. Unknown members (extension, link, ...) are ignored. Anything else is
// Corruption, naming the offending member.
//
// Thread-safety: pure function.

#ifndef FHIRBULK_CLIENT_MANIFEST_H_
#define FHIRBULK_CLIENT_MANIFEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {
namespace client {

struct ManifestFile {
  std::string type;
  std::string url;
  std::optional<int64_t> count;
};

struct Manifest {
  std::string transaction_time;
  std::string request;
  bool requires_access_token = true;
  std::vector<ManifestFile> output;
  std::vector<ManifestFile> deleted;
  std::vector<ManifestFile> error;
};

Result<Manifest> ParseManifest(std::string_view json);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_MANIFEST_H_
