#include "server/ops_api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>

#include "auth/audit_query.h"
#include "auth/client_store.h"
#include "auth/scopes.h"
#include "db/pg_table.h"
#include "export/job_queries.h"
#include "export/job_store.h"
#include "http/outcome.h"
#include "http/query_string.h"
#include "server/server.h"
#include "util/fhir_time.h"
#include "util/log_escape.h"

namespace fhirbulk {
namespace {

constexpr size_t kMaxQueryBytes = 4096;
constexpr size_t kMaxParams = 16;
constexpr size_t kMaxClientIdBytes = 128;
constexpr size_t kMaxTargetBytes = 512;
constexpr int64_t kMaxLimit = 500;
constexpr int64_t kDefaultLimit = 50;
constexpr int64_t kMaxOffset = 100000;
constexpr int kMaxDays = 366;

// The audit trail's actions (core/server/server.cc, group_api.cc, the files module, sql/0015).
const std::set<std::string>& AuditActions() {
  static const std::set<std::string>* actions = new std::set<std::string>{
      "token", "kickoff", "status", "cancel", "download", "group", "client", "ops"};
  return *actions;
}

bool IsClientId(std::string_view s) {
  if (s.empty() || s.size() > kMaxClientIdBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
    if (!ok) return false;
  }
  return true;
}

Status Bad(std::string_view name, const std::string& why) {
  return Status::InvalidArgument("parameter '" + LogEscape(name, 32) + "': " + why);
}

Result<int64_t> Integer(std::string_view name, const std::string& v, int64_t lo, int64_t hi) {
  if (v.empty() || v.size() > 7 || v.find_first_not_of("0123456789") != std::string::npos) {
    return Bad(name,
               "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  int64_t n = std::stoll(v);
  if (n < lo || n > hi) {
    return Bad(name, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return n;
}

std::string JsonPage(const char* key, const PgResult& r, const std::set<std::string>& numeric,
                     int64_t limit, int64_t offset) {
  std::string rows = TableFromResult(r, numeric).RenderJson();
  while (!rows.empty() && (rows.back() == '\n' || rows.back() == ' ')) rows.pop_back();
  std::string out = "{\"" + std::string(key) + "\":" + rows;
  out += ",\"limit\":" + std::to_string(limit) + ",\"offset\":" + std::to_string(offset);
  // A full page may have a next one; a short page is the last.
  out += ",\"next_offset\":";
  out += r.rows() == limit && offset + limit <= kMaxOffset ? std::to_string(offset + limit)
                                                           : std::string("null");
  out += "}\n";
  return out;
}

std::string ClientsJson(const std::vector<ClientRecord>& clients) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("clients");
  w.StartArray();
  for (const ClientRecord& c : clients) {
    // Never the keys themselves: how they are registered is enough for the console.
    w.StartObject();
    w.Key("client_id");
    w.String(c.client_id);
    w.Key("name");
    w.String(LogEscape(c.name, 256));
    w.Key("enabled");
    w.Bool(c.enabled);
    w.Key("operator");
    w.Bool(c.is_operator);
    w.Key("scopes");
    w.String(c.allowed_scopes);
    w.Key("groups");
    if (c.group_restricted) {
      w.StartArray();
      for (const std::string& g : c.allowed_groups) w.String(g);
      w.EndArray();
    } else {
      w.Null();
    }
    w.Key("keys");
    w.String(c.jwks_url.empty() ? "jwks" : "jwks_url");
    w.Key("created");
    w.String(c.created_at);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

}  // namespace

Status MatchOpsPath(std::string_view path, OpsCall* call, bool* post) {
  *post = false;
  if (path == "jobs") {
    call->op = OpsCall::Op::kJobs;
  } else if (path == "history") {
    call->op = OpsCall::Op::kHistory;
  } else if (path == "clients") {
    call->op = OpsCall::Op::kClients;
  } else if (path == "audit") {
    call->op = OpsCall::Op::kAudit;
    call->limit = kDefaultLimit;
  } else if (path == "stats") {
    call->op = OpsCall::Op::kStats;
  } else {
    constexpr std::string_view kClients = "clients/";
    size_t slash = path.rfind('/');
    if (path.substr(0, kClients.size()) != kClients || slash <= kClients.size()) {
      return Status::NotFound("no operator API route " + LogEscape(path, 64));
    }
    std::string_view id = path.substr(kClients.size(), slash - kClients.size());
    std::string_view verb = path.substr(slash + 1);
    if (!IsClientId(id) || (verb != "enable" && verb != "disable")) {
      return Status::NotFound("no operator API route " + LogEscape(path, 64));
    }
    call->op = verb == "enable" ? OpsCall::Op::kEnableClient : OpsCall::Op::kDisableClient;
    call->client = std::string(id);
    *post = true;
  }
  return Status::OK();
}

Status ParseOpsQuery(std::string_view query, OpsCall* call) {
  if (query.size() > kMaxQueryBytes) {
    return Status::InvalidArgument("query string over " + std::to_string(kMaxQueryBytes) +
                                   " bytes");
  }
  auto params = SplitQueryString(query);
  if (!params.ok()) return params.status();
  if (params->size() > kMaxParams) {
    return Status::InvalidArgument("more than " + std::to_string(kMaxParams) + " parameters");
  }
  const OpsCall::Op op = call->op;
  std::set<std::string> allowed;
  switch (op) {
    case OpsCall::Op::kJobs:
      allowed = {"client", "state", "limit", "offset"};
      break;
    case OpsCall::Op::kHistory:
      allowed = {"client", "outcome", "limit", "offset"};
      break;
    case OpsCall::Op::kAudit:
      allowed = {"client", "action", "target", "result", "since", "until", "limit", "offset"};
      break;
    case OpsCall::Op::kStats:
      allowed = {"days"};
      break;
    default:
      break;  // no parameters
  }
  std::set<std::string> seen;
  int64_t since_us = 0, until_us = 0;
  bool has_since = false, has_until = false;
  for (const QueryParam& p : *params) {
    if (allowed.count(p.name) == 0) return Bad(p.name, "not a parameter of this route");
    if (!seen.insert(p.name).second) return Bad(p.name, "given more than once");
    auto value = PercentDecode(p.raw_value, true);
    if (!value.ok()) return Bad(p.name, value.status().message());
    const std::string& v = *value;
    if (p.name == "limit") {
      auto n = Integer(p.name, v, 1, kMaxLimit);
      if (!n.ok()) return n.status();
      call->limit = *n;
    } else if (p.name == "offset") {
      auto n = Integer(p.name, v, 0, kMaxOffset);
      if (!n.ok()) return n.status();
      call->offset = *n;
    } else if (p.name == "days") {
      auto n = Integer(p.name, v, 1, kMaxDays);
      if (!n.ok()) return n.status();
      call->days = static_cast<int>(*n);
    } else if (p.name == "client") {
      if (!IsClientId(v)) return Bad(p.name, "not a client id");
      call->client = v;
      call->audit.client = v;
    } else if (p.name == "state") {
      if (!ParseJobState(v).ok()) return Bad(p.name, "not a job state");
      call->state = v;
    } else if (p.name == "outcome") {
      if (v != "completed" && v != "failed" && v != "cancelled") {
        return Bad(p.name, "completed, failed or cancelled");
      }
      call->state = v;
    } else if (p.name == "action") {
      if (AuditActions().count(v) == 0) return Bad(p.name, "not an audited action");
      call->audit.action = v;
    } else if (p.name == "target") {
      if (v.empty() || v.size() > kMaxTargetBytes) {
        return Bad(p.name, "1 to " + std::to_string(kMaxTargetBytes) + " bytes");
      }
      for (char c : v) {
        if (c < 0x20 || c > 0x7e) return Bad(p.name, "printable ASCII only");
      }
      call->audit.target = v;
    } else if (p.name == "result") {
      auto n = Integer(p.name, v, 100, 599);
      if (!n.ok()) return n.status();
      call->audit.result = std::to_string(*n);
    } else if (p.name == "since" || p.name == "until") {
      auto range = ParseDateTimeRange(v);
      if (!range.ok()) return Bad(p.name, "not a FHIR date or dateTime");
      if (p.name == "since") {
        since_us = range->lo_us;
        has_since = true;
      } else {
        until_us = range->hi_us + 1;  // inclusive: the audit query's until is exclusive
        has_until = true;
      }
    }
  }
  if (has_since && has_until && since_us >= until_us) {
    return Status::InvalidArgument("since must not be after until");
  }
  if (has_since) call->audit.since = FormatInstant(since_us);
  if (has_until) call->audit.until = FormatInstant(until_us);
  call->audit.limit = call->limit;
  call->audit.offset = call->offset;
  call->audit.newest_first = true;
  return Status::OK();
}

uint8_t OpsScopeNeeded(OpsCall::Op op) {
  switch (op) {
    case OpsCall::Op::kJobs:
    case OpsCall::Op::kHistory:
      return kOperatorJobsRead;
    case OpsCall::Op::kClients:
      return kOperatorClientsRead;
    case OpsCall::Op::kEnableClient:
    case OpsCall::Op::kDisableClient:
      return kOperatorClientsWrite;
    case OpsCall::Op::kAudit:
      return kOperatorAuditRead;
    case OpsCall::Op::kStats:
      return kOperatorStatsRead;
  }
  return kOperatorAllRead | kOperatorClientsWrite;
}

std::unique_ptr<PendingRequest> Server::FastOps(const HttpRequest& req, const Route& route,
                                                HttpResponse* resp) const {
  OpsCall call;
  bool post = false;
  Status s = MatchOpsPath(route.ops_path, &call, &post);
  if (!s.ok()) {
    *resp = StatusResponse(s, 0);
    return nullptr;
  }
  const bool get_like = req.method == HttpMethod::kGet || req.method == HttpMethod::kHead;
  if (post ? req.method != HttpMethod::kPost : !get_like) {
    *resp = OutcomeResponse(
        405, "not-supported",
        std::string("this operator route supports ") + (post ? "POST" : "GET") + " only");
    resp->AddHeader("Allow", post ? "POST" : "GET, HEAD");
    return nullptr;
  }
  const std::string target = std::string(req.path);
  auto principal = Authenticate(req, resp);
  if (!principal) {
    Audit(req.remote_addr, "ops", "", target, *resp, "no valid access token");
    return nullptr;
  }
  if (!principal->scopes.GrantsOperator(OpsScopeNeeded(call.op))) {
    *resp = StatusResponse(
        Status::PermissionDenied("the access token does not grant the operator scope this needs"),
        0);
    Audit(req.remote_addr, "ops", principal->client_id, target, *resp, "operator scope missing");
    return nullptr;
  }
  s = ParseOpsQuery(req.query, &call);
  if (!s.ok()) {
    *resp = StatusResponse(s, 0);
    return nullptr;
  }
  auto p = std::make_unique<PendingRequest>();
  p->kind = PendingRequest::Kind::kOps;
  p->principal = std::move(*principal);
  p->ops = std::move(call);
  p->target = target;
  p->remote_addr = std::string(req.remote_addr);
  return p;
}

void Server::HandleOps(const PendingRequest& pending, HttpResponse* resp) const {
  const OpsCall& call = pending.ops;
  const std::string& operator_id = pending.principal.client_id;
  bool still_operator = false;
  std::string body;
  Status refusal;  // a write refused (404, 403), audited by the function all the same
  Status s = WithConnection([&](PgConnection* c) -> Status {
    // The token was checked without the database; the client may have been disabled since.
    auto op = c->Exec("SELECT 1 FROM auth_client WHERE client_id = $1 AND enabled AND operator",
                      {operator_id});
    if (!op.ok()) return op.status();
    still_operator = op->rows() == 1;
    if (!still_operator) return Status::OK();
    JobListQuery q;
    q.client = call.client;
    q.state = call.state;
    q.limit = call.limit;
    q.offset = call.offset;
    switch (call.op) {
      case OpsCall::Op::kJobs: {
        q.in_progress = call.state.empty();
        q.progress_columns = true;
        auto r = ListCurrentJobs(c, q);
        if (!r.ok()) return r.status();
        body = JsonPage("jobs", *r, JobListNumericColumns(), call.limit, call.offset);
        return Status::OK();
      }
      case OpsCall::Op::kHistory: {
        auto r = ListJobHistory(c, q);
        if (!r.ok()) return r.status();
        body = JsonPage("history", *r, JobListNumericColumns(), call.limit, call.offset);
        return Status::OK();
      }
      case OpsCall::Op::kClients: {
        auto r = ListClients(c);
        if (!r.ok()) return r.status();
        body = ClientsJson(*r);
        return Status::OK();
      }
      case OpsCall::Op::kEnableClient:
      case OpsCall::Op::kDisableClient: {
        const bool enable = call.op == OpsCall::Op::kEnableClient;
        std::string outcome;
        Status t = PgTransaction(c, [&]() -> Status {
          auto durable = c->Exec("SET LOCAL synchronous_commit = on");
          if (!durable.ok()) return durable.status();
          auto r =
              c->Exec("SELECT fhir_bulk_ops_set_client_enabled($1, $2::bool, $3, $4)",
                      {call.client, enable ? "true" : "false", operator_id, pending.remote_addr});
          if (!r.ok()) return r.status();
          outcome = r->str(0, 0);
          return Status::OK();
        });
        if (!t.ok()) return t;
        if (outcome == "not-found") {
          refusal = Status::NotFound("no client " + call.client);
        } else if (outcome == "operator") {
          refusal = Status::PermissionDenied(
              "operator clients are managed with fhir-bulk client, not from the console");
        } else {
          body = "{\"client_id\":" + JsonQuote(call.client) +
                 ",\"enabled\":" + (enable ? "true" : "false") +
                 ",\"outcome\":" + JsonQuote(outcome) + "}\n";
        }
        return Status::OK();
      }
      case OpsCall::Op::kAudit: {
        auto r = SearchAudit(c, call.audit);
        if (!r.ok()) return r.status();
        body = JsonPage("events", *r, AuditNumericColumns(), call.limit, call.offset);
        return Status::OK();
      }
      case OpsCall::Op::kStats: {
        auto r = DailyExportStats(c, call.days);
        if (!r.ok()) return r.status();
        std::string rows = TableFromResult(*r, DailyStatsNumericColumns()).RenderJson();
        while (!rows.empty() && rows.back() == '\n') rows.pop_back();
        body = "{\"days\":" + rows + "}\n";
        return Status::OK();
      }
    }
    return Status::Internal("unknown operator call");
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  if (!still_operator) {
    *resp =
        StatusResponse(Status::PermissionDenied("the client is no longer an enabled operator"), 0);
    Audit(pending.remote_addr, "ops", operator_id, pending.target, *resp,
          "operator client disabled or unknown");
    return;
  }
  *resp = refusal.ok() ? JsonResponse(200, std::move(body)) : StatusResponse(refusal, 0);
}

}  // namespace fhirbulk
