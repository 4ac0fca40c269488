// References between the entries of a Bundle, resolved to "Type/id".
//
// In a transaction (and in the batch and collection Bundles that tools write the same way)
// entries name each other by their fullUrl, typically "urn:uuid:<uuid>". A loaded resource
// must say "Type/id" instead. BundleResolver maps every fullUrl of one Bundle to the Type/id
// of its entry and rewrites each `reference` string (anywhere in a resource: nested elements,
// extensions, contained resources) equal to one of them. A urn:uuid: or urn:oid: reference the
// Bundle does not define cannot be resolved and rejects that entry only.
//
// UuidDirectory remembers urn:uuid -> Type/id across the Bundles of a whole load, so that a
// bare resource loaded afterwards can point into them (Synthea's Group file names its members
// by the urn:uuid of their Patient entries).
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_LOAD_BUNDLE_RESOLVER_H_
#define FHIRBULK_LOAD_BUNDLE_RESOLVER_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "load/parsed_json.h"
#include "util/status.h"

namespace fhirbulk {

// Bundle types whose entries are loaded one by one; other Bundles (document, message,
// history, responses) are resources in their own right.
bool IsUnpackedBundleType(std::string_view bundle_type);

// urn:uuid references look like this; the loader checks bare resources for it.
constexpr std::string_view kUrnUuidPrefix = "urn:uuid:";

// urn:uuid -> Type/id, compactly (a 16-byte key; the id is stored only when it differs from
// the uuid, which Synthea and most generators never do): about 70 bytes an entry. Memory is
// bounded by max_entries; past it, entries are not added (the loader then falls back on
// looking the uuid up as a stored id).
class UuidDirectory {
 public:
  explicit UuidDirectory(size_t max_entries = 1 << 20) : max_entries_(max_entries) {}
  // Ignores fullUrls that are not a canonical urn:uuid, and everything once full.
  void Add(std::string_view full_url, std::string_view type, std::string_view id);
  // "Type/id" for a urn:uuid reference, or "" when unknown.
  std::string Find(std::string_view reference) const;
  size_t size() const { return map_.size(); }

 private:
  struct Key {
    uint64_t hi, lo;
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.hi ^ (k.lo * 0x9E3779B97F4A7C15ULL); }
  };
  struct Target {
    uint16_t type_index;
    std::string id;  // empty: the id is the uuid itself (lowercase)
  };
  static bool ParseUuid(std::string_view full_url, Key* key);
  size_t max_entries_;
  std::unordered_map<Key, Target, KeyHash> map_;
};

// One Bundle's fullUrl -> Type/id map and the reference rewriting.
class BundleResolver {
 public:
  // Reads every entry's fullUrl and resource. An entry whose resource has no id but whose
  // fullUrl is urn:uuid:<uuid> gets id <uuid> (written into the resource): a transaction
  // would have the server assign one, and keeping the uuid makes reloading the same Bundle
  // update the same resource instead of adding another. Entries without a usable Type/id are
  // left out of the map (references to them then fail to resolve).
  // REQUIRES: `bundle` belongs to `json`; it outlives this resolver.
  void Index(ParsedJson* json, rapidjson::Value* bundle);

  // Rewrites the references of one entry's resource. InvalidArgument naming the reference
  // when a urn:uuid:/urn:oid: reference is not defined by the Bundle (the resource may then be
  // partly rewritten: discard it).
  Status Resolve(const ParsedJson& json, rapidjson::Value* resource) const;

  // The Bundle's entries as (fullUrl, "Type/id") pairs, for the load-wide UuidDirectory.
  const std::unordered_map<std::string_view, std::string>& targets() const { return targets_; }

 private:
  std::unordered_map<std::string_view, std::string> targets_;
};

// Maps a urn:uuid reference to "Type/id", or "" when unknown.
using UuidLookup = std::function<std::string(std::string_view reference)>;

// Rewrites the urn:uuid references of a bare resource (not in a Bundle) through `lookup`.
// Appends to *unresolved the urn:uuid:/urn:oid: references it could not resolve (the
// resource is then partly rewritten: discard it). InvalidArgument when nested too deep.
Status ResolveBareResource(ParsedJson* json, rapidjson::Value* resource, const UuidLookup& lookup,
                           std::vector<std::string>* unresolved);

// Appends every urn:uuid: reference of `resource` to *out (to look them up in bulk).
void CollectUuidReferences(const ParsedJson& json, const rapidjson::Value& resource,
                           std::vector<std::string>* out);

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_BUNDLE_RESOLVER_H_
