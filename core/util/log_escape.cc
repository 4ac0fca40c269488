#include "util/log_escape.h"

namespace fhirbulk {
namespace {

template <typename NeedsEscape>
std::string Escape(std::string_view s, size_t max_bytes, NeedsEscape needs_escape) {
  static const char kHex[] = "0123456789ABCDEF";
  const bool cut = s.size() > max_bytes;
  if (cut) s = s.substr(0, max_bytes);
  std::string out;
  out.reserve(s.size() + (cut ? 3 : 0));
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (needs_escape(u)) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (cut) out += "...";
  return out;
}

}  // namespace

std::string LogEscape(std::string_view s, size_t max_bytes) {
  return Escape(s, max_bytes, [](unsigned char u) {
    return u < 0x20 || u >= 0x7F || u == '"' || u == '\'' || u == '\\';
  });
}

std::string LogSanitize(std::string_view s, size_t max_bytes) {
  return Escape(s, max_bytes, [](unsigned char u) { return u < 0x20 || u >= 0x7F; });
}

}  // namespace fhirbulk
