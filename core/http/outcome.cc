#include "http/outcome.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace fhirbulk {

std::string OperationOutcomeJson(const std::vector<OutcomeIssue>& issues) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  for (const OutcomeIssue& i : issues) {
    w.StartObject();
    w.Key("severity");
    w.String(i.severity);
    w.Key("code");
    w.String(i.code);
    if (!i.diagnostics.empty()) {
      w.Key("diagnostics");
      w.String(i.diagnostics);
    }
    if (!i.expression.empty()) {
      w.Key("expression");
      w.StartArray();
      w.String(i.expression);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

HttpResponse OutcomeResponse(int http_status, std::string_view issue_code,
                             std::string_view diagnostics) {
  HttpResponse r;
  r.status = http_status;
  r.content_type = kFhirJson;
  OutcomeIssue issue;
  issue.code = std::string(issue_code);
  issue.diagnostics = std::string(diagnostics);
  r.body = OperationOutcomeJson({issue});
  return r;
}

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotSupported:
      return 400;
    case Status::Code::kUnauthenticated:
      return 401;
    case Status::Code::kPermissionDenied:
      return 403;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kNotAcceptable:
      return 406;
    case Status::Code::kTooLarge:
      return 413;
    case Status::Code::kUriTooLong:
      return 414;
    case Status::Code::kResourceExhausted:
      return 429;
    case Status::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

const char* IssueCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotAcceptable:
    case Status::Code::kTooLarge:
    case Status::Code::kUriTooLong:
      return "invalid";
    case Status::Code::kNotSupported:
      return "not-supported";
    case Status::Code::kUnauthenticated:
      return "login";
    case Status::Code::kPermissionDenied:
      return "forbidden";
    case Status::Code::kNotFound:
      return "not-found";
    case Status::Code::kResourceExhausted:
      return "throttled";
    case Status::Code::kUnavailable:
      return "transient";
    default:
      return "exception";
  }
}

HttpResponse StatusResponse(const Status& s, int retry_after) {
  // Client errors explain themselves; server-side failures are logged in full and described
  // generically, so database addresses and SQL never reach a client.
  int http = HttpStatusFor(s);
  std::string diagnostics = s.message();
  std::string log;
  if (s.code() == Status::Code::kUnavailable) {
    diagnostics = "the database is unavailable; retry later";
    log = s.ToString();
  } else if (http >= 500) {
    diagnostics = "internal error";
    log = s.ToString();
  }
  HttpResponse r = OutcomeResponse(http, IssueCodeFor(s), diagnostics);
  r.log_message = std::move(log);
  if (s.code() == Status::Code::kUnauthenticated) {
    r.AddHeader("WWW-Authenticate", BearerChallenge("invalid_token"));
  } else if (s.code() == Status::Code::kPermissionDenied) {
    r.AddHeader("WWW-Authenticate", BearerChallenge("insufficient_scope"));
  }
  if ((s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kResourceExhausted) &&
      retry_after > 0) {
    r.AddHeader("Retry-After", std::to_string(retry_after));
  }
  return r;
}

HttpResponse CredentialsRequiredResponse(std::string_view diagnostics) {
  HttpResponse r = OutcomeResponse(401, "login", diagnostics);
  r.AddHeader("WWW-Authenticate", BearerChallenge(""));
  return r;
}

std::string BearerChallenge(std::string_view error) {
  std::string value = "Bearer realm=\"";
  value += kBearerRealm;
  value += '"';
  if (!error.empty()) {
    value += ", error=\"";
    value += error;
    value += '"';
  }
  return value;
}

}  // namespace fhirbulk
