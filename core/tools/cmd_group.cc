// fhir-bulk group: the Group API (server/group_api.h) from the command line, against any
// server offering FHIR Group read/search/create/delete and the Bulk Cohort API, with SMART
// Backend Services authorization like `fhir-bulk export`.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "client/retry.h"
#include "client/signing_key.h"
#include "client/token_source.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {
namespace {

constexpr const char* kUsage = "fhir-bulk group (create|list|show|delete) --fhir-url URL [options]";
constexpr int kExitAuth = 3;
constexpr int kExitServer = 4;
constexpr size_t kMaxGroupAnswer = 64u << 20;  // a 100,000-member Group is ~5 MB

struct Context {
  std::string base;
  std::unique_ptr<client::HttpClient> http;
  std::unique_ptr<client::TokenSource> tokens;
};

// Sends a request with the bearer token (renewed once after a 401).
Result<client::Response> Send(Context* ctx, const client::Request& req) {
  for (int attempt = 0; attempt < 2; attempt++) {
    client::Request r = req;
    std::string token;
    if (ctx->tokens) {
      auto t = ctx->tokens->Get();
      if (!t.ok()) return t.status();
      token = *t;
      r.headers.push_back("Authorization: Bearer " + token);
    }
    r.headers.emplace_back("Accept: application/fhir+json");
    r.max_body = kMaxGroupAnswer;
    auto resp = ctx->http->Fetch(r);
    if (!resp.ok()) return resp.status();
    if (resp->status == 401 && ctx->tokens && attempt == 0) {
      ctx->tokens->Invalidate(token);
      continue;
    }
    return resp;
  }
  return Status::Unauthenticated("the server refused the access token");
}

// The diagnostics of an OperationOutcome body, or the body's beginning.
std::string Diagnostics(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  std::string out;
  if (!d.HasParseError() && d.IsObject() && d.HasMember("issue") && d["issue"].IsArray()) {
    for (const auto& i : d["issue"].GetArray()) {
      if (i.IsObject() && i.HasMember("diagnostics") && i["diagnostics"].IsString()) {
        if (!out.empty()) out += "; ";
        out += i["diagnostics"].GetString();
      }
    }
  }
  return out.empty() ? body.substr(0, 300) : out;
}

int Refused(const char* what, const client::Response& r) {
  std::fprintf(stderr, "fhir-bulk group %s: HTTP %ld: %s\n", what, r.status,
               Diagnostics(r.body).c_str());
  return r.status == 401 || r.status == 403 ? kExitAuth : kExitServer;
}

int Failed(const char* what, const Status& s) {
  std::fprintf(stderr, "fhir-bulk group %s: %s\n", what, s.ToString().c_str());
  return s.code() == Status::Code::kUnauthenticated ? kExitAuth : kExitServer;
}

// One line per Group: id, quantity, name.
void PrintSummary(const rapidjson::Value& g) {
  auto str = [&](const char* k) -> std::string {
    return g.HasMember(k) && g[k].IsString() ? g[k].GetString() : "";
  };
  long long quantity = g.HasMember("quantity") && g["quantity"].IsInt64() ? g["quantity"].GetInt64()
                       : g.HasMember("member") && g["member"].IsArray()
                           ? static_cast<long long>(g["member"].Size())
                           : 0;
  std::printf("%s\t%lld\t%s\n", str("id").c_str(), quantity, str("name").c_str());
}

std::string GroupJson(const std::string& name, const std::vector<std::string>& members,
                      const std::vector<std::string>& filters) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("resourceType");
  w.String("Group");
  w.Key("type");
  w.String("person");
  w.Key("actual");
  w.Bool(true);
  if (!name.empty()) {
    w.Key("name");
    w.String(name.c_str());
  }
  if (!filters.empty()) {
    w.Key("modifierExtension");
    w.StartArray();
    for (const std::string& f : filters) {
      w.StartObject();
      w.Key("url");
      w.String("http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter");
      w.Key("valueExpression");
      w.StartObject();
      w.Key("language");
      w.String("application/x-fhir-query");
      w.Key("expression");
      w.String(f.c_str());
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  if (!members.empty()) {
    w.Key("member");
    w.StartArray();
    for (const std::string& m : members) {
      w.StartObject();
      w.Key("entity");
      w.StartObject();
      w.Key("reference");
      w.String((m.find('/') == std::string::npos ? "Patient/" + m : m).c_str());
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

// Reads patient ids, one per line ('#' comments and blank lines skipped).
Status ReadMembersFile(const std::string& path, std::vector<std::string>* out) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "r");
  if (f == nullptr) return Status::IOError("cannot open " + path);
  char line[4096];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (s.empty() || s[0] == '#') continue;
    out->push_back(s);
  }
  if (f != stdin) std::fclose(f);
  return Status::OK();
}

}  // namespace

int RunGroup(int argc, char** argv) {
  std::string fhir_url, client_id, key_file, kid, token_url, cacert, name, members_file,
      scope = "system/Group.rs system/Group.cud";
  std::vector<std::string> members, filters;
  bool quiet_json = false;
  long long timeout = 600;
  FlagParser flags(
      kUsage,
      "Manages Groups through a FHIR server's Group API. 'create' POSTs a Group of --member "
      "patients (sync) or, with --filter, a criteria-based cohort (Bulk Cohort API: "
      "member-filter extensions, Prefer: respond-async, polled until done) and prints its id; "
      "'list [NAME]' searches Groups (by name prefix); 'show ID' prints a Group's JSON; "
      "'delete ID' deletes it. With --client-id and --key it authorizes with SMART Backend "
      "Services like fhir-bulk export.\n\n"
      "exit status: 0 success, 2 usage, 3 authorization refused, 4 server or network error");
  flags.AddString("fhir-url", &fhir_url, "the server's FHIR base URL", "URL");
  flags.AddString("name", &name, "create: Group.name (required with --filter)", "NAME");
  flags.AddRepeated("member", &members, "create: a patient id or Patient/ID (repeatable)", "ID");
  flags.AddString("members-file", &members_file, "create: patient ids, one per line ('-': stdin)",
                  "FILE");
  flags.AddRepeated(
      "filter", &filters,
      "create: a member-filter, e.g. 'Condition?code=http://snomed.info/sct|44054006' "
      "(repeatable; ANDed)",
      "QUERY");
  flags.AddString("client-id", &client_id, "SMART Backend Services client id", "ID");
  flags.AddString("key", &key_file, "the client's private key (PEM or JWK)", "FILE");
  flags.AddString("kid", &kid, "the key id (default: the JWK thumbprint)", "KID");
  flags.AddString("scope", &scope, "scopes to request", "S");
  flags.AddString("token-url", &token_url,
                  "the token endpoint (default: from .well-known/smart-configuration)", "URL");
  flags.AddString("cacert", &cacert, "CA certificates (PEM) instead of the system's", "FILE");
  flags.AddInt("timeout", &timeout, "create: seconds to wait for a cohort (default 600)", "S");
  flags.AddBool("json", &quiet_json, "list: print the searchset Bundle instead of lines");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  const std::vector<std::string>& pos = flags.positionals();
  if (!s.ok() || pos.empty() || fhir_url.empty()) {
    std::fprintf(stderr, "fhir-bulk group: %s\n(fhir-bulk group --help lists the options)\n",
                 !s.ok()       ? s.message().c_str()
                 : pos.empty() ? "a subcommand is required (create, list, show, delete)"
                               : "--fhir-url is required");
    return kExitUsage;
  }
  const std::string& sub = pos[0];
  while (!fhir_url.empty() && fhir_url.back() == '/') fhir_url.pop_back();
  Context ctx;
  ctx.base = fhir_url;
  client::HttpOptions ho;
  ho.ca_file = cacert;
  ctx.http = std::make_unique<client::HttpClient>(ho);
  if (!client_id.empty()) {
    auto key = client::SigningKey::LoadFile(key_file, kid);
    if (!key.ok()) return Failed(sub.c_str(), key.status());
    if (token_url.empty()) {
      client::RetryLoop retry(client::RetryPolicy::ForOthers(3), nullptr);
      auto found = client::DiscoverTokenEndpoint(ctx.http.get(), fhir_url, &retry);
      if (!found.ok()) return Failed(sub.c_str(), found.status());
      token_url = *found;
    }
    client::TokenSourceOptions t;
    t.client_id = client_id;
    t.token_url = token_url;
    t.scope = scope;
    t.http = ho;
    ctx.tokens = std::make_unique<client::TokenSource>(std::move(key).value(), std::move(t));
  }

  if (sub == "create") {
    if (pos.size() != 1) return kExitUsage;
    if (!members_file.empty()) {
      Status m = ReadMembersFile(members_file, &members);
      if (!m.ok()) return Failed("create", m);
    }
    if (members.empty() && filters.empty()) {
      std::fprintf(stderr, "fhir-bulk group create: --member, --members-file or --filter\n");
      return kExitUsage;
    }
    client::Request req;
    req.method = "POST";
    req.url = fhir_url + "/Group";
    req.body = GroupJson(name, members, filters);
    req.headers.emplace_back("Content-Type: application/fhir+json");
    if (!filters.empty()) req.headers.emplace_back("Prefer: respond-async");
    auto r = Send(&ctx, req);
    if (!r.ok()) return Failed("create", r.status());
    if (r->status == 202) {
      const std::string status_url = r->Header("content-location");
      if (status_url.empty()) {
        std::fprintf(stderr, "fhir-bulk group create: 202 without Content-Location\n");
        return kExitServer;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
      for (;;) {
        client::Request poll;
        poll.url = status_url;
        r = Send(&ctx, poll);
        if (!r.ok()) return Failed("create", r.status());
        if (r->status != 202 && r->status != 429) break;
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "fhir-bulk group create: still running after %lld s: %s\n", timeout,
                       status_url.c_str());
          return kExitServer;
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    if (r->status != 200 && r->status != 201) return Refused("create", *r);
    rapidjson::Document d;
    d.Parse(r->body.data(), r->body.size());
    if (d.HasParseError() || !d.IsObject()) {
      std::fprintf(stderr, "fhir-bulk group create: the answer is not a Group\n");
      return kExitServer;
    }
    PrintSummary(d);
    return kExitOk;
  }
  if (sub == "list") {
    client::Request req;
    req.url = fhir_url + "/Group?_count=500";
    if (pos.size() > 1) {
      std::string enc;
      for (unsigned char c : pos[1]) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          enc += static_cast<char>(c);
        } else {
          char buf[4];
          std::snprintf(buf, sizeof(buf), "%%%02X", c);
          enc += buf;
        }
      }
      req.url += "&name=" + enc;
    }
    // Follows `next` links.
    for (int page = 0; page < 1000 && !req.url.empty(); page++) {
      auto r = Send(&ctx, req);
      if (!r.ok()) return Failed("list", r.status());
      if (r->status != 200) return Refused("list", *r);
      if (quiet_json) std::printf("%s\n", r->body.c_str());
      rapidjson::Document d;
      d.Parse(r->body.data(), r->body.size());
      if (d.HasParseError() || !d.IsObject()) return kExitServer;
      if (!quiet_json && d.HasMember("entry") && d["entry"].IsArray()) {
        for (const auto& e : d["entry"].GetArray()) {
          if (e.IsObject() && e.HasMember("resource") && e["resource"].IsObject()) {
            PrintSummary(e["resource"]);
          }
        }
      }
      req.url.clear();
      if (d.HasMember("link") && d["link"].IsArray()) {
        for (const auto& l : d["link"].GetArray()) {
          if (l.IsObject() && l.HasMember("relation") && l["relation"].IsString() &&
              std::string(l["relation"].GetString()) == "next" && l.HasMember("url") &&
              l["url"].IsString()) {
            req.url = l["url"].GetString();
          }
        }
      }
    }
    return kExitOk;
  }
  if (sub == "show" || sub == "delete") {
    if (pos.size() != 2) {
      std::fprintf(stderr, "fhir-bulk group %s: one Group id\n", sub.c_str());
      return kExitUsage;
    }
    client::Request req;
    req.method = sub == "show" ? "GET" : "DELETE";
    req.url = fhir_url + "/Group/" + pos[1];
    auto r = Send(&ctx, req);
    if (!r.ok()) return Failed(sub.c_str(), r.status());
    if (r->status != 200 && r->status != 204) return Refused(sub.c_str(), *r);
    if (sub == "show") std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  std::fprintf(stderr, "fhir-bulk group: unknown subcommand '%s'\n", sub.c_str());
  return kExitUsage;
}

}  // namespace fhirbulk
