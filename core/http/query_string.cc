#include "http/query_string.h"

#include <cstdint>

namespace fhirbulk {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < static_cast<size_t>(len)) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Result<std::string> PercentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const bool complete = i + 2 < text.size();
      const int hi = complete ? HexValue(text[i + 1]) : -1;
      const int lo = complete ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument("malformed percent-encoding in '" + std::string(text) + "'");
      }
      const char byte = static_cast<char>(hi * 16 + lo);
      if (byte == '\0') {
        return Status::InvalidArgument("encoded NUL byte in '" + std::string(text) + "'");
      }
      out.push_back(byte);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else if (c == '\0') {
      return Status::InvalidArgument("NUL byte in a query value");
    } else {
      out.push_back(c);
    }
  }
  if (!IsValidUtf8(out)) {
    return Status::InvalidArgument("'" + std::string(text) + "' does not decode to UTF-8 text");
  }
  return out;
}

Result<std::vector<QueryParam>> SplitQueryString(std::string_view query) {
  std::vector<QueryParam> params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view segment = query.substr(start, end - start);
    start = end + 1;
    if (segment.empty()) continue;
    const size_t eq = segment.find('=');
    const std::string_view raw_name = segment.substr(0, eq);
    Result<std::string> name = PercentDecode(raw_name, /*plus_as_space=*/true);
    if (!name.ok()) return name.status().WithContext("query parameter name");
    if (name->empty()) {
      return Status::InvalidArgument("query parameter without a name: '" + std::string(segment) +
                                     "'");
    }
    QueryParam param;
    param.name = std::move(name).value();
    if (eq != std::string_view::npos) param.raw_value = std::string(segment.substr(eq + 1));
    params.push_back(std::move(param));
  }
  return params;
}

}  // namespace fhirbulk
