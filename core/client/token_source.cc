#include "client/token_source.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>

#include "client/bounded_json.h"
#include "client/interrupt.h"
#include "client/retry.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {

namespace {

std::string JsonString(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return "";
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : "";
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

TokenSource::TokenSource(SigningKey key, TokenSourceOptions options)
    : key_(std::move(key)), options_(std::move(options)), http_(options_.http) {}

std::chrono::seconds TokenSource::RenewMargin(std::chrono::seconds lifetime) {
  return std::clamp(lifetime / 5, std::chrono::seconds(1), std::chrono::seconds(60));
}

Result<std::string> TokenSource::Get() {
  MutexLock lock(&mu_);
  if (token_.empty() || std::chrono::steady_clock::now() >= renew_at_) {
    Status s = Fetch();
    if (!s.ok()) return s;
  }
  return token_;
}

void TokenSource::Invalidate(const std::string& token) {
  MutexLock lock(&mu_);
  if (token == token_) token_.clear();
}

Status TokenSource::Fetch() {
  const bool renewal = obtained_ > 0;
  const RetryPolicy policy = RetryPolicy::ForOthers(options_.retries);
  RetryLoop retry(policy, options_.http.interrupt);
  Status s = retry.Run([&]() -> Attempt {
    mu_.AssertHeld();  // the loop runs this in Fetch, under mu_; the analysis cannot see that
    Request req;
    req.method = "POST";
    req.url = options_.token_url;
    req.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
    // A new assertion per attempt: its jti is single-use.
    auto assertion =
        MakeClientAssertion(key_, options_.client_id, options_.token_url, NowMicros() / 1000000);
    if (!assertion.ok()) return Attempt::Done(assertion.status());
    req.body = "grant_type=client_credentials&scope=" + PercentEncode(options_.scope) +
               "&client_assertion_type=" +
               PercentEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
               "&client_assertion=" + PercentEncode(*assertion);
    const auto sent_at = std::chrono::steady_clock::now();
    auto res = http_.Fetch(req);
    if (!res.ok()) return AttemptForError(res.status());
    if (res->status == 200) return Attempt::Done(Accept(res->body, sent_at, renewal));
    Attempt a = AttemptForAnswer(policy, *res, "the token endpoint");
    if (a.kind != Attempt::Kind::kDone) return a;
    // RFC 6749 §5.2: {"error", "error_description"}
    rapidjson::Document body;
    (void)ParseBoundedJson(res->body, &body);  // null when not JSON: no members then
    std::string error = JsonString(body, "error");
    std::string description = JsonString(body, "error_description");
    return Attempt::Done(
        Status::Unauthenticated("the token endpoint refused client '" + options_.client_id + "' (" +
                                std::to_string(res->status) + (error.empty() ? "" : " " + error) +
                                (description.empty() ? "" : ": " + description) + ")"));
  });
  if (s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kResourceExhausted) {
    return s.WithContext("token endpoint " + options_.token_url);
  }
  return s;
}

Status TokenSource::Accept(const std::string& answer, std::chrono::steady_clock::time_point sent_at,
                           bool renewal) {
  rapidjson::Document body;
  (void)ParseBoundedJson(answer, &body);  // null when not JSON: no members then
  std::string token = JsonString(body, "access_token");
  std::string type = JsonString(body, "token_type");
  if (token.empty() || !EqualsIgnoreCase(type, "bearer")) {
    return Status::Unauthenticated(
        "the token endpoint's answer has no access_token of token_type bearer");
  }
  // expires_in is required; 300 s is what the profile recommends should it be missing.
  int64_t lifetime = 300;
  auto exp = body.IsObject() ? body.FindMember("expires_in") : body.MemberEnd();
  if (body.IsObject() && exp != body.MemberEnd() && exp->value.IsNumber()) {
    lifetime = std::max<int64_t>(1, static_cast<int64_t>(exp->value.GetDouble()));
  }
  token_ = std::move(token);
  const std::chrono::seconds life(lifetime);
  renew_at_ = sent_at + life - RenewMargin(life);
  obtained_++;
  if (options_.log) {
    std::string scope = JsonString(body, "scope");
    options_.log(std::string(renewal ? "access token renewed" : "access token obtained") +
                 " (expires in " + std::to_string(lifetime) + " s" +
                 (scope.empty() ? "" : ", scope " + scope) + ")");
  }
  return Status::OK();
}

Result<std::string> DiscoverTokenEndpoint(HttpClient* http, const std::string& fhir_base,
                                          RetryLoop* retry, const RetryLoop::WaitNote& note) {
  std::string base = fhir_base;
  while (!base.empty() && base.back() == '/') base.pop_back();
  Request req;
  req.url = base + "/.well-known/smart-configuration";
  req.headers = {"Accept: application/json"};
  std::string endpoint;
  Status s = retry->Run(
      [&]() -> Attempt {
        auto res = http->Fetch(req);
        if (!res.ok()) return AttemptForError(res.status());
        if (res->status != 200) {
          Attempt a = AttemptForAnswer(retry->policy(), *res, req.url);
          if (a.kind != Attempt::Kind::kDone) return a;
          return Attempt::Done(Status::NotFound(req.url + " answered " +
                                                std::to_string(res->status) +
                                                ": no SMART configuration (give --token-url)"));
        }
        rapidjson::Document doc;
        const bool parsed = ParseBoundedJson(res->body, &doc);
        endpoint = JsonString(doc, "token_endpoint");
        if (!parsed || !IsHttpUrl(endpoint)) {
          return Attempt::Done(Status::NotFound(req.url + " has no absolute token_endpoint"));
        }
        return Attempt::Done();
      },
      note);
  if (!s.ok()) return s;
  return endpoint;
}

}  // namespace client
}  // namespace fhirbulk
