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
#include "export/group_store.h"
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

constexpr int kDefaultSearchCount = 50;
constexpr int kMaxSearchCount = 500;
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
                  "UPDATE resource_group SET deleted = true, version = version + 1,"
                  " last_updated = greatest($2::timestamptz, last_updated + interval '1 "
                  "microsecond'),"
                  " content_hash = NULL, body = NULL, patients = '{}', tokens = '{}', refs = '{}',"
                  " date_params = '{}', date_lo = '{}', date_hi = '{}', outrefs = '{}'"
                  " WHERE res_id = $1 AND NOT deleted",
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
            "SELECT group_id, error_json, http_status, state = 'pending' FROM group_request"
            " WHERE request_id = $1 AND client_id = $2 AND created_at > now() - interval '1 day'",
            {call.id, viewer.client_id});
        if (!r.ok()) return r.status();
        if (r->rows() == 0) return Status::NotFound("no Group request " + call.id);
        if (r->get(0, 3) == "t") {
          // A worker evaluates the cohort (worker/cohort_runner.h).
          OutcomeIssue info;
          info.severity = "information";
          info.code = "informational";
          info.diagnostics = "the cohort is being evaluated";
          resp->status = 202;
          resp->content_type = kFhirJsonType;
          resp->body = OperationOutcomeJson({info});
          resp->AddHeader("X-Progress", "evaluating the cohort");
          resp->AddHeader("Retry-After", "1");
          return Status::OK();
        }
        if (!r->is_null(0, 1)) {
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
  const std::string id = create ? NewGroupId() : call.id;
  if (!parsed.filters.empty()) return QueueCohort(c, viewer, call, id, resp);
  // Member-based: every patient must exist (checked before the transaction: a read).
  if (!parsed.patient_ids.empty()) {
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
  std::string body;
  int64_t version = 1;
  FHIRBULK_RETURN_IF_ERROR(PgTransaction(
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
        auto clock = WriteClock(c, not_after);
        if (!clock.ok()) return clock.status();
        return StoreGroup(c, id, viewer.client_id, options_.base_url, parsed, nullptr, std::nullopt,
                          version, *clock, &body);
      },
      "BEGIN; SET LOCAL synchronous_commit = on"));
  if (!call.respond_async) {
    resp->status = create ? 201 : 200;
    resp->content_type = kFhirJsonType;
    resp->body = std::move(body);
    resp->AddHeader("Location",
                    options_.base_url + "/Group/" + id + "/_history/" + std::to_string(version));
    resp->AddHeader("ETag", "W/\"" + std::to_string(version) + "\"");
    return Status::OK();
  }
  // Asynchronous: the outcome is recorded for the status URL at once.
  const std::string request_id = NewGroupId();
  auto rec = c->Exec(
      "WITH old AS (DELETE FROM group_request WHERE created_at < now() - interval '1 day')"
      " INSERT INTO group_request (request_id, client_id, group_id, http_status, state,"
      " finished_at) VALUES ($1, $2, $3, $4::int4, 'done', now())",
      {request_id, viewer.client_id, id, create ? "201" : "200"});
  if (!rec.ok()) return rec.status();
  AcceptedGroupRequest(request_id, resp);
  return Status::OK();
}

Status Server::QueueCohort(PgConnection* c, const GroupViewer& viewer, const GroupCall& call,
                           const std::string& id, HttpResponse* resp) const {
  if (!call.respond_async) {
    return Status::InvalidArgument(
        "a criteria-based Group (member-filter) is evaluated asynchronously: send the request "
        "with the header Prefer: respond-async and poll the Content-Location URL");
  }
  if (call.op == GroupCall::Op::kUpdate) {
    // Checked now for a prompt 404/403; the worker checks again when it stores the Group.
    auto g = OwnedGroup(c, viewer, id);
    if (!g.ok()) return g.status();
  }
  const std::string request_id = NewGroupId();
  auto rec = c->Exec(
      "WITH old AS (DELETE FROM group_request WHERE created_at < now() - interval '1 day')"
      " INSERT INTO group_request (request_id, client_id, group_id, http_status, state, op,"
      " body, base_url, max_members, timeout_ms) VALUES ($1, $2, $3, 202, 'pending', $4, $5,"
      " $6, $7::int4, $8::int4)",
      {request_id, viewer.client_id, id, call.op == GroupCall::Op::kCreate ? "create" : "update",
       call.body, options_.base_url, std::to_string(group_limits_.max_members),
       std::to_string(group_limits_.cohort_timeout_ms)});
  if (!rec.ok()) return rec.status();
  // Wake the workers (worker/worker.h listens on the kick-offs' channel); a lost NOTIFY costs
  // their 1 s poll.
  auto notify = c->Exec("SELECT pg_notify('fhir_bulk_jobs', 'group')");
  if (!notify.ok()) return notify.status();
  AcceptedGroupRequest(request_id, resp);
  return Status::OK();
}

void Server::AcceptedGroupRequest(const std::string& request_id, HttpResponse* resp) const {
  resp->status = 202;
  resp->AddHeader("Content-Location",
                  options_.base_url + std::string(kGroupStatusPrefix) + request_id);
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "Group request accepted; poll the Content-Location URL for the Group";
  resp->content_type = kFhirJsonType;
  resp->body = OperationOutcomeJson({info});
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
