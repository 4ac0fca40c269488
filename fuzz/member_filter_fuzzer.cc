// Group member-filter expressions (the Bulk Cohort API, issue 14): each part of the input is
// one expression, as a client's Group body carries it, parsed by ParseMemberFilter and, when
// every part parses, compiled by CohortSql, as a POST /Group does on the thread pool.
//
// Input: selector byte (bit 0: with a candidate list, as when Group.member is given too),
// then the expressions separated by "\n--\n".

#include <cstdint>
#include <string>
#include <vector>

#include "export/cohort.h"
#include "fuzz_util.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.Selector();
  KickoffLimits limits;
  std::vector<CohortFilter> filters;
  bool all_ok = true;
  while (!in.Rest().empty() && filters.size() < 8) {
    auto f = ParseMemberFilter(in.Part(), "https://fhir.example.org/fhir", limits);
    if (!f.ok()) {
      all_ok = false;
      continue;
    }
    filters.push_back(std::move(f).value());
  }
  if (!all_ok || filters.empty()) return 0;
  const std::vector<std::string> candidates = {"p1", "p2"};
  std::string sql;
  std::vector<std::string> params;
  (void)CohortSql(filters, (sel & 1) ? &candidates : nullptr, &sql, &params);
  return 0;
}
