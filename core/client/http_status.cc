#include "client/http_status.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "client/bounded_json.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr size_t kMaxIssues = 3;
constexpr size_t kMaxText = 300;

std::string Member(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : "";
}

// Error bodies come from servers and proxies the client does not control: the parse is
// iterative and depth-bounded (client/bounded_json.h); their size is capped by HttpClient.
bool ParseOutcome(std::string_view body, rapidjson::Document* doc) {
  return ParseBoundedJson(body, doc) && doc->IsObject() &&
         Member(*doc, "resourceType") == "OperationOutcome" && doc->HasMember("issue") &&
         (*doc)["issue"].IsArray();
}

}  // namespace

std::string OutcomeText(std::string_view body) {
  rapidjson::Document doc;
  if (!ParseOutcome(body, &doc)) {
    std::string_view first = body.substr(0, body.find('\n'));
    bool text = first.size() <= kMaxText && !first.empty() &&
                std::all_of(first.begin(), first.end(), [](char c) {
                  return static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\r';
                });
    return text && first.front() != '<' ? std::string(first) : "";  // not an HTML page
  }
  std::string out;
  size_t n = 0;
  for (const auto& issue : doc["issue"].GetArray()) {
    if (!issue.IsObject()) continue;
    if (n++ == kMaxIssues) {
      out += "; ...";
      break;
    }
    std::string text = Member(issue, "diagnostics");
    if (text.empty() && issue.HasMember("details") && issue["details"].IsObject()) {
      text = Member(issue["details"], "text");
    }
    if (text.size() > kMaxText) text = text.substr(0, kMaxText) + "...";
    if (!out.empty()) out += "; ";
    out += Member(issue, "severity") + " " + Member(issue, "code");
    if (!text.empty()) out += ": " + text;
  }
  return out;
}

bool IsTransientOutcome(std::string_view body) {
  static const char* const kTransient[] = {"transient", "lock-error", "no-store", "exception",
                                           "timeout",   "incomplete", "throttled"};
  rapidjson::Document doc;
  if (!ParseOutcome(body, &doc)) return false;
  // Informational issues beside the error do not change its nature.
  bool transient = false;
  for (const auto& issue : doc["issue"].GetArray()) {
    if (!issue.IsObject()) continue;
    std::string severity = Member(issue, "severity");
    if (severity != "error" && severity != "fatal") continue;
    std::string code = Member(issue, "code");
    if (std::none_of(std::begin(kTransient), std::end(kTransient),
                     [&](const char* t) { return code == t; })) {
      return false;
    }
    transient = true;
  }
  return transient;
}

Status HttpStatusToStatus(long code, const std::string& what, std::string_view body) {
  std::string msg = what + ": HTTP " + std::to_string(code);
  std::string text = OutcomeText(body);
  if (!text.empty()) msg += " (" + text + ")";
  if (code == 401) return Status::Unauthenticated(msg);
  if (code == 403) return Status::PermissionDenied(msg);
  if (code == 404 || code == 410) return Status::NotFound(msg);
  if (code == 429) return Status::ResourceExhausted(msg);
  if (code >= 500) return Status::Unavailable(msg);
  return Status::NotSupported(msg);
}

}  // namespace client
}  // namespace fhirbulk
