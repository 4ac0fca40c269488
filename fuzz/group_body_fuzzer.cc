// POST/PUT /Group bodies (the Group API, issue 14): untrusted JSON up to 16 MiB, parsed by
// ParseGroupBody on the nginx thread pool (member-based and cohort writes) and again by the
// export workers (queued cohort requests), then, when it parses, the stored body and index
// built from it as StoreGroup does, without the database: here the cohort's SQL (CohortSql).
//
// Input: selector byte (bit 0: an update, with the URL id "g1"; bit 1: small limits, 3
// members and 2 filters), then the body.

#include <cstdint>
#include <string>
#include <vector>

#include "export/group_store.h"
#include "fuzz_util.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.Selector();
  GroupLimits limits;
  if (sel & 2) {
    limits.max_members = 3;
    limits.max_filters = 2;
  }
  const std::string url_id = "g1";
  ParsedGroup parsed;
  Status s = ParseGroupBody(in.Rest(), "https://fhir.example.org/fhir", limits,
                            (sel & 1) ? &url_id : nullptr, &parsed);
  if (!s.ok() || parsed.filters.empty()) return 0;
  std::string sql;
  std::vector<std::string> params;
  (void)CohortSql(parsed.filters, parsed.patient_ids.empty() ? nullptr : &parsed.patient_ids, &sql,
                  &params, (sel & 4) ? std::optional<int64_t>(0) : std::nullopt);
  return 0;
}
