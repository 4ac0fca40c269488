// Client-supplied text made safe for a log line or the audit trail.
//
// A JOSE header, a form field, a URL or a scope is attacker-chosen: written as is, a newline
// forges log lines ("...\n2026/01/01 00:00:00 [emerg] 1#1: FAKE"), terminal escape sequences
// reach whoever reads the log, and a megabyte of it fills the disk. Two functions:
//
//  - LogEscape: for a client string quoted inside a message. Every byte outside printable
//    ASCII (0x20-0x7E), and '"', '\'' and '\\', becomes "\xNN"; the output is printable ASCII
//    and unambiguous. Input beyond max_bytes is cut and "..." appended.
//  - LogSanitize: for a whole message at the sink (audit writer, error log). Control bytes
//    (0x00-0x1F, 0x7F) and bytes >= 0x80 become "\xNN"; backslashes and quotes are kept, so
//    text that LogEscape produced passes unchanged (no double escaping). Cut like LogEscape.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_UTIL_LOG_ESCAPE_H_
#define FHIRBULK_UTIL_LOG_ESCAPE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace fhirbulk {

// Default bound on one quoted client string.
constexpr size_t kLogFieldMaxBytes = 128;
// Default bound on one whole message.
constexpr size_t kLogMessageMaxBytes = 2048;

std::string LogEscape(std::string_view s, size_t max_bytes = kLogFieldMaxBytes);
std::string LogSanitize(std::string_view s, size_t max_bytes = kLogMessageMaxBytes);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_LOG_ESCAPE_H_
