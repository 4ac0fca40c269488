// Base64url (RFC 4648 section 5) without padding, as JOSE (RFC 7515) uses it.
//
// Decoding is strict: padding, whitespace, characters outside the URL-safe alphabet and
// non-canonical trailing bits are rejected, so that one byte string has exactly one encoding
// (signatures and MACs are compared over the encoded text).
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_UTIL_BASE64URL_H_
#define FHIRBULK_UTIL_BASE64URL_H_

#include <string>
#include <string_view>

namespace fhirbulk {

std::string Base64UrlEncode(std::string_view bytes);

// False (and *out unspecified) unless `text` is canonical unpadded base64url.
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_BASE64URL_H_
