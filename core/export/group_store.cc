#include "export/group_store.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "export/type_filter_sql.h"
#include "fhir/resource_index.h"
#include "util/fhir_time.h"
#include "util/json_depth.h"

namespace fhirbulk {

namespace {

constexpr int kMaxGroupJsonDepth = 32;
constexpr size_t kMaxFilterBytes = 4096;
constexpr size_t kMaxListedMissing = 20;

using rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

const Value* Member(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// The stored body: the client's Group with the server's id, meta, quantity and `member` (the
// cohort's computed members when `computed` is set), and the members-refreshed extension for
// a cohort.
std::string BuildBody(const rapidjson::Document& doc, const std::string& id, int64_t version,
                      int64_t last_updated_us, const std::vector<std::string>* computed,
                      size_t member_count, std::optional<int64_t> refreshed_us) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("resourceType");
  w.String("Group");
  w.Key("id");
  w.String(id.c_str());
  w.Key("meta");
  w.StartObject();
  w.Key("versionId");
  w.String(std::to_string(version).c_str());
  w.Key("lastUpdated");
  w.String(FormatInstant(last_updated_us).c_str());
  w.EndObject();
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (key == "resourceType" || key == "id" || key == "meta" || key == "quantity" ||
        key == "actual" || key == "extension" || (key == "member" && computed != nullptr)) {
      continue;
    }
    w.Key(it->name.GetString(), it->name.GetStringLength());
    it->value.Accept(w);
  }
  w.Key("actual");
  w.Bool(true);
  w.Key("quantity");
  w.Uint64(member_count);
  if (computed != nullptr && !computed->empty()) {
    w.Key("member");
    w.StartArray();
    for (const std::string& p : *computed) {
      w.StartObject();
      w.Key("entity");
      w.StartObject();
      w.Key("reference");
      w.String(("Patient/" + p).c_str());
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  const Value* ext = Member(doc, "extension");
  bool any_ext = refreshed_us.has_value();
  if (ext != nullptr && ext->IsArray()) any_ext = any_ext || !ext->Empty();
  if (any_ext) {
    w.Key("extension");
    w.StartArray();
    if (ext != nullptr && ext->IsArray()) {
      for (const Value& e : ext->GetArray()) {
        const Value* url = e.IsObject() ? Member(e, "url") : nullptr;
        if (url != nullptr && url->IsString() &&
            std::string_view(url->GetString()) == kMembersRefreshedUrl) {
          continue;  // the server's own value replaces the client's
        }
        e.Accept(w);
      }
    }
    if (refreshed_us) {
      w.StartObject();
      w.Key("url");
      w.String(kMembersRefreshedUrl.data(),
               static_cast<rapidjson::SizeType>(kMembersRefreshedUrl.size()));
      w.Key("valueDateTime");
      w.String(FormatInstant(*refreshed_us).c_str());
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

Status ParseGroupBody(std::string_view body, const std::string& base_url, const GroupLimits& limits,
                      const std::string* url_id, ParsedGroup* out) {
  if (body.empty()) return Status::InvalidArgument("body: a Group resource is required");
  if (body.size() > limits.max_body_bytes) {
    return Status::TooLarge("body: too large, over the limit of " +
                            std::to_string(limits.max_body_bytes) + " bytes");
  }
  if (!JsonNestingWithin(body, kMaxGroupJsonDepth)) {
    return Status::InvalidArgument("body: JSON nested deeper than " +
                                   std::to_string(kMaxGroupJsonDepth) + " levels");
  }
  rapidjson::Document& doc = out->doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                    body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("body is not a JSON object");
  }
  const Value* rt = Member(doc, "resourceType");
  if (rt == nullptr || !rt->IsString() || std::string_view(rt->GetString()) != "Group") {
    return Status::InvalidArgument("resourceType: the body must be a Group");
  }
  if (const Value* id = Member(doc, "id"); id != nullptr && url_id != nullptr) {
    if (!id->IsString() || *url_id != id->GetString()) {
      return Status::InvalidArgument("id: the body's id must match the URL's (Group/" + *url_id +
                                     ")");
    }
  }
  const Value* type = Member(doc, "type");
  if (type == nullptr || !type->IsString()) {
    return Status::InvalidArgument("type: required (\"person\")");
  }
  if (std::string_view(type->GetString()) != "person") {
    return Status::NotSupported("type: only Groups of patients (\"person\") are supported");
  }
  if (const Value* a = Member(doc, "actual"); a != nullptr && !a->IsBool()) {
    return Status::InvalidArgument("actual: must be a boolean");
  }
  if (Member(doc, "characteristic") != nullptr) {
    return Status::NotSupported(
        "characteristic: not supported; describe a cohort with member-filter extensions");
  }
  const Value* name = Member(doc, "name");
  if (name != nullptr && (!name->IsString() || name->GetStringLength() == 0)) {
    return Status::InvalidArgument("name: must be a non-empty string");
  }
  if (const Value* mx = Member(doc, "modifierExtension"); mx != nullptr) {
    if (!mx->IsArray()) return Status::InvalidArgument("modifierExtension: must be an array");
    if (mx->Size() > limits.max_filters) {
      return Status::InvalidArgument("modifierExtension: " + std::to_string(mx->Size()) +
                                     " member-filter extensions, over the limit of " +
                                     std::to_string(limits.max_filters) + " per Group");
    }
    for (const Value& ext : mx->GetArray()) {
      const Value* url = ext.IsObject() ? Member(ext, "url") : nullptr;
      if (url == nullptr || !url->IsString()) {
        return Status::InvalidArgument("modifierExtension: each needs a url");
      }
      if (std::string_view(url->GetString()) != kMemberFilterUrl) {
        return Status::NotSupported(
            "modifierExtension '" + std::string(url->GetString(), url->GetStringLength()) +
            "' is not supported (only " + std::string(kMemberFilterUrl) + ")");
      }
      const Value* ve = Member(ext, "valueExpression");
      const Value* lang = ve != nullptr && ve->IsObject() ? Member(*ve, "language") : nullptr;
      const Value* expr = ve != nullptr && ve->IsObject() ? Member(*ve, "expression") : nullptr;
      if (lang == nullptr || !lang->IsString() || expr == nullptr || !expr->IsString() ||
          expr->GetStringLength() == 0) {
        return Status::InvalidArgument(
            "member-filter: needs a valueExpression with language and expression");
      }
      if (std::string_view(lang->GetString()) != "application/x-fhir-query") {
        return Status::NotSupported("member-filter: language must be application/x-fhir-query");
      }
      if (expr->GetStringLength() > kMaxFilterBytes) {
        return Status::InvalidArgument("member-filter: expression longer than " +
                                       std::to_string(kMaxFilterBytes) + " bytes");
      }
      KickoffLimits kl;
      auto f = ParseMemberFilter(std::string_view(expr->GetString(), expr->GetStringLength()),
                                 base_url, kl);
      if (!f.ok()) return f.status();
      out->filters.push_back(std::move(f).value());
    }
  }
  if (!out->filters.empty() && name == nullptr) {
    return Status::InvalidArgument("name: required for a criteria-based Group (bulk-cohort-group)");
  }
  if (Value* members = doc.HasMember("member") ? &doc["member"] : nullptr; members != nullptr) {
    if (!members->IsArray()) return Status::InvalidArgument("member: must be an array");
    if (members->Size() > limits.max_members) {
      return Status::InvalidArgument("member: " + std::to_string(members->Size()) +
                                     " members, over the limit of " +
                                     std::to_string(limits.max_members) + " per Group");
    }
    const std::string absolute_prefix = base_url + "/";
    out->patient_ids.reserve(members->Size());
    size_t index = 0;
    for (Value& m : members->GetArray()) {
      Value* entity = m.IsObject() && m.HasMember("entity") ? &m["entity"] : nullptr;
      Value* ref = entity != nullptr && entity->IsObject() && entity->HasMember("reference")
                       ? &(*entity)["reference"]
                       : nullptr;
      if (ref == nullptr || !ref->IsString()) {
        return Status::InvalidArgument("member[" + std::to_string(index) +
                                       "]: entity.reference is required");
      }
      std::string_view text(ref->GetString(), ref->GetStringLength());
      if (text.substr(0, absolute_prefix.size()) == absolute_prefix) {
        text.remove_prefix(absolute_prefix.size());
      }
      RelativeReference rr;
      if (!ParseRelativeReference(text, &rr) || rr.type != "Patient") {
        return Status::InvalidArgument("member[" + std::to_string(index) +
                                       "]: entity must reference a Patient (Patient/<id>)");
      }
      out->patient_ids.emplace_back(rr.id);
      std::string normalized = "Patient/" + std::string(rr.id);
      ref->SetString(normalized.data(), static_cast<rapidjson::SizeType>(normalized.size()),
                     doc.GetAllocator());
      index++;
    }
  }
  return Status::OK();
}

Result<std::optional<GroupRow>> FindGroup(PgConnection* conn, const std::string& id,
                                          bool for_update) {
  std::string sql =
      "SELECT r.version, r.body, o.client_id, o.criteria IS NOT NULL FROM resource_group r "
      "LEFT JOIN group_owner o ON o.group_id = r.res_id "
      "WHERE r.res_id = $1 AND NOT r.deleted";
  if (for_update) sql += " FOR UPDATE OF r";
  auto r = conn->Exec(sql, {id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<GroupRow>();
  GroupRow g;
  g.version = r->int64(0, 0);
  g.body = r->str(0, 1);
  if (!r->is_null(0, 2)) g.owner = r->str(0, 2);
  g.criteria = r->get(0, 3) == "t";
  return std::optional<GroupRow>(std::move(g));
}

// Patients of `ids` without a live Patient resource, in order (at most kMaxListedMissing
// named, *total counts them all).
Result<std::vector<std::string>> MissingPatients(PgConnection* conn,
                                                 const std::vector<std::string>& ids,
                                                 int64_t* total) {
  auto r = conn->Exec(
      "SELECT p FROM unnest($1::text[]) WITH ORDINALITY AS u(p, n) WHERE NOT EXISTS ("
      " SELECT 1 FROM resource r WHERE r.res_type = 'Patient' AND r.res_id = u.p"
      " AND NOT r.deleted) ORDER BY u.n",
      {PgTextArrayLiteral(ids)});
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  *total = r->rows();
  for (int i = 0; i < r->rows() && out.size() < kMaxListedMissing; i++) out.push_back(r->str(i, 0));
  return out;
}

Status StoreGroup(PgConnection* conn, const std::string& id, const std::string& client_id,
                  const std::string& base_url, const ParsedGroup& parsed,
                  const std::vector<std::string>* computed, std::optional<int64_t> refreshed_us,
                  int64_t version, int64_t now_us, std::string* body_out) {
  const std::vector<std::string>& members = computed != nullptr ? *computed : parsed.patient_ids;
  std::string body =
      BuildBody(parsed.doc, id, version, now_us, computed, members.size(), refreshed_us);
  rapidjson::Document stored;
  stored.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (stored.HasParseError()) return Status::Internal("built an unparsable Group");
  ResourceIndex index;
  FHIRBULK_RETURN_IF_ERROR(IndexResource(stored, &index));
  std::vector<GroupMemberEntry> entries;
  FHIRBULK_RETURN_IF_ERROR(ExtractGroupMembers(stored, &entries));
  std::vector<std::string> date_params, date_lo, date_hi;
  for (const DateIndexValue& d : index.dates) {
    date_params.push_back(d.param);
    date_lo.push_back(PgTimestampParam(d.lo_us));
    date_hi.push_back(PgTimestampParam(d.hi_us));
  }
  const std::string version_text = std::to_string(version);
  const std::string updated = PgTimestampParam(now_us);
  const std::string patients = PgTextArrayLiteral(index.patients);
  const std::string tokens = PgTextArrayLiteral(index.tokens);
  const std::string refs = PgTextArrayLiteral(index.refs);
  const std::string dp = PgTextArrayLiteral(date_params);
  const std::string dl = PgTextArrayLiteral(date_lo);
  const std::string dh = PgTextArrayLiteral(date_hi);
  const std::string outrefs = PgTextArrayLiteral(index.outrefs);
  auto del = conn->Exec("DELETE FROM resource_group WHERE res_id = $1", {id});
  if (!del.ok()) return del.status();
  auto ins = conn->Exec(
      "INSERT INTO resource_group (res_type, res_id, version, last_updated, deleted, body, "
      "patients,"
      " tokens, refs, date_params, date_lo, date_hi, outrefs) VALUES ('Group', $1, $2::int8,"
      " $3::timestamptz, false, $4, $5::text[], $6::text[], $7::text[], $8::text[],"
      " $9::timestamptz[], $10::timestamptz[], $11::text[])",
      {id, version_text, updated, body, patients, tokens, refs, dp, dl, dh, outrefs});
  if (!ins.ok()) return ins.status();
  auto clear = conn->Exec("DELETE FROM group_member WHERE group_id = $1", {id});
  if (!clear.ok()) return clear.status();
  if (!entries.empty()) {
    std::vector<std::string> ids, inactive, starts, ends;
    for (const GroupMemberEntry& e : entries) {
      ids.push_back(e.patient_id);
      inactive.emplace_back(e.inactive ? "t" : "f");
      starts.push_back(e.has_start ? PgTimestampParam(e.period_start_us) : "");
      ends.push_back(e.has_end ? PgTimestampParam(e.period_end_us) : "");
    }
    auto m = conn->Exec(
        "INSERT INTO group_member (group_id, member_index, patient_id, inactive, period_start,"
        " period_end) SELECT $1, (u.n - 1)::int4, u.p, u.i::boolean,"
        " nullif(u.s, '')::timestamptz, nullif(u.e, '')::timestamptz"
        " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])"
        " WITH ORDINALITY AS u(p, i, s, e, n)",
        {id, PgTextArrayLiteral(ids), PgTextArrayLiteral(inactive), PgTextArrayLiteral(starts),
         PgTextArrayLiteral(ends)});
    if (!m.ok()) return m.status();
  }
  std::vector<std::string> criteria;
  for (const CohortFilter& f : parsed.filters) criteria.push_back(f.expression);
  const std::string refreshed = refreshed_us ? PgTimestampParam(*refreshed_us) : "";
  const std::string criteria_array = PgTextArrayLiteral(criteria);
  const bool cohort = !parsed.filters.empty();
  auto own = conn->Exec(
      "INSERT INTO group_owner (group_id, client_id, criteria, members_refreshed, candidates,"
      " base_url) VALUES ($1, $2, $3::text[], nullif($4, '')::timestamptz, $5::text[], $6)"
      " ON CONFLICT (group_id) DO UPDATE SET criteria = EXCLUDED.criteria,"
      " members_refreshed = EXCLUDED.members_refreshed, candidates = EXCLUDED.candidates,"
      " base_url = EXCLUDED.base_url",
      {id, client_id, cohort ? PgParam(criteria_array) : PgParam(), refreshed,
       cohort && !parsed.patient_ids.empty() ? PgParam(PgTextArrayLiteral(parsed.patient_ids))
                                             : PgParam(),
       cohort ? PgParam(base_url) : PgParam()});
  if (!own.ok()) return own.status();
  *body_out = std::move(body);
  return Status::OK();
}

Result<int64_t> WriteClock(PgConnection* conn, int64_t not_after_us) {
  auto r = conn->Exec(
      "SELECT t, (extract(epoch FROM clock_timestamp()) * 1000000)::int8 "
      "FROM (SELECT txid_current() AS t OFFSET 0) s");
  if (!r.ok()) return r.status();
  return std::max<int64_t>(r->int64(0, 1), not_after_us + 1);
}

bool IsStatementTimeout(const Status& s) {
  return s.message().find("statement timeout") != std::string::npos;
}

Result<std::vector<std::string>> EvaluateCohort(PgConnection* conn,
                                                const std::vector<CohortFilter>& filters,
                                                const std::vector<std::string>* candidates,
                                                int timeout_ms, size_t max_members,
                                                int64_t* evaluated_us) {
  std::string sql;
  std::vector<std::string> params;
  FHIRBULK_RETURN_IF_ERROR(CohortSql(filters, candidates, &sql, &params));
  // The timeout applies to the evaluation only: the caller's own setting comes back after it
  // (ROLLBACK TO undoes SET LOCAL; RELEASE would keep it, so it is set back first).
  auto now = conn->Exec(
      "SELECT current_setting('statement_timeout'), "
      "(extract(epoch FROM clock_timestamp()) * 1000000)::int8");
  if (!now.ok()) return now.status();
  const std::string outer_timeout = now->str(0, 0);
  *evaluated_us = now->int64(0, 1);
  auto set = conn->Exec("SAVEPOINT cohort; SET LOCAL statement_timeout = " +
                        std::to_string(std::max(1, timeout_ms)));
  if (!set.ok()) return set.status();
  std::vector<PgParam> bound(params.begin(), params.end());
  auto r = conn->Exec(sql, bound);
  if (r.ok()) {
    auto back = conn->Exec("SELECT set_config('statement_timeout', $1, true)", {outer_timeout});
    if (!back.ok()) return back.status();
  }
  auto end = conn->Exec(r.ok() ? "RELEASE SAVEPOINT cohort" : "ROLLBACK TO SAVEPOINT cohort");
  if (!end.ok()) return end.status();
  if (!r.ok()) {
    if (IsStatementTimeout(r.status())) {
      return Status::Aborted("the cohort's evaluation took longer than " +
                             std::to_string(timeout_ms) + " ms; narrow its member-filters");
    }
    return r.status();
  }
  if (static_cast<size_t>(r->rows()) > max_members) {
    return Status::ResourceExhausted("the cohort has " + std::to_string(r->rows()) +
                                     " members, over the limit of " + std::to_string(max_members) +
                                     " per Group; narrow its member-filters");
  }
  std::vector<std::string> members;
  members.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); i++) members.push_back(r->str(i, 0));
  return members;
}

}  // namespace fhirbulk
