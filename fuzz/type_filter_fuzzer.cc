// _typeFilter: the input is the raw (still percent-encoded) value of one or more _typeFilter
// parameters of a GET kick-off, parsed by ParseExportRequest and compiled by TypeFilterSql as
// the export's unit runner does.
//
// Input: selector byte (bit 0: Prefer handling=lenient; bit 1: Patient level), then the raw
// value; a line "\n--\n" starts another _typeFilter parameter.

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
  std::string query;
  while (!in.Rest().empty()) {
    if (!query.empty()) query += '&';
    query += "_typeFilter=";
    query += in.Part();
  }
  HttpRequest req;
  req.method = HttpMethod::kGet;
  req.query = query;
  req.accept = "application/fhir+json";
  req.prefer = (sel & 1) ? "respond-async, handling=lenient" : "respond-async";
  const bool patient = (sel & 2) != 0;
  req.path = patient ? "/Patient/$export" : "/$export";
  ExportParseOptions options;
  options.base_url = "https://fhir.example.org/fhir";
  options.now_us = 1'700'000'000'000'000;
  auto parsed =
      ParseExportRequest(req, patient ? ExportLevel::kPatient : ExportLevel::kSystem, "", options);
  if (!parsed.ok()) return 0;
  std::vector<std::string> types;
  for (const auto& q : parsed->type_filters) types.push_back(q.type);
  for (const auto& type : types) {
    std::string sql;
    std::vector<std::string> params;
    (void)TypeFilterSql(TypeFilterQueriesFor(parsed->type_filters, type), 1, &sql, &params);
  }
  return 0;
}
