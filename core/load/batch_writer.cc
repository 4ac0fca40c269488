#include "load/batch_writer.h"

#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "db/pg_copy.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

constexpr int kMaxAttempts = 5;
constexpr size_t kCopyChunk = 1 << 20;

// The transaction id first, then the clock (OFFSET 0 keeps the subquery from being flattened,
// so txid_current() is evaluated before clock_timestamp()).
constexpr const char* kClockSql =
    "SELECT t, (extract(epoch FROM clock_timestamp()) * 1000000)::int8 "
    "FROM (SELECT txid_current() AS t OFFSET 0) s";

// The stored state of some ids of one type. The LATERAL subquery (kept apart by OFFSET 0)
// makes each id an index probe of the primary key whatever the statistics say: a partition
// filled by this very load has stale or no statistics, and a plan that reads the whole
// partition for every batch would make a large load quadratic.
constexpr const char* kLookupSql =
    "SELECT k.id, r.ctid, r.version, r.content_hash, r.deleted, "
    "(extract(epoch FROM r.last_updated) * 1000000)::int8 "
    "FROM unnest($2::text[]) AS k(id), LATERAL (SELECT ctid, version, content_hash, deleted, "
    "last_updated "
    "FROM resource WHERE res_type = $1 AND res_id = k.id OFFSET 0) r";

constexpr const char* kTypeExistsSql = "SELECT EXISTS (SELECT 1 FROM resource WHERE res_type = $1)";

// Rows are changed by the ctid the lookup saw: a TID scan, and an optimistic lock, since a
// row another writer updated or deleted since then is no longer at that ctid (fewer rows).
constexpr const char* kDeleteChangedSql =
    "DELETE FROM resource WHERE res_type = $1 AND ctid = ANY($2::tid[])";

constexpr const char* kTombstoneSql =
    "UPDATE resource SET deleted = true, version = version + 1, last_updated = $3, "
    "content_hash = NULL, body = NULL, tokens = '{}', refs = '{}', date_params = '{}', "
    "date_lo = '{}', date_hi = '{}', outrefs = '{}' "
    "WHERE res_type = $1 AND ctid = ANY($2::tid[]) AND NOT deleted";

constexpr const char* kCopyResourceSql =
    "COPY resource (res_type, res_id, version, last_updated, deleted, content_hash, body, "
    "patients, tokens, refs, date_params, date_lo, date_hi, outrefs) FROM STDIN (FORMAT binary)";

constexpr const char* kCopyMembersSql =
    "COPY group_member (group_id, member_index, patient_id, inactive, period_start, period_end) "
    "FROM STDIN (FORMAT binary)";

bool IsRetryable(const Status& s) {
  if (s.code() == Status::Code::kAborted) return true;
  const std::string& m = s.message();
  return m.find("[SQLSTATE 23505]") != std::string::npos ||  // unique_violation
         m.find("[SQLSTATE 40001]") != std::string::npos ||  // serialization_failure
         m.find("[SQLSTATE 40P01]") != std::string::npos;    // deadlock_detected
}

// bytea in the server's hex output form.
std::string HashHex(const ContentHash& h) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (uint8_t b : h) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

class CopyStream {
 public:
  CopyStream(PgConnection* conn, std::string* buf) : conn_(conn), buf_(buf), enc_(buf) {}
  Status Begin(const char* sql) {
    buf_->clear();
    FHIRBULK_RETURN_IF_ERROR(conn_->CopyInBegin(sql));
    enc_.Header();
    return Status::OK();
  }
  PgCopyEncoder* enc() { return &enc_; }
  Status MaybeSend() {
    if (buf_->size() < kCopyChunk) return Status::OK();
    Status s = conn_->CopyInPut(*buf_);
    buf_->clear();
    return s;
  }
  Status End() {
    enc_.Trailer();
    Status s = conn_->CopyInPut(*buf_);
    buf_->clear();
    if (!s.ok()) {
      conn_->CopyInAbort("loader: send failed");
      return s;
    }
    return conn_->CopyInEnd();
  }

 private:
  PgConnection* conn_;
  std::string* buf_;
  PgCopyEncoder enc_;
};

void AddAbsent(BatchOutcome* out, const std::string& type, const std::string& id) {
  out->by_type[type].absent++;
  if (out->absent_deletions.size() < BatchOutcome::kMaxListed) {
    out->absent_deletions.push_back(type + "/" + id);
  }
}

}  // namespace

Status BatchWriter::Write(const Batch& batch, BatchOutcome* outcome) {
  if (batch.writes.empty()) return Status::OK();
  Status s;
  for (int attempt = 1; attempt <= kMaxAttempts; attempt++) {
    BatchOutcome local;
    // A retry looks every id up: the conflict may come from a type thought empty.
    s = PgTransaction(conn_, [&] { return TryWrite(batch, attempt > 1, &local); });
    if (s.ok()) {
      outcome->Add(local);
      return Status::OK();
    }
    if (!IsRetryable(s)) return s;
  }
  return s.WithContext("batch still conflicting with concurrent writers after " +
                       std::to_string(kMaxAttempts) + " attempts");
}

Status BatchWriter::TryWrite(const Batch& batch, bool force_lookup, BatchOutcome* outcome) {
  auto clock = conn_->Exec(kClockSql);
  if (!clock.ok()) return clock.status();
  const int64_t now_us = clock->int64(0, 1);
  const std::string last_updated = FormatInstant(now_us);

  // Types in order of first appearance.
  std::vector<std::string_view> types;
  std::unordered_map<std::string_view, TypeWork> work;
  for (size_t i = 0; i < batch.writes.size(); i++) {
    const PendingWrite& w = batch.writes[i];
    auto [it, inserted] = work.try_emplace(w.resource.type);
    if (inserted) types.push_back(w.resource.type);
    (w.is_delete ? it->second.deletes : it->second.upserts).push_back(i);
  }

  WritePlan plan(batch.writes.size());
  for (std::string_view type : types) {
    FHIRBULK_RETURN_IF_ERROR(
        PlanType(batch, std::string(type), work[type], force_lookup, last_updated, &plan, outcome));
  }
  FHIRBULK_RETURN_IF_ERROR(CopyResources(batch, plan, now_us, last_updated));
  return ReplaceGroupMembers(batch, plan);
}

Result<bool> TypesEmptyAtStart::Get(const std::string& type,
                                    const std::function<Result<bool>()>& query) {
  MutexLock lock(&mu_);
  auto known = empty_.find(type);
  if (known != empty_.end()) return known->second;
  auto empty = query();
  if (!empty.ok()) return empty.status();
  empty_.emplace(type, *empty);
  return *empty;
}

Result<bool> BatchWriter::NeedsUpsertLookup(const std::string& type, bool force_lookup) {
  if (force_lookup) return true;
  auto empty = empty_types_->Get(type, [&]() -> Result<bool> {
    auto exists = conn_->Exec(kTypeExistsSql, {type});
    if (!exists.ok()) return exists.status();
    return exists->get(0, 0) == "f";
  });
  if (!empty.ok()) return empty.status();
  return !*empty;
}

Status BatchWriter::PlanType(const Batch& batch, const std::string& type, const TypeWork& tw,
                             bool force_lookup, const std::string& last_updated, WritePlan* plan,
                             BatchOutcome* outcome) {
  LoadTypeCounts& counts = outcome->by_type[type];
  bool lookup_upserts = false;
  if (!tw.upserts.empty()) {
    auto needed = NeedsUpsertLookup(type, force_lookup);
    if (!needed.ok()) return needed.status();
    lookup_upserts = *needed;
  }

  // The stored state of the ids that need it (deletions always do).
  std::vector<std::string_view> ids;
  if (lookup_upserts) {
    for (size_t i : tw.upserts) ids.push_back(batch.writes[i].resource.id);
  }
  for (size_t i : tw.deletes) ids.push_back(batch.writes[i].resource.id);
  struct Row {
    std::string_view ctid;
    int64_t version;
    std::string_view hash;
    bool deleted;
    int64_t last_updated_us;
  };
  std::unordered_map<std::string_view, Row> rows;  // views into `stored`
  PgResult stored;
  if (!ids.empty()) {
    auto r = conn_->Exec(kLookupSql, {type, PgTextArrayLiteral(ids)});
    if (!r.ok()) return r.status();
    stored = std::move(r.value());
    rows.reserve(static_cast<size_t>(stored.rows()));
    for (int i = 0; i < stored.rows(); i++) {
      rows[stored.get(i, 0)] = Row{stored.get(i, 1), stored.int64(i, 2), stored.get(i, 3),
                                   stored.get(i, 4) == "t", stored.int64(i, 5)};
    }
  }

  // Upserts: new (version 1), unchanged (skipped) or changed (the old row deleted by ctid).
  std::vector<std::string_view> changed;  // ctids
  for (size_t i : tw.upserts) {
    const NormalizedResource& res = batch.writes[i].resource;
    auto it = rows.find(res.id);
    if (it == rows.end()) {
      plan->version[i] = 1;
    } else if (!it->second.deleted && it->second.hash == HashHex(res.hash)) {
      counts.unchanged++;
      continue;
    } else {
      plan->version[i] = it->second.version + 1;
      plan->not_after_us[i] = it->second.last_updated_us;
      changed.push_back(it->second.ctid);
    }
    counts.loaded++;
    if (batch.writes[i].is_group) plan->clear_groups.push_back(res.id);
  }
  if (!changed.empty()) {
    auto del = conn_->Exec(kDeleteChangedSql, {type, PgTextArrayLiteral(changed)});
    if (!del.ok()) return del.status();
    if (std::string_view(del->affected()) != std::to_string(changed.size())) {
      return Status::Aborted("a concurrent writer changed " + type + " resources");
    }
  }

  // Deletions: live rows become tombstones; absent or already deleted ones are reported.
  std::vector<std::string_view> doomed;  // ctids of live rows to delete
  for (size_t i : tw.deletes) {
    const std::string& id = batch.writes[i].resource.id;
    auto it = rows.find(id);
    if (it == rows.end() || it->second.deleted) {
      AddAbsent(outcome, type, id);
      continue;
    }
    doomed.push_back(it->second.ctid);
    counts.deleted++;
    if (type == "Group") plan->clear_groups.push_back(id);
  }
  if (!doomed.empty()) {
    auto del = conn_->Exec(kTombstoneSql, {type, PgTextArrayLiteral(doomed), last_updated});
    if (!del.ok()) return del.status();
    if (std::string_view(del->affected()) != std::to_string(doomed.size())) {
      return Status::Aborted("a concurrent writer changed " + type + " resources");
    }
  }
  return Status::OK();
}

Status BatchWriter::CopyResources(const Batch& batch, const WritePlan& plan, int64_t now_us,
                                  const std::string& last_updated) {
  bool any_insert = false;
  for (int64_t v : plan.version) any_insert = any_insert || v > 0;
  if (!any_insert) return Status::OK();
  CopyStream copy(conn_, &copy_buf_);
  FHIRBULK_RETURN_IF_ERROR(copy.Begin(kCopyResourceSql));
  PgCopyEncoder* enc = copy.enc();
  for (size_t i = 0; i < batch.writes.size(); i++) {
    if (plan.version[i] == 0) continue;
    const PendingWrite& w = batch.writes[i];
    // The source's instant only if it is not after the clock: a future lastUpdated would
    // sort after every later write and break _since for good.
    const std::optional<int64_t>& source = w.resource.source_last_updated_us;
    // Nor at or before the stored version's: a change must never move last_updated back,
    // or a _since export taken in between would miss it.
    const bool keep = batch.keep_source_last_updated && source && *source <= now_us &&
                      *source > plan.not_after_us[i];
    const int64_t row_us = keep ? *source : now_us;
    enc->BeginRow(14);
    enc->Text(w.resource.type);
    enc->Text(w.resource.id);
    enc->Int8(plan.version[i]);
    enc->TimestampTz(row_us);
    enc->Bool(false);
    enc->Bytea(w.resource.hash.data(), w.resource.hash.size());
    enc->BeginText();
    // FormatInstant of the column's value: the body's meta.lastUpdated parses back to it.
    AppendBody(&copy_buf_, w.resource, std::to_string(plan.version[i]),
               keep ? FormatInstant(row_us) : last_updated);
    enc->EndText();
    enc->AppendEncoded(w.index_fields);
    FHIRBULK_RETURN_IF_ERROR(copy.MaybeSend());
  }
  return copy.End();
}

Status BatchWriter::ReplaceGroupMembers(const Batch& batch, const WritePlan& plan) {
  if (plan.clear_groups.empty()) return Status::OK();
  auto del = conn_->Exec("DELETE FROM group_member WHERE group_id = ANY($1::text[])",
                         {PgTextArrayLiteral(plan.clear_groups)});
  if (!del.ok()) return del.status();
  bool any_member = false;
  for (size_t i = 0; i < batch.writes.size(); i++) {
    any_member = any_member || (plan.version[i] > 0 && !batch.writes[i].members.empty());
  }
  if (!any_member) return Status::OK();
  CopyStream copy(conn_, &copy_buf_);
  FHIRBULK_RETURN_IF_ERROR(copy.Begin(kCopyMembersSql));
  PgCopyEncoder* enc = copy.enc();
  for (size_t i = 0; i < batch.writes.size(); i++) {
    if (plan.version[i] == 0) continue;
    const PendingWrite& w = batch.writes[i];
    for (size_t m = 0; m < w.members.size(); m++) {
      const GroupMemberEntry& e = w.members[m];
      enc->BeginRow(6);
      enc->Text(w.resource.id);
      enc->Int4(static_cast<int32_t>(m));
      enc->Text(e.patient_id);
      enc->Bool(e.inactive);
      if (e.has_start) {
        enc->TimestampTz(e.period_start_us);
      } else {
        enc->Null();
      }
      if (e.has_end) {
        enc->TimestampTz(e.period_end_us);
      } else {
        enc->Null();
      }
    }
    FHIRBULK_RETURN_IF_ERROR(copy.MaybeSend());
  }
  return copy.End();
}

}  // namespace fhirbulk
