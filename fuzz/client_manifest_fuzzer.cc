// The client's reading of a completed export's manifest (client::ParseManifest).
// Input: the response body.

#include <cstdint>
#include <string_view>

#include "client/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)fhirbulk::client::ParseManifest(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
