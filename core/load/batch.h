// What the loader hands to the database in one transaction.
//
// Thread-safety: plain data; a Batch is built by one thread and then handed to another.

#ifndef FHIRBULK_LOAD_BATCH_H_
#define FHIRBULK_LOAD_BATCH_H_

#include <map>
#include <string>
#include <vector>

#include "fhir/resource_index.h"
#include "load/loader.h"
#include "load/resource_normalizer.h"

namespace fhirbulk {

// One resource to upsert, or one Type/id to delete.
struct PendingWrite {
  bool is_delete = false;
  NormalizedResource resource;  // for a deletion only type and id are set
  // The resource table's columns patients, tokens, refs, date_params, date_lo, date_hi, outrefs,
  // already in binary COPY form (PgCopyEncoder): the index is computed by the parsing thread.
  std::string index_fields;
  bool is_group = false;
  std::vector<GroupMemberEntry> members;  // a Group's Patient members

  size_t bytes() const {
    return resource.tail.size() + index_fields.size() + members.size() * 64 + 128;
  }
};

// Writes with pairwise distinct Type/ids, in input order.
struct Batch {
  std::vector<PendingWrite> writes;
  size_t bytes = 0;
  // LoadOptions::keep_source_last_updated: upserts whose source_last_updated_us is not later
  // than the batch's clock are stored with it.
  bool keep_source_last_updated = false;
};

// What the database did with the batches.
struct BatchOutcome {
  std::map<std::string, LoadTypeCounts> by_type;  // loaded, unchanged, deleted, deletes_absent
  std::vector<std::string> absent_deletions;      // "Type/id", the first kMaxListed
  static constexpr size_t kMaxListed = 1000;

  // Adds another outcome's counts, and its absent deletions up to kMaxListed.
  void Add(const BatchOutcome& other) {
    for (const auto& [type, c] : other.by_type) {
      LoadTypeCounts& t = by_type[type];
      t.loaded += c.loaded;
      t.unchanged += c.unchanged;
      t.deleted += c.deleted;
      t.absent += c.absent;
    }
    for (const auto& a : other.absent_deletions) {
      if (absent_deletions.size() >= kMaxListed) break;
      absent_deletions.push_back(a);
    }
  }
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_BATCH_H_
