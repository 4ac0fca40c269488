// SHA-1 (FIPS 180-4) for Attachment.hash, which FHIR R4 defines as the base64 of the SHA-1 of
// the data. Not for security: the synthetic notes only need a checksum clients can verify.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SYNTH_SHA1_H_
#define FHIRBULK_SYNTH_SHA1_H_

#include <array>
#include <cstdint>
#include <string_view>

namespace fhirbulk {
namespace synth {

std::array<uint8_t, 20> Sha1(std::string_view bytes);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_SHA1_H_
