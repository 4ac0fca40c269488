// The client's NDJSON validator on a downloaded file, fed in chunks as the download streams.
//
// Input: selector byte (bit 0: a file of OperationOutcomes, else of Patients; bits 1-7: the
// chunk size - 1), then the file.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "client/ndjson_validator.h"
#include "fuzz_util.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.Selector();
  const size_t chunk = static_cast<size_t>(sel >> 1) + 1;
  client::NdjsonValidator v((sel & 1) ? "OperationOutcome" : "Patient", 3, 20);
  std::string_view rest = in.Rest();
  while (!rest.empty()) {
    const size_t n = std::min(chunk, rest.size());
    v.Feed(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  v.Finish();
  return 0;
}
