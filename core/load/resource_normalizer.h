// The stored form of a resource and its content hash.
//
// Stored body: compact JSON, members in source order except that resourceType, id and meta
// come first, and meta starts with versionId and lastUpdated (the stored values) followed by
// the resource's other meta members (profile, tag, security, source...) in source order:
//
//   {"resourceType":"T","id":"I","meta":{"versionId":"V","lastUpdated":"L"<tail>
//
// The tail (everything after lastUpdated's closing quote) depends on neither V nor L, so the
// body of any version is assembled from the tail once the database has said which version it
// is (AppendBody). resourceType and id need no JSON escaping (an R4 type name; an id matches
// [A-Za-z0-9\-\.]{1,64}).
//
// Content hash: SHA-256 of the compact JSON without meta.versionId and meta.lastUpdated,
//   {"resourceType":"T","id":"I"[,"meta":{<other meta members>}][,<other members>]}
// so two copies hash alike exactly when they differ at most in those two values.
//
// Numbers are written as their source text (see parsed_json.h).
//
// The input's own meta.lastUpdated is not part of the body (the stored value replaces it) but
// is reported, parsed, for LoadOptions::keep_source_last_updated.
//
// Thread-safety: a ResourceNormalizer is used by one thread at a time.

#ifndef FHIRBULK_LOAD_RESOURCE_NORMALIZER_H_
#define FHIRBULK_LOAD_RESOURCE_NORMALIZER_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fhir/resource_types.h"  // IsValidFhirId
#include "load/parsed_json.h"
#include "util/status.h"

namespace fhirbulk {

using ContentHash = std::array<uint8_t, 32>;

// Checks what every stored resource needs: an object with a string resourceType naming an R4
// type and a valid string id; meta, if present, an object. On success *type and *id view the
// resource's strings. InvalidArgument with a human reason otherwise.
Status CheckResourceIdentity(const ParsedJson& json, const rapidjson::Value& resource,
                             std::string_view* type, std::string_view* id);

struct NormalizedResource {
  std::string type;
  std::string id;
  std::string tail;  // the body after meta.lastUpdated's value (see above)
  ContentHash hash{};
  // The input's meta.lastUpdated (microseconds since the epoch) when it is a string holding a
  // valid FHIR instant and meta has exactly one lastUpdated; otherwise empty. Not in the hash.
  std::optional<int64_t> source_last_updated_us;
};

class ResourceNormalizer {
 public:
  ResourceNormalizer();
  ~ResourceNormalizer();
  ResourceNormalizer(const ResourceNormalizer&) = delete;
  ResourceNormalizer& operator=(const ResourceNormalizer&) = delete;

  // REQUIRES: CheckResourceIdentity(json, resource) is OK.
  Status Normalize(const ParsedJson& json, const rapidjson::Value& resource,
                   NormalizedResource* out);

 private:
  rapidjson::StringBuffer buf_;
  struct Sha256;
  Sha256* sha_;
};

// The bytes of `{"resourceType":"T","id":"I","meta":{"versionId":"` (what precedes V).
void AppendBodyHead(std::string* out, std::string_view type, std::string_view id);
// Appends the whole stored body for the given version and lastUpdated (a FHIR instant).
void AppendBody(std::string* out, const NormalizedResource& r, std::string_view version,
                std::string_view last_updated);
std::string AssembleBody(const NormalizedResource& r, int64_t version,
                         std::string_view last_updated);

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_RESOURCE_NORMALIZER_H_
