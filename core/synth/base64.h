// Base64 (RFC 4648, standard alphabet, with padding) for Attachment.data.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SYNTH_BASE64_H_
#define FHIRBULK_SYNTH_BASE64_H_

#include <string>
#include <string_view>

namespace fhirbulk {
namespace synth {

// Appends the encoding of `bytes` to *out.
void AppendBase64(std::string* out, std::string_view bytes);

// Decodes `text` into *out; false when it is not canonical padded Base64.
bool DecodeBase64(std::string_view text, std::string* out);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_BASE64_H_
