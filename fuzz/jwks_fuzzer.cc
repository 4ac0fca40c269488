// JWK Sets given by value at registration, or fetched from a client's URL
// (ParseJwks, strict and with skip_unusable_keys as for fetched sets).
//
// Input: selector byte (bit 0: skip_unusable_keys), then the JSON.

#include <cstdint>

#include "auth/jwk.h"
#include "fuzz_util.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const bool skip = (in.Selector() & 1) != 0;
  (void)ParseJwks(in.Rest(), skip);
  return 0;
}
