// Signed file URLs: the query string of a download (HasFileSignature, VerifyFileQuery with a
// fixed key ring). Input: the raw query (without '?').

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/key_ring.h"
#include "auth/signed_url.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const KeyRing* ring = [] {
    auto r = KeyRing::Parse("u1 0123456789abcdef0123456789abcdef0123456789abcdef\n");
    if (!r.ok()) std::abort();
    return new KeyRing(std::move(*r));
  }();
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  (void)HasFileSignature(query);
  (void)VerifyFileQuery(*ring, "0f8fad5b-d9cb-469f-a165-70867728950e", "Patient-1.ndjson", query,
                        1'700'000'000);
  return 0;
}
