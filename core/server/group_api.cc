// The Group API (group_api.h): the Server's fast and blocking halves for /Group routes, and
// the storage of created Groups.

#include "server/group_api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "auth/access_token.h"
#include "auth/client_store.h"
#include "export/cohort.h"
#include "export/type_filter_sql.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "http/outcome.h"
#include "http/query_string.h"
#include "server/access.h"
#include "server/server.h"
#include "util/fhir_time.h"
#include "util/json_depth.h"

namespace fhirbulk {

namespace {

constexpr int kMaxGroupJsonDepth = 32;
constexpr size_t kMaxFilterBytes = 4096;
constexpr int kDefaultSearchCount = 50;
constexpr int kMaxSearchCount = 500;
constexpr size_t kMaxListedMissing = 20;
constexpr const char* kFhirJsonType = "application/fhir+json";

using rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Server-assigned ids: 128 random bits, base64url with '_' spelled '.' (FHIR ids allow
// [A-Za-z0-9-.]); unguessable, so an id reveals nothing about other clients' Groups.
std::string NewGroupId() {
  std::string id = RandomId();
  std::replace(id.begin(), id.end(), '_', '.');
  return id;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const Value* Member(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// What a Group write body says, validated (group_api.h, "Writes").
struct ParsedGroup {
  rapidjson::Document doc;
  std::vector<std::string> patient_ids;  // member entities, normalized, in order
  std::vector<CohortFilter> filters;
};

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

// One stored Group as the routes see it.
struct GroupRow {
  int64_t version = 0;
  std::string body;
  std::optional<std::string> owner;  // nullopt: loaded
  bool criteria = false;
};

Result<std::optional<GroupRow>> FindGroup(PgConnection* conn, const std::string& id,
                                          bool for_update) {
  std::string sql =
      "SELECT r.version, r.body, o.client_id, o.criteria IS NOT NULL FROM resource r "
      "LEFT JOIN group_owner o ON o.group_id = r.res_id "
      "WHERE r.res_type = 'Group' AND r.res_id = $1 AND NOT r.deleted";
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

bool Visible(const GroupViewer& v, const std::string& id, const GroupRow& g) {
  if (g.owner) return *g.owner == v.client_id;
  return !v.group_restricted ||
         std::find(v.allowed_groups.begin(), v.allowed_groups.end(), id) != v.allowed_groups.end();
}

Status NotFoundGroup(const std::string& id) {
  return Status::NotFound("Group/" + id + " does not exist");
}

// The row of a Group this viewer may change: NotFound when invisible, PermissionDenied for a
// loaded Group.
Result<GroupRow> OwnedGroup(PgConnection* conn, const GroupViewer& v, const std::string& id) {
  auto g = FindGroup(conn, id, true);
  if (!g.ok()) return g.status();
  if (!g->has_value() || !Visible(v, id, **g)) return NotFoundGroup(id);
  if (!(*g)->owner) {
    return Status::PermissionDenied("Group/" + id +
                                    " is managed by the server (loaded), not through the API");
  }
  return std::move(**g);
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

// The write of a created or replaced Group (inside the caller's transaction): resource row
// with its index, group_member rows, group_owner row. version: 1 for a new Group.
Status StoreGroup(PgConnection* conn, const std::string& id, const std::string& client_id,
                  const ParsedGroup& parsed, const std::vector<std::string>* computed,
                  std::optional<int64_t> refreshed_us, int64_t version, int64_t now_us,
                  std::string* body_out) {
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
  auto del = conn->Exec("DELETE FROM resource WHERE res_type = 'Group' AND res_id = $1", {id});
  if (!del.ok()) return del.status();
  auto ins = conn->Exec(
      "INSERT INTO resource (res_type, res_id, version, last_updated, deleted, body, patients,"
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
  auto own = conn->Exec(
      "INSERT INTO group_owner (group_id, client_id, criteria, members_refreshed)"
      " VALUES ($1, $2, $3::text[], nullif($4, '')::timestamptz)"
      " ON CONFLICT (group_id) DO UPDATE SET criteria = EXCLUDED.criteria,"
      " members_refreshed = EXCLUDED.members_refreshed",
      {id, client_id, parsed.filters.empty() ? PgParam() : PgParam(criteria_array), refreshed});
  if (!own.ok()) return own.status();
  *body_out = std::move(body);
  return Status::OK();
}

// The writing transaction's clock, taken after it holds its xid (as the loader does), so an
// export that picks a transactionTime and waits for older writers sees this write or not at
// all; never at or before `not_after_us` (a change must not move last_updated back).
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

struct WriteResult {
  HttpResponse response;    // the answer to the write (sync) or to its polls (async)
  bool recordable = false;  // an outcome of the evaluation, for the status URL
};

std::string SearchParamError(std::string_view what) { return "search: " + std::string(what); }

}  // namespace

Status AuthorizeGroupExport(PgConnection* conn, const GroupViewer& viewer,
                            const ExportRequest& request) {
  if (request.level == ExportLevel::kGroup) {
    auto r =
        conn->Exec("SELECT client_id FROM group_owner WHERE group_id = $1", {request.group_id});
    if (!r.ok()) return r.status();
    if (r->rows() > 0) {
      if (r->get(0, 0) != viewer.client_id) return NotFoundGroup(request.group_id);
      return Status::OK();
    }
  }
  return AuthorizeGroupPolicy(viewer.group_restricted, viewer.allowed_groups, request);
}

std::unique_ptr<PendingRequest> Server::FastGroup(const HttpRequest& req, const Route& route,
                                                  HttpResponse* resp) const {
  const bool get_like = req.method == HttpMethod::kGet || req.method == HttpMethod::kHead;
  GroupCall call;
  uint8_t need = 0;
  const char* what = "";
  if (route.kind == Route::kGroupType) {
    if (get_like) {
      call.op = GroupCall::Op::kSearch;
      need = kScopeSearch;
      what = "search Groups";
    } else if (req.method == HttpMethod::kPost) {
      call.op = GroupCall::Op::kCreate;
      need = kScopeCreate;
      what = "create Groups";
    } else {
      *resp = OutcomeResponse(405, "not-supported", "/Group supports GET, POST only");
      resp->AddHeader("Allow", "GET, HEAD, POST");
      return nullptr;
    }
  } else if (route.kind == Route::kGroupInstance) {
    call.id = route.group_id;
    if (get_like) {
      call.op = GroupCall::Op::kRead;
      need = kScopeRead;
      what = "read Groups";
    } else if (req.method == HttpMethod::kPut) {
      call.op = GroupCall::Op::kUpdate;
      need = kScopeUpdate;
      what = "update Groups";
    } else if (req.method == HttpMethod::kDelete) {
      call.op = GroupCall::Op::kDelete;
      need = kScopeDelete;
      what = "delete Groups";
    } else {
      *resp = OutcomeResponse(405, "not-supported", "/Group/[id] supports GET, PUT, DELETE only");
      resp->AddHeader("Allow", "GET, HEAD, PUT, DELETE");
      return nullptr;
    }
  } else {
    if (!get_like) {
      *resp = OutcomeResponse(405, "not-supported", "the Group status URL supports GET only");
      resp->AddHeader("Allow", "GET, HEAD");
      return nullptr;
    }
    call.op = GroupCall::Op::kStatus;
    call.id = route.job_id;
  }
  const bool write = call.op == GroupCall::Op::kCreate || call.op == GroupCall::Op::kUpdate;
  if (write) {
    // Size first: the cheapest check, before anything is copied.
    if (req.body.size() > group_limits_.max_body_bytes) {
      *resp =
          StatusResponse(Status::TooLarge("body: too large, over the limit of " +
                                          std::to_string(group_limits_.max_body_bytes) + " bytes"),
                         0);
      return nullptr;
    }
    std::string ct = Lower(req.content_type.substr(0, req.content_type.find(';')));
    while (!ct.empty() && ct.back() == ' ') ct.pop_back();
    if (ct != "application/fhir+json" && ct != "application/json") {
      *resp = OutcomeResponse(415, "not-supported",
                              "Content-Type: a Group write needs application/fhir+json");
      return nullptr;
    }
  }
  auto principal = Authenticate(req, resp);
  if (!principal) return nullptr;
  const ScopeSet& scopes = principal->scopes;
  bool allowed = call.op == GroupCall::Op::kStatus
                     ? scopes.Grants("Group", kScopeCreate) || scopes.Grants("Group", kScopeUpdate)
                     : scopes.Grants("Group", need);
  if (!allowed) {
    *resp = StatusResponse(
        Status::PermissionDenied(call.op == GroupCall::Op::kStatus
                                     ? std::string("the access token does not allow writing Groups")
                                     : "the access token does not allow this client to " +
                                           std::string(what)),
        0);
    Audit(req.remote_addr, "group", principal->client_id, std::string(req.path), *resp,
          "insufficient scope");
    return nullptr;
  }
  if (write) call.body = std::string(req.body);
  if (call.op == GroupCall::Op::kSearch) call.query = std::string(req.query);
  call.respond_async = Lower(req.prefer).find("respond-async") != std::string::npos;
  auto p = std::make_unique<PendingRequest>();
  p->kind = PendingRequest::Kind::kGroup;
  p->principal = std::move(*principal);
  p->group = std::move(call);
  p->target = std::string(req.path);
  p->remote_addr = std::string(req.remote_addr);
  return p;
}

void Server::HandleGroup(const PendingRequest& pending, HttpResponse* resp) const {
  const GroupCall& call = pending.group;
  GroupViewer viewer;
  viewer.client_id = pending.principal.client_id;
  const std::string& base = options_.base_url;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    if (options_.auth_enabled) {
      auto policy = EnabledClientPolicy(c, viewer.client_id);
      if (!policy.ok()) return policy.status();
      if (!policy->has_value()) return Status::Unauthenticated("the client is disabled");
      viewer.group_restricted = (*policy)->group_restricted;
      viewer.allowed_groups = (*policy)->allowed_groups;
    }
    switch (call.op) {
      case GroupCall::Op::kRead: {
        auto g = FindGroup(c, call.id, false);
        if (!g.ok()) return g.status();
        if (!g->has_value() || !Visible(viewer, call.id, **g)) return NotFoundGroup(call.id);
        resp->status = 200;
        resp->content_type = kFhirJsonType;
        resp->body = std::move((*g)->body);
        resp->AddHeader("ETag", "W/\"" + std::to_string((*g)->version) + "\"");
        return Status::OK();
      }
      case GroupCall::Op::kSearch:
        return SearchGroups(c, viewer, call.query, resp);
      case GroupCall::Op::kDelete: {
        return PgTransaction(
            c,
            [&]() -> Status {
              auto g = OwnedGroup(c, viewer, call.id);
              if (!g.ok()) return g.status();
              auto clock = WriteClock(c, 0);
              if (!clock.ok()) return clock.status();
              auto t = c->Exec(
                  "UPDATE resource SET deleted = true, version = version + 1,"
                  " last_updated = greatest($2::timestamptz, last_updated + interval '1 "
                  "microsecond'),"
                  " content_hash = NULL, body = NULL, patients = '{}', tokens = '{}', refs = '{}',"
                  " date_params = '{}', date_lo = '{}', date_hi = '{}', outrefs = '{}'"
                  " WHERE res_type = 'Group' AND res_id = $1 AND NOT deleted",
                  {call.id, PgTimestampParam(*clock)});
              if (!t.ok()) return t.status();
              for (const char* sql : {"DELETE FROM group_member WHERE group_id = $1",
                                      "DELETE FROM group_owner WHERE group_id = $1"}) {
                auto d = c->Exec(sql, {call.id});
                if (!d.ok()) return d.status();
              }
              resp->status = 204;
              return Status::OK();
            },
            "BEGIN; SET LOCAL synchronous_commit = on");
      }
      case GroupCall::Op::kStatus: {
        auto r = c->Exec(
            "SELECT group_id, error_json, http_status FROM group_request"
            " WHERE request_id = $1 AND client_id = $2 AND created_at > now() - interval '1 day'",
            {call.id, viewer.client_id});
        if (!r.ok()) return r.status();
        if (r->rows() == 0) return Status::NotFound("no Group request " + call.id);
        if (r->is_null(0, 0)) {
          resp->status = static_cast<int>(r->int64(0, 2));
          resp->content_type = kFhirJsonType;
          resp->body = r->str(0, 1);
          return Status::OK();
        }
        const std::string id = r->str(0, 0);
        auto g = FindGroup(c, id, false);
        if (!g.ok()) return g.status();
        if (!g->has_value() || !Visible(viewer, id, **g)) {
          return Status::NotFound("Group/" + id + " was created by this request and deleted since");
        }
        resp->status = static_cast<int>(r->int64(0, 2));
        resp->content_type = kFhirJsonType;
        resp->body = std::move((*g)->body);
        resp->AddHeader("Location",
                        base + "/Group/" + id + "/_history/" + std::to_string((*g)->version));
        resp->AddHeader("ETag", "W/\"" + std::to_string((*g)->version) + "\"");
        return Status::OK();
      }
      case GroupCall::Op::kCreate:
      case GroupCall::Op::kUpdate:
        return WriteGroup(c, viewer, call, resp);
    }
    return Status::Internal("unknown Group operation");
  });
  if (!s.ok()) *resp = StatusResponse(s, options_.retry_after_unavailable);
  if (call.op != GroupCall::Op::kRead && call.op != GroupCall::Op::kSearch &&
      call.op != GroupCall::Op::kStatus) {
    Audit(pending.remote_addr, "group", viewer.client_id, pending.target, *resp,
          s.ok() ? "" : s.message());
  }
}

Status Server::WriteGroup(PgConnection* c, const GroupViewer& viewer, const GroupCall& call,
                          HttpResponse* resp) const {
  const bool create = call.op == GroupCall::Op::kCreate;
  ParsedGroup parsed;
  FHIRBULK_RETURN_IF_ERROR(ParseGroupBody(call.body, options_.base_url, group_limits_,
                                          create ? nullptr : &call.id, &parsed));
  // Member-based: every patient must exist (checked before the transaction: a read).
  if (parsed.filters.empty() && !parsed.patient_ids.empty()) {
    int64_t total = 0;
    auto missing = MissingPatients(c, parsed.patient_ids, &total);
    if (!missing.ok()) return missing.status();
    if (total > 0) {
      std::string names;
      for (const std::string& p : *missing) names += (names.empty() ? "" : ", ") + ("Patient/" + p);
      if (total > static_cast<int64_t>(missing->size())) {
        names += " and " + std::to_string(total - static_cast<int64_t>(missing->size())) + " more";
      }
      return Status::InvalidArgument("member: " + std::to_string(total) +
                                     " unknown patient(s): " + names);
    }
  }
  const std::string id = create ? NewGroupId() : call.id;
  WriteResult result;
  std::string body;
  int64_t version = 1;
  Status s = PgTransaction(
      c,
      [&]() -> Status {
        int64_t not_after = 0;
        if (!create) {
          auto g = OwnedGroup(c, viewer, id);
          if (!g.ok()) return g.status();
          version = g->version + 1;
          auto lu = c->Exec(
              "SELECT (extract(epoch FROM last_updated) * 1000000)::int8 FROM resource"
              " WHERE res_type = 'Group' AND res_id = $1",
              {id});
          if (!lu.ok()) return lu.status();
          if (lu->rows() > 0) not_after = lu->int64(0, 0);
        }
        std::vector<std::string> computed;
        std::optional<int64_t> refreshed;
        if (!parsed.filters.empty()) {
          std::string sql;
          std::vector<std::string> params;
          FHIRBULK_RETURN_IF_ERROR(
              CohortSql(parsed.filters, parsed.patient_ids.empty() ? nullptr : &parsed.patient_ids,
                        &sql, &params));
          auto t = c->Exec("SET LOCAL statement_timeout = " +
                           std::to_string(group_limits_.cohort_timeout_ms));
          if (!t.ok()) return t.status();
          auto now = c->Exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8");
          if (!now.ok()) return now.status();
          refreshed = now->int64(0, 0);
          std::vector<PgParam> bound(params.begin(), params.end());
          auto r = c->Exec(sql, bound);
          if (!r.ok()) {
            if (IsStatementTimeout(r.status())) {
              result.response =
                  OutcomeResponse(400, "too-costly",
                                  "the cohort's evaluation took longer than " +
                                      std::to_string(group_limits_.cohort_timeout_ms) +
                                      " ms; narrow its member-filters");
              result.recordable = true;
              return Status::Aborted("cohort timeout");
            }
            return r.status();
          }
          if (static_cast<size_t>(r->rows()) > group_limits_.max_members) {
            result.response = OutcomeResponse(400, "too-costly",
                                              "the cohort has " + std::to_string(r->rows()) +
                                                  " members, over the limit of " +
                                                  std::to_string(group_limits_.max_members) +
                                                  " per Group; narrow its member-filters");
            result.recordable = true;
            return Status::Aborted("cohort too large");
          }
          computed.reserve(static_cast<size_t>(r->rows()));
          for (int i = 0; i < r->rows(); i++) computed.push_back(r->str(i, 0));
        }
        auto clock = WriteClock(c, not_after);
        if (!clock.ok()) return clock.status();
        return StoreGroup(c, id, viewer.client_id, parsed,
                          parsed.filters.empty() ? nullptr : &computed, refreshed, version, *clock,
                          &body);
      },
      "BEGIN; SET LOCAL synchronous_commit = on");
  if (!s.ok() && !result.recordable) return s;
  if (s.ok()) {
    result.response.status = create ? 201 : 200;
    result.response.content_type = kFhirJsonType;
    result.response.body = body;
    result.response.AddHeader(
        "Location", options_.base_url + "/Group/" + id + "/_history/" + std::to_string(version));
    result.response.AddHeader("ETag", "W/\"" + std::to_string(version) + "\"");
  }
  if (!call.respond_async) {
    *resp = std::move(result.response);
    return Status::OK();
  }
  // Asynchronous: record the outcome for the status URL.
  const std::string request_id = NewGroupId();
  auto rec = c->Exec(
      "WITH old AS (DELETE FROM group_request WHERE created_at < now() - interval '1 day')"
      " INSERT INTO group_request (request_id, client_id, group_id, error_json, http_status)"
      " VALUES ($1, $2, $3, $4, $5::int4)",
      {request_id, viewer.client_id, s.ok() ? PgParam(id) : PgParam(),
       s.ok() ? PgParam() : PgParam(result.response.body), std::to_string(result.response.status)});
  if (!rec.ok()) return rec.status();
  resp->status = 202;
  resp->AddHeader("Content-Location",
                  options_.base_url + std::string(kGroupStatusPrefix) + request_id);
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "Group request accepted; poll the Content-Location URL for the Group";
  resp->content_type = kFhirJsonType;
  resp->body = OperationOutcomeJson({info});
  return Status::OK();
}

Status Server::SearchGroups(PgConnection* c, const GroupViewer& viewer, const std::string& query,
                            HttpResponse* resp) const {
  auto params = SplitQueryString(query);
  if (!params.ok()) return params.status();
  std::optional<std::string> name;
  bool exact = false;
  std::vector<std::string> ids;
  int count = kDefaultSearchCount;
  int64_t offset = 0;
  bool summary_count = false;
  auto number = [](const std::string& v, int64_t lo, int64_t hi, int64_t* out) {
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    *out = std::stoll(v);
    return *out >= lo && *out <= hi;
  };
  for (const QueryParam& p : *params) {
    auto value = PercentDecode(p.raw_value, true);
    if (!value.ok()) return value.status().WithContext(p.name);
    if (p.name == "name" || p.name == "name:exact") {
      if (name) return Status::InvalidArgument(SearchParamError("name given more than once"));
      name = *value;
      exact = p.name == "name:exact";
    } else if (p.name == "_id") {
      size_t start = 0;
      while (start <= value->size()) {
        size_t comma = value->find(',', start);
        if (comma == std::string::npos) comma = value->size();
        std::string one = value->substr(start, comma - start);
        if (!IsValidFhirId(one)) {
          return Status::InvalidArgument(SearchParamError("_id: not a FHIR id"));
        }
        ids.push_back(one);
        start = comma + 1;
        if (ids.size() > 1000) return Status::InvalidArgument(SearchParamError("_id: too many"));
      }
    } else if (p.name == "_count") {
      int64_t n = 0;
      if (!number(*value, 0, kMaxSearchCount, &n)) {
        return Status::InvalidArgument(
            SearchParamError("_count: a number from 0 to " + std::to_string(kMaxSearchCount)));
      }
      count = static_cast<int>(n);
    } else if (p.name == "_offset") {
      if (!number(*value, 0, 100000000, &offset)) {
        return Status::InvalidArgument(SearchParamError("_offset: a non-negative number"));
      }
    } else if (p.name == "_summary") {
      if (*value != "count") {
        return Status::NotSupported(SearchParamError("_summary: only \"count\" is supported"));
      }
      summary_count = true;
    } else if (p.name == "_format") {
      if (*value != "json" && *value != "application/fhir+json" && *value != "application/json") {
        return Status::NotSupported(SearchParamError("_format: only JSON"));
      }
    } else {
      return Status::NotSupported(
          SearchParamError("parameter '" + p.name +
                           "' is not supported (name, name:exact, _id, _count, "
                           "_offset, _summary=count)"));
    }
  }
  // Visible Groups ($1 client, $2 restricted, $3 allowed ids), then the criteria.
  std::string where =
      " FROM resource r LEFT JOIN group_owner o ON o.group_id = r.res_id"
      " WHERE r.res_type = 'Group' AND NOT r.deleted AND (o.client_id = $1 OR"
      " (o.group_id IS NULL AND (NOT $2::boolean OR r.res_id = ANY($3::text[]))))";
  std::vector<PgParam> bound;
  std::vector<std::string> values = {viewer.client_id, viewer.group_restricted ? "t" : "f",
                                     PgTextArrayLiteral(viewer.allowed_groups)};
  if (name) {
    values.push_back(*name);
    // FHIR string search: case-insensitive prefix; :exact whole-value, case-sensitive.
    where += exact ? " AND r.body::jsonb ->> 'name' = $4::text"
                   : " AND starts_with(lower(r.body::jsonb ->> 'name'), lower($4::text))";
  }
  if (!ids.empty()) {
    values.push_back(PgTextArrayLiteral(ids));
    where += " AND r.res_id = ANY($" + std::to_string(values.size()) + "::text[])";
  }
  bound.reserve(values.size());
  for (const std::string& v : values) bound.emplace_back(v);
  auto total = c->Exec("SELECT count(*)" + where, bound);
  if (!total.ok()) return total.status();
  const int64_t n = total->int64(0, 0);
  PgResult rows;
  if (!summary_count && count > 0) {
    auto r = c->Exec("SELECT r.res_id, r.body" + where + " ORDER BY r.res_id LIMIT " +
                         std::to_string(count) + " OFFSET " + std::to_string(offset),
                     bound);
    if (!r.ok()) return r.status();
    rows = std::move(r).value();
  }
  // Links repeat the query as sent (validated above), with _offset moved.
  std::string kept;
  for (const QueryParam& p : *params) {
    if (p.name == "_offset") continue;
    kept += (kept.empty() ? "" : "&") + p.name + "=" + p.raw_value;
  }
  auto link = [&](int64_t at) {
    std::string url = options_.base_url + "/Group";
    std::string q = kept;
    if (at > 0) q += (q.empty() ? "" : "&") + std::string("_offset=") + std::to_string(at);
    return q.empty() ? url : url + "?" + q;
  };
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("resourceType");
  w.String("Bundle");
  w.Key("type");
  w.String("searchset");
  w.Key("total");
  w.Int64(n);
  w.Key("link");
  w.StartArray();
  w.StartObject();
  w.Key("relation");
  w.String("self");
  w.Key("url");
  w.String(link(offset).c_str());
  w.EndObject();
  if (!summary_count && count > 0 && offset + count < n) {
    w.StartObject();
    w.Key("relation");
    w.String("next");
    w.Key("url");
    w.String(link(offset + count).c_str());
    w.EndObject();
  }
  w.EndArray();
  if (rows.rows() > 0) {
    w.Key("entry");
    w.StartArray();
    for (int i = 0; i < rows.rows(); i++) {
      w.StartObject();
      w.Key("fullUrl");
      w.String((options_.base_url + "/Group/" + rows.str(i, 0)).c_str());
      w.Key("resource");
      std::string_view body = rows.get(i, 1);
      w.RawValue(body.data(), body.size(), rapidjson::kObjectType);
      w.Key("search");
      w.StartObject();
      w.Key("mode");
      w.String("match");
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  resp->status = 200;
  resp->content_type = kFhirJsonType;
  resp->body.assign(sb.GetString(), sb.GetSize());
  return Status::OK();
}

}  // namespace fhirbulk
