// Rendering of the conf.d templates (`fhir-bulk config render`, used by `make up` and the
// packages' instructions): placeholders @NAME@ (NAME: capital letters, digits and '_',
// starting with a letter) are replaced by their values.
//
// Rules, so that a rendered file is either what was meant or not written at all:
//  - every placeholder of the template needs a value (InvalidArgument naming the missing ones),
//    and every value given must be used by the template (a misspelt name is an error, not a
//    silently unrendered line);
//  - an EMPTY value removes every line that uses it: optional directives (the ssl_certificate
//    lines of a plain-HTTP test setup) are written as lines of their own;
//  - comment lines (first non-blank character '#') are copied as they are: a template's
//    header documents its @NAME@s, and only directives count as uses;
//  - values are single-line nginx arguments: no control characters, and none of ; { } # " '
//    (nginx syntax), so a value cannot add directives to the file.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_UTIL_CONF_TEMPLATE_H_
#define FHIRBULK_UTIL_CONF_TEMPLATE_H_

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {

// The placeholder names the template uses.
std::set<std::string> TemplatePlaceholders(std::string_view text);

// InvalidArgument unless `value` may stand for a placeholder (see above).
Status CheckTemplateValue(std::string_view name, std::string_view value);

Result<std::string> RenderTemplate(std::string_view text,
                                   const std::map<std::string, std::string>& values);

// "NAME=value" into values; InvalidArgument for a malformed or repeated NAME.
Status ParseTemplateAssignment(std::string_view assignment,
                               std::map<std::string, std::string>* values);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_CONF_TEMPLATE_H_
