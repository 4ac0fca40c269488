// BatchSink: where the loader's batches go.
//
// The loader's parsing side (inputs, Bundles, rejections, batching) knows only this interface;
// the database side implements it with a DbWorker thread and a BatchWriter. Tests substitute
// a sink that records the batches, so all of the parsing side runs without a database.
//
// Thread-safety: called by the loader's thread only.

#ifndef FHIRBULK_LOAD_BATCH_SINK_H_
#define FHIRBULK_LOAD_BATCH_SINK_H_

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/pg.h"
#include "load/batch.h"

namespace fhirbulk {

class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Writes the batch after those given before (possibly later, on another thread; the sink
  // may take its writes apart). Every write of a Type/id is applied after the earlier writes
  // of that Type/id. Returns the error of an earlier batch if one failed: the load cannot go on.
  virtual Status Write(std::shared_ptr<Batch> batch) = 0;
  // Waits until every batch is written; the first error, if any.
  virtual Status Drain() = 0;
  // For each of `ids` that is the id of exactly one live stored resource: id -> its type.
  // REQUIRES: drained.
  virtual Status FindStoredIds(const std::vector<std::string>& ids,
                               std::unordered_map<std::string, std::string>* types) = 0;
  // What the written batches did. REQUIRES: drained.
  virtual const BatchOutcome& outcome() const = 0;
};

// The real sink: one writer per connection in `conns`, each a DbWorker thread writing through a
// BatchWriter with up to `queued` batches waiting (bounded memory). With several writers a batch
// is split by a hash of Type/id, so every Type/id has one writer and keeps its order, and the
// database works on several transactions at once (its CPU, not the loader's, is what limits a
// load: index upkeep and TOAST). REQUIRES: conns not empty.
std::unique_ptr<BatchSink> NewDatabaseSink(std::vector<std::unique_ptr<PgConnection>> conns,
                                           size_t queued);

// A Loader writing into `sink` instead of a database (Loader::Open uses NewDatabaseSink).
std::unique_ptr<Loader> NewLoaderWithSink(const LoadOptions& options,
                                          std::unique_ptr<BatchSink> sink);

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_BATCH_SINK_H_
