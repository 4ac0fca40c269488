// Kick-off parsing: the query string of a GET and the Parameters body of a POST
// (ParseExportRequest), then what a parsed request feeds: the job store's JSON round trip and
// the _typeFilter SQL of every type.
//
// Input: selector byte (bits 0-1: level; bit 2: POST; bit 3: Prefer handling=lenient),
// then the query, "\n--\n", the body.

#include <cstdint>
#include <string>
#include <vector>

#include "export/export_request.h"
#include "export/type_filter_sql.h"
#include "fuzz_util.h"
#include "http/http.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.Selector();
  const std::string query(in.Part());
  const std::string body(in.Rest());

  HttpRequest req;
  const bool post = (sel & 4) != 0;
  req.method = post ? HttpMethod::kPost : HttpMethod::kGet;
  req.query = query;
  req.accept = "application/fhir+json";
  req.prefer = (sel & 8) ? "respond-async, handling=lenient" : "respond-async";
  if (post) {
    req.content_type = "application/fhir+json";
    req.body = body;
  }
  ExportLevel level = ExportLevel::kSystem;
  std::string group_id;
  switch (sel & 3) {
    case 1:
      level = ExportLevel::kPatient;
      req.path = "/Patient/$export";
      break;
    case 2:
      level = ExportLevel::kGroup;
      group_id = "g1";
      req.path = "/Group/g1/$export";
      break;
    default:
      req.path = "/$export";
  }
  ExportParseOptions options;
  options.base_url = "https://fhir.example.org/fhir";
  options.now_us = 1'700'000'000'000'000;
  auto parsed = ParseExportRequest(req, level, group_id, options);
  if (!parsed.ok()) return 0;

  const std::string json = ExportRequestToJson(*parsed);
  auto back = ExportRequestFromJson(json);
  if (!back.ok()) __builtin_trap();  // the round trip is exact by contract

  std::vector<std::string> types;
  for (const auto& q : parsed->type_filters) types.push_back(q.type);
  for (const auto& type : types) {
    std::string sql;
    std::vector<std::string> params;
    (void)TypeFilterSql(TypeFilterQueriesFor(parsed->type_filters, type), 1, &sql, &params);
  }
  return 0;
}
