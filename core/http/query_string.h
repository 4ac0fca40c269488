// URL query strings as the kick-off parser reads them: splitting `a=1&b=2`, percent-decoding,
// and the checks every decoded value passes before it can reach JSON or SQL.
//
// Contract:
//  - Decoding follows application/x-www-form-urlencoded: "%XX" is a byte and '+' is a space
//    (when asked: `plus_as_space`). A FHIR instant's '+' therefore has to arrive as %2B; the
//    export parser repairs the one unambiguous case (a space inside a date) itself.
//  - A malformed escape ("%", "%4", "%zz"), an encoded NUL byte, or a result that is not
//    UTF-8 is InvalidArgument: such bytes could not be stored in PostgreSQL text anyway.
//  - SplitQueryString decodes names but keeps values raw, because _typeFilter must see its
//    literal commas before decoding (spec digest §2.3); callers decode other values with
//    PercentDecode. Empty segments ("a=1&&b=2") are skipped; a segment without '=' has an
//    empty value.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_HTTP_QUERY_STRING_H_
#define FHIRBULK_HTTP_QUERY_STRING_H_

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

struct QueryParam {
  std::string name;       // percent-decoded
  std::string raw_value;  // as sent: still percent-encoded
};

// Splits a raw query (without the leading '?') on '&' and decodes the names.
// InvalidArgument when a name does not decode or is empty ("=x").
Result<std::vector<QueryParam>> SplitQueryString(std::string_view query);

// Percent-decodes `text`; '+' becomes ' ' when plus_as_space. See the contract for errors.
Result<std::string> PercentDecode(std::string_view text, bool plus_as_space);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace fhirbulk

#endif  // FHIRBULK_HTTP_QUERY_STRING_H_
