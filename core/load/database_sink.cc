#include "load/batch_sink.h"
#include "load/batch_writer.h"
#include "load/db_worker.h"

namespace fhirbulk {

namespace {

class DatabaseSink : public BatchSink {
 public:
  DatabaseSink(std::unique_ptr<PgConnection> conn, size_t queued)
      : writer_(conn.get()), worker_(std::move(conn), queued) {}

  Status Write(std::shared_ptr<const Batch> batch) override {
    return worker_.Submit(
        [this, batch](PgConnection*) { return writer_.Write(*batch, &outcome_); });
  }

  Status Drain() override { return worker_.Drain(); }

  Status FindStoredIds(const std::vector<std::string>& ids,
                       std::unordered_map<std::string, std::string>* types) override {
    if (ids.empty()) return Status::OK();
    std::string literal = "{";
    for (const auto& id : ids) {
      if (literal.size() > 1) literal += ',';
      literal += '"' + id + '"';  // REQUIRES: FHIR ids (no quotes or backslashes)
    }
    literal += '}';
    FHIRBULK_RETURN_IF_ERROR(worker_.Submit([types, &literal](PgConnection* conn) -> Status {
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
    return worker_.Drain();
  }

  const BatchOutcome& outcome() const override { return outcome_; }

 private:
  BatchOutcome outcome_;  // written by the worker thread; read after Drain
  BatchWriter writer_;
  DbWorker worker_;  // last: joined first, before what its tasks use goes away
};

}  // namespace

std::unique_ptr<BatchSink> NewDatabaseSink(std::unique_ptr<PgConnection> conn, size_t queued) {
  return std::make_unique<DatabaseSink>(std::move(conn), queued);
}

}  // namespace fhirbulk
