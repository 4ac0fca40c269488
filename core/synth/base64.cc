#include "synth/base64.h"

#include <cstdint>

namespace fhirbulk {
namespace synth {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

void AppendBase64(std::string* out, std::string_view bytes) {
  size_t start = out->size();
  out->resize(start + (bytes.size() + 2) / 3 * 4);
  char* p = &(*out)[start];
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0, n = bytes.size();
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = kAlphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < n) v |= uint32_t{in[i + 1]} << 8;
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    *p++ = '=';
  }
}

bool DecodeBase64(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 4) {
    int a = DecodeChar(text[i]), b = DecodeChar(text[i + 1]);
    if (a < 0 || b < 0) return false;
    bool last = i + 4 == text.size();
    bool pad2 = last && text[i + 2] == '=' && text[i + 3] == '=';
    bool pad1 = last && !pad2 && text[i + 3] == '=';
    int c = pad2 ? 0 : DecodeChar(text[i + 2]);
    int d = (pad1 || pad2) ? 0 : DecodeChar(text[i + 3]);
    if (c < 0 || d < 0) return false;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    out->push_back(static_cast<char>(v >> 16));
    if (!pad2) out->push_back(static_cast<char>((v >> 8) & 255));
    if (!pad1 && !pad2) out->push_back(static_cast<char>(v & 255));
  }
  return true;
}

}  // namespace synth
}  // namespace fhirbulk
