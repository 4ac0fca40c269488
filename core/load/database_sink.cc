#include <functional>
#include <string_view>
#include <utility>

#include "load/batch_sink.h"
#include "load/batch_writer.h"
#include "load/db_worker.h"

namespace fhirbulk {

namespace {

// One connection's writer: its thread, and what its batches did.
class Shard {
 public:
  Shard(std::unique_ptr<PgConnection> conn, size_t queued, TypesEmptyAtStart* empty_types)
      : writer_(conn.get(), empty_types), worker_(std::move(conn), queued) {}

  Status Write(std::shared_ptr<Batch> batch) {
    return worker_.Submit([this, batch = std::move(batch)](PgConnection*) {
      return writer_.Write(*batch, &outcome_);
    });
  }
  Status Submit(DbWorker::Task task) { return worker_.Submit(std::move(task)); }
  Status Drain() { return worker_.Drain(); }
  const BatchOutcome& outcome() const { return outcome_; }  // REQUIRES: drained

 private:
  BatchOutcome outcome_;  // written by the worker thread; read after Drain
  BatchWriter writer_;
  DbWorker worker_;  // last: joined first, before what its tasks use goes away
};

class DatabaseSink : public BatchSink {
 public:
  DatabaseSink(std::vector<std::unique_ptr<PgConnection>> conns, size_t queued) {
    for (auto& conn : conns) {
      shards_.push_back(std::make_unique<Shard>(std::move(conn), queued, &empty_types_));
    }
  }

  Status Write(std::shared_ptr<Batch> batch) override {
    if (shards_.size() == 1) return shards_[0]->Write(std::move(batch));
    std::vector<std::shared_ptr<Batch>> parts(shards_.size());
    for (PendingWrite& w : batch->writes) {
      auto& part = parts[ShardOf(w.resource.type, w.resource.id)];
      if (part == nullptr) {
        part = std::make_shared<Batch>();
        part->keep_source_last_updated = batch->keep_source_last_updated;
      }
      part->bytes += w.bytes();
      part->writes.push_back(std::move(w));
    }
    for (size_t i = 0; i < parts.size(); i++) {
      if (parts[i] != nullptr) FHIRBULK_RETURN_IF_ERROR(shards_[i]->Write(std::move(parts[i])));
    }
    return Status::OK();
  }

  Status Drain() override {
    Status first;
    for (auto& shard : shards_) {
      Status s = shard->Drain();
      if (first.ok() && !s.ok()) first = s;
    }
    if (!first.ok()) return first;
    MergeOutcomes();
    return Status::OK();
  }

  Status FindStoredIds(const std::vector<std::string>& ids,
                       std::unordered_map<std::string, std::string>* types) override {
    if (ids.empty()) return Status::OK();
    FHIRBULK_RETURN_IF_ERROR(Drain());
    std::string literal = "{";
    for (const auto& id : ids) {
      if (literal.size() > 1) literal += ',';
      literal += '"' + id + '"';  // REQUIRES: FHIR ids (no quotes or backslashes)
    }
    literal += '}';
    FHIRBULK_RETURN_IF_ERROR(shards_[0]->Submit([types, &literal](PgConnection* conn) -> Status {
      // No index serves res_id alone, so this reads every partition's primary key index;
      // the loader asks once per load, only for bare resources that point outside the load.
      auto r = conn->Exec(
          "SELECT res_id, min(res_type), count(*) FROM resource "
          "WHERE res_id = ANY($1::text[]) AND NOT deleted GROUP BY res_id",
          {literal});
      if (!r.ok()) return r.status();
      for (int i = 0; i < r->rows(); i++) {
        if (r->int64(i, 2) == 1) (*types)[r->str(i, 0)] = r->str(i, 1);  // else ambiguous
      }
      return Status::OK();
    }));
    return shards_[0]->Drain();
  }

  const BatchOutcome& outcome() const override { return outcome_; }

 private:
  size_t ShardOf(std::string_view type, std::string_view id) const {
    const size_t h = std::hash<std::string_view>()(type) * 31 + std::hash<std::string_view>()(id);
    return h % shards_.size();
  }

  // The shards' outcomes summed (absent deletions: each shard's in its order, up to the limit).
  void MergeOutcomes() {
    outcome_ = BatchOutcome();
    for (const auto& shard : shards_) outcome_.Add(shard->outcome());
  }

  TypesEmptyAtStart empty_types_;  // before the shards: their writers use it
  std::vector<std::unique_ptr<Shard>> shards_;
  BatchOutcome outcome_;  // merged by Drain
};

}  // namespace

std::unique_ptr<BatchSink> NewDatabaseSink(std::vector<std::unique_ptr<PgConnection>> conns,
                                           size_t queued) {
  return std::make_unique<DatabaseSink>(std::move(conns), queued);
}

}  // namespace fhirbulk
