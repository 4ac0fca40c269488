// The client's reading of a completed export's manifest (Bulk Data IG v2.0.0 §3.1).
//
// Required: transactionTime (an instant), requiresAccessToken (a boolean), output (an
// array). `request` is read when present (v2 requires it, v4 drops it, the client needs
// nothing from it). `error` is required by the IG but "[]" is only a SHOULD, so a missing
// one reads as empty; a v4-style `outcome` array is read as `error` when `error` is absent.
// `deleted` is optional. `link` (IG 3.0.0): the url of the entry with relation "next" is kept.
// Every item needs a type and an absolute http(s) url; count, when present, is a non-negative
// integer. Unknown members (extension, link, ...) are ignored. Anything else is Corruption, naming
// the offending member.
//
// Limits (the manifest comes from a server the client does not control): at most
// ManifestLimits::max_bytes of JSON, nested at most kMaxJsonDepth deep (client/bounded_json.h),
// listing at most max_files files in output, deleted and error together; beyond them
// ResourceExhausted, naming the limit and the flag that raises it.
//
// Thread-safety: pure function.

#ifndef FHIRBULK_CLIENT_MANIFEST_H_
#define FHIRBULK_CLIENT_MANIFEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {
namespace client {

struct ManifestFile {
  std::string type;               // "" in `output` of an organizeOutputBy manifest (IG 3.0.0)
  std::string continues_in_file;  // organizeOutputBy: the URL the file's last block goes on in
  std::string url;
  std::optional<int64_t> count;
};

struct Manifest {
  std::string transaction_time;
  std::string request;
  bool requires_access_token = true;
  std::string output_organized_by;  // IG 3.0.0 outputOrganizedBy, or ""
  std::vector<ManifestFile> output;
  std::vector<ManifestFile> deleted;
  std::vector<ManifestFile> error;
  std::string next_url;  // link relation "next" (IG 3.0.0 paged manifests), "" when none
};

struct ManifestLimits {
  size_t max_bytes = 64u << 20;  // `fhir-bulk export --max-manifest-bytes`
  size_t max_files = 100000;     // `fhir-bulk export --max-manifest-files`
};

Result<Manifest> ParseManifest(std::string_view json, const ManifestLimits& limits = {});

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_MANIFEST_H_
