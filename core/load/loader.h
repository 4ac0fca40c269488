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
//    sql/0001_resources.sql). One clock reading per batch. Exception, for offline imports
//    only: LoadOptions::keep_source_last_updated.
//  - Bad input never aborts the load and never loads half a resource: each rejected line or
//    entry is reported (source, line or entry index, reason) and the rest loads. A Bundle
//    entry referencing a urn:uuid that the Bundle does not define rejects that entry only.
//  - Deletions record a tombstone (deleted, new version, last_updated, body NULL; patients
//    kept so that patient-level _since exports list it; tokens, refs and dates emptied) and
//    remove a deleted Group's group_member rows. Deleting what is absent (or already
//    deleted) is counted in `absent`, not an error.
//  - Groups: group_member rows are replaced whenever a Group is written.
//  - Copies of one Type/id within one load: the last one wins. Bundles repeat the shared
//    resources they reference (Synthea writes each Organization and Practitioner into every
//    patient Bundle that uses it, without the extensions of the copy in
//    hospitalInformation*.json). So that loading the same files twice changes nothing, Bundle
//    entries of types outside the Patient compartment are held back until Finish (up to a
//    memory budget, then written in order) and only their last copy is written. Earlier copies
//    count as `unchanged`: loaded + unchanged + rejected = input resources.
//  - A bare resource (not in a Bundle) may reference urn:uuid fullUrls of the Bundles of the
//    same load (Synthea's Group file). Such resources wait until Finish; a urn:uuid no Bundle
//    defined is then looked up among the stored ids (a uuid that is the id of exactly one
//    stored resource resolves to it); if that fails the resource is rejected.
//  - Locations in rejections: "line N" (NDJSON, 1-based), "entry N" (Bundle.entry[N],
//    0-based), "line N entry M" for a Bundle on an NDJSON line, "document" for a JSON file.
//  - Work is pipelined: this thread parses and indexes while another thread writes batches.
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

class BatchSink;  // load/batch_sink.h

struct LoadOptions {
  std::string conninfo;
  bool progress = false;          // a progress line (rate, ETA) on stderr
  size_t batch_resources = 5000;  // resources per COPY batch / transaction
  size_t batch_bytes = 16 << 20;  // ... or this many bytes of resources, whichever comes first
  // Database connections writing at once (batch_sink.h: a batch is split by Type/id, so each
  // resource's writes stay in order). The server's work per resource (index upkeep, TOAST) is
  // what limits a load; more writers use more of the database's cores. Two: 10 % faster than
  // one even where loader and database share two cores (benchmarks/RESULTS.md). 1..16.
  int writers = 2;

  // Keep the input's meta.lastUpdated. A new or changed resource whose input has a valid FHIR
  // instant in meta.lastUpdated that is not later than its batch's clock reading (and, for a
  // changed resource, later than its stored version's, so last_updated never goes back) is stored
  // with that instant as last_updated (and, formatted by FormatInstant, as the body's
  // meta.lastUpdated). A missing, malformed or future value gets the clock as usual (not a
  // rejection). Unchanged resources are not touched; deletions always get the clock.
  //
  // For initial or offline imports only (synthetic populations, migrations), while no export
  // runs: exports are consistent because a row's last_updated is read from the clock after
  // its transaction's xid exists, so a kick-off can wait for every writer that could still add
  // rows at or before its transactionTime. A row committed with an older timestamp during an
  // export escapes that: the export may or may not see it, and the next export with _since =
  // that transactionTime never will.
  bool keep_source_last_updated = false;

  // Input limits, against broken or hostile files: an NDJSON line, or a resource given to
  // AddResourceJson, longer than max_line_bytes; a whole-file document (a Bundle, a single
  // resource) larger than max_document_bytes; a Bundle with more than max_bundle_entries
  // entries — each is rejected whole (a rejection in the report; the load goes on) without
  // ever being buffered beyond the limit. JSON nested deeper than kMaxJsonDepth
  // (load/parsed_json.h) is rejected too. `fhir-bulk load` flags of the same names.
  size_t max_line_bytes = 128u << 20;
  size_t max_document_bytes = 512u << 20;
  size_t max_bundle_entries = 1000000;
};

struct LoadRejection {
  std::string source;    // file path (or a caller-given name)
  std::string location;  // "line 12", "entry 3"
  std::string reason;
};

struct LoadTypeCounts {
  uint64_t loaded = 0;     // new or changed
  uint64_t unchanged = 0;  // identical to the stored version, or superseded in this load
  uint64_t deleted = 0;
  uint64_t rejected = 0;
  uint64_t absent = 0;  // deletions of resources that were absent or already deleted
};

struct LoadReport {
  std::map<std::string, LoadTypeCounts> by_type;  // rejected entries with no known type: "?"
  std::vector<LoadRejection> rejections;          // the first kMaxListed, in input order
  std::vector<std::string> absent_deletions;      // "Type/id", the first kMaxListed
  static constexpr size_t kMaxListed = 1000;
  uint64_t total_loaded() const;
  uint64_t total_unchanged() const;
  uint64_t total_rejected() const;
  uint64_t total_deleted() const;
};

class Loader {
 public:
  // Connects and checks that the schema exists. Unavailable when the database cannot be
  // reached; NotFound when the resource table is missing (run `fhir-bulk migrate`).
  static Result<std::unique_ptr<Loader>> Open(const LoadOptions& options);
  ~Loader();

  // Adds a file or directory (see the inputs above). Errors about the input's content are
  // rejections in the report; a non-OK Status means the load itself cannot go on (database
  // down, unreadable path).
  Status AddPath(const std::string& path);
  // As AddPath for each, with the progress total covering all of them. Directories are
  // walked recursively in byte order of the paths, taking *.json, *.ndjson, *.jsonl and their
  // .gz forms; files named explicitly are read whatever their name.
  Status AddPaths(const std::vector<std::string>& paths);

  // Reads deletions, one JSON value per line: {"resourceType":"T","id":"I"} (any resource),
  // or a Bundle whose entries say request.method DELETE with url "T/I" (the Bulk Data
  // export's deleted-resources form). Bundle inputs given to AddPath may contain such DELETE
  // entries too.
  Status AddDeletionsFile(const std::string& path);

  // Adds one resource given as JSON text (references must already be Type/id).
  Status AddResourceJson(std::string_view json, std::string_view source, uint64_t line);

  // Records the deletion of Type/id (an unknown type or invalid id is a rejection).
  Status Delete(std::string_view type, std::string_view id);

  // Flushes everything pending and fills *report. The Loader is done afterwards. (A Loader
  // destroyed without Finish still writes the batches already handed to its database
  // thread, each in its own transaction, and drops the rest.)
  Status Finish(LoadReport* report);

 private:
  class Impl;
  explicit Loader(std::unique_ptr<Impl> impl);
  // Tests load into a BatchSink of their own (load/batch_sink.h).
  friend std::unique_ptr<Loader> NewLoaderWithSink(const LoadOptions&, std::unique_ptr<BatchSink>);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_LOADER_H_
