// Loader: puts FHIR resources into PostgreSQL (sql/0001_resources.sql) for the export engine.
//
// Inputs: NDJSON (one resource per line, any mix of types), FHIR Bundles (transaction, batch,
// collection: entries' resources, urn:uuid: fullUrls and every reference to them resolved to
// Type/id), single-resource JSON files, directories of these (recursively), and .gz versions
// of any of them.
//
// Semantics:
//  - Upsert per (type, id). Content identical to the stored current version (ignoring
//    meta.versionId and meta.lastUpdated) changes nothing. Changed content gets version + 1
//    and a new last_updated; a new resource gets version 1. A deleted resource that comes back
//    is a new version. The stored body is the compact JSON with meta.versionId and
//    meta.lastUpdated set to the stored values.
//  - last_updated is read from the database clock after the writing transaction holds its
//    transaction id, so an export's transactionTime can wait for older writers (see
//    sql/0001_resources.sql).
//  - Bad input never aborts the load and never loads half a resource: each rejected line or
//    entry is reported (source, line or entry index, reason) and the rest loads. A Bundle
//    entry referencing a urn:uuid that the Bundle does not define rejects that entry only.
//  - Deletions record a tombstone (deleted, new version, last_updated, body NULL).
//
// Thread-safety: a Loader is used by one thread.

#ifndef FHIRBULK_LOAD_LOADER_H_
#define FHIRBULK_LOAD_LOADER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

struct LoadOptions {
  std::string conninfo;
  bool progress = false;        // a progress line (rate, ETA) on stderr
  size_t batch_resources = 5000;  // resources per COPY batch / transaction
};

struct LoadRejection {
  std::string source;    // file path (or a caller-given name)
  std::string location;  // "line 12", "entry 3"
  std::string reason;
};

struct LoadTypeCounts {
  uint64_t loaded = 0;     // new or changed
  uint64_t unchanged = 0;  // identical to the stored version
  uint64_t deleted = 0;
  uint64_t rejected = 0;
};

struct LoadReport {
  std::map<std::string, LoadTypeCounts> by_type;  // rejected entries with no known type: "?"
  std::vector<LoadRejection> rejections;
  uint64_t total_loaded() const;
  uint64_t total_unchanged() const;
  uint64_t total_rejected() const;
};

class Loader {
 public:
  static Result<std::unique_ptr<Loader>> Open(const LoadOptions& options);
  ~Loader();

  // Adds a file or directory (see the inputs above). Errors about the input's content are
  // rejections in the report; a non-OK Status means the load itself cannot go on (database
  // down, unreadable path).
  Status AddPath(const std::string& path);

  // Adds one resource given as JSON text (references must already be Type/id).
  Status AddResourceJson(std::string_view json, std::string_view source, uint64_t line);

  // Records the deletion of Type/id.
  Status Delete(std::string_view type, std::string_view id);

  // Flushes everything pending and fills *report. The Loader is done afterwards.
  Status Finish(LoadReport* report);

 private:
  class Impl;
  explicit Loader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_LOADER_H_
