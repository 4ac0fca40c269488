// BatchWriter: writes one Batch to PostgreSQL in one transaction.
//
// In the transaction, first `txid_current()` and only then `clock_timestamp()`: the batch's
// last_updated is read after its transaction id exists, so an export that reads the clock and
// then waits for the transactions older than its snapshot's xmin knows that no row with an
// earlier last_updated can still appear (sql/0001_resources.sql).
//
// Then per type the stored (ctid, version, content_hash, deleted) of the batch's ids are read,
// which decides, in this client, each resource's fate: absent -> version 1; same hash and
// live -> unchanged (not touched); otherwise version + 1. Bodies carry their version and
// lastUpdated in meta, so they are assembled here with the right values and go with binary
// COPY straight into `resource`: no staging table, no JSON work in the server. A changed row
// is deleted by the ctid read (which fails if another writer has touched the row since) and
// inserted again in the same transaction; a deletion updates the row into a tombstone.
//
// With Batch::keep_source_last_updated, a new or changed resource whose input carried a
// meta.lastUpdated not later than that clock is stored with the input's instant instead (an
// offline import: see LoadOptions::keep_source_last_updated for what that gives up). Deletions
// always take the clock.
//
// Types that had no row at all when the load first met them skip the lookup of upserts (a
// fresh load reads nothing back): a row of such a type can only come from this load or a
// concurrent one, and then the primary key rejects the insert. The writers of one load share
// that knowledge (TypesEmptyAtStart), so a type one writer fills is still "empty at start" for
// the others: their ids are disjoint (batch_sink.h).
//
// Concurrent loaders and repeated ids: a unique violation, or a ctid that no longer holds the
// row read, rolls the transaction back and the batch is retried, looking every id up.
//
// Thread-safety: a BatchWriter is used by one thread at a time (it uses one PgConnection);
// TypesEmptyAtStart is thread-safe.

#ifndef FHIRBULK_LOAD_BATCH_WRITER_H_
#define FHIRBULK_LOAD_BATCH_WRITER_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/pg.h"
#include "load/batch.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace fhirbulk {

// Which types had no row when the load first met them; shared by the writers of one load.
// The first writer to meet a type asks the database while holding the lock, so the answer
// precedes every insert of that type by this load.
class TypesEmptyAtStart {
 public:
  // Whether `type` had no row when first met; `query` asks the database (called once per
  // type, under the lock).
  Result<bool> Get(const std::string& type, const std::function<Result<bool>()>& query)
      EXCLUDES(mu_);

 private:
  Mutex mu_;
  std::unordered_map<std::string, bool> empty_ GUARDED_BY(mu_);
};

class BatchWriter {
 public:
  // `empty_types`: shared by the writers of one load; outlives the writer.
  BatchWriter(PgConnection* conn, TypesEmptyAtStart* empty_types)
      : conn_(conn), empty_types_(empty_types) {}

  // Writes the batch; on success adds what happened to *outcome. A non-OK Status means
  // nothing of the batch was written.
  Status Write(const Batch& batch, BatchOutcome* outcome);

 private:
  // The writes of one type, as indexes into the batch.
  struct TypeWork {
    std::vector<size_t> upserts, deletes;
  };
  // What the lookups decided, per write of the batch.
  struct WritePlan {
    explicit WritePlan(size_t n)
        : version(n, 0), not_after_us(n, std::numeric_limits<int64_t>::min()) {}
    std::vector<int64_t> version;           // the version to insert; 0: nothing to insert
    std::vector<int64_t> not_after_us;      // a changed row's stored last_updated: a kept source
                                            // instant must be later
    std::vector<std::string> clear_groups;  // groups whose group_member rows are replaced
  };

  // One attempt, inside the caller's transaction: the clock, then per type PlanType, then
  // the COPY of the new rows and the group members.
  Status TryWrite(const Batch& batch, bool force_lookup, BatchOutcome* outcome);
  // Whether upserts of `type` must be looked up (false while the type had no row when this
  // writer first met it, and no retry forces the lookup).
  Result<bool> NeedsUpsertLookup(const std::string& type, bool force_lookup);
  // Looks the type's ids up, decides each upsert's version, deletes changed rows by ctid and
  // turns deletions into tombstones (Aborted when a concurrent writer moved a row).
  Status PlanType(const Batch& batch, const std::string& type, const TypeWork& tw,
                  bool force_lookup, const std::string& last_updated, WritePlan* plan,
                  BatchOutcome* outcome);
  // Binary COPY of every row the plan inserts.
  Status CopyResources(const Batch& batch, const WritePlan& plan, int64_t now_us,
                       const std::string& last_updated);
  // Replaces the group_member rows of the plan's changed or deleted groups.
  Status ReplaceGroupMembers(const Batch& batch, const WritePlan& plan);

  PgConnection* conn_;
  std::string copy_buf_;
  TypesEmptyAtStart* empty_types_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_BATCH_WRITER_H_
