// JsonOut: a minimal, fast appender of compact JSON into a reused std::string.
//
// Contract: the caller emits a well-formed sequence (keys only inside objects, one value per
// key); JsonOut inserts the commas. Keys are string literals made of plain ASCII letters and
// are written verbatim; String() escapes its value as JSON requires (quotes, backslashes,
// control characters; UTF-8 passes through). Numbers are written without locale or libc
// formatting: integers exactly, decimals from a fixed-point rounding (Fixed), so the bytes
// are the same on every platform.
//
// Why not RapidJSON's Writer: it keeps a level stack and validates every call; the generator
// writes a few thousand resources per patient and only needs comma bookkeeping.
//
// Thread-safety: one thread per object.

#ifndef FHIRBULK_SYNTH_JSON_OUT_H_
#define FHIRBULK_SYNTH_JSON_OUT_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace fhirbulk {
namespace synth {

class JsonOut {
 public:
  JsonOut() { buf_.reserve(1 << 16); }

  void Clear() {
    buf_.clear();
    comma_ = false;
  }
  const std::string& str() const { return buf_; }
  std::string_view view() const { return buf_; }
  std::string* mutable_buffer() { return &buf_; }

  void BeginObject() {
    Sep();
    buf_.push_back('{');
    comma_ = false;
  }
  void EndObject() {
    buf_.push_back('}');
    comma_ = true;
  }
  void BeginArray() {
    Sep();
    buf_.push_back('[');
    comma_ = false;
  }
  void EndArray() {
    buf_.push_back(']');
    comma_ = true;
  }

  // "key": — the value must follow.
  void Key(std::string_view key) {
    Sep();
    buf_.push_back('"');
    buf_.append(key);
    buf_.append("\":", 2);
    comma_ = false;
  }

  void String(std::string_view s) {
    Sep();
    buf_.push_back('"');
    AppendEscaped(s);
    buf_.push_back('"');
    comma_ = true;
  }
  // A string known to need no escaping (codes, ids, URLs from the code tables).
  void Plain(std::string_view s) {
    Sep();
    buf_.push_back('"');
    buf_.append(s);
    buf_.push_back('"');
    comma_ = true;
  }
  void Int(int64_t v) {
    Sep();
    AppendInt(v);
    comma_ = true;
  }
  void Bool(bool v) {
    Sep();
    if (v) {
      buf_.append("true", 4);
    } else {
      buf_.append("false", 5);
    }
    comma_ = true;
  }
  // v rounded half away from zero to `decimals` places, trailing zeros (and a bare point)
  // removed: Fixed(181.20, 2) -> 181.2, Fixed(73.0, 1) -> 73.
  void Fixed(double v, int decimals) {
    Sep();
    AppendFixed(v, decimals);
    comma_ = true;
  }

  // Raw JSON text (already valid), e.g. a pre-rendered fragment.
  void Raw(std::string_view json) {
    Sep();
    buf_.append(json);
    comma_ = true;
  }

  // Shorthands for "key": value.
  void KeyString(std::string_view key, std::string_view v) {
    Key(key);
    String(v);
  }
  void KeyPlain(std::string_view key, std::string_view v) {
    Key(key);
    Plain(v);
  }
  void KeyInt(std::string_view key, int64_t v) {
    Key(key);
    Int(v);
  }
  void KeyBool(std::string_view key, bool v) {
    Key(key);
    Bool(v);
  }
  void KeyFixed(std::string_view key, double v, int decimals) {
    Key(key);
    Fixed(v, decimals);
  }

  // Starts a string value whose content the caller appends piecewise with Append*, then
  // closes with EndString (for ids, dates and references built from parts without a copy).
  void BeginString() {
    Sep();
    buf_.push_back('"');
  }
  void AppendRaw(std::string_view s) { buf_.append(s); }
  void AppendRaw(char c) { buf_.push_back(c); }
  void AppendEscapedPart(std::string_view s) { AppendEscaped(s); }
  void AppendIntPart(int64_t v) { AppendInt(v); }
  void EndString() {
    buf_.push_back('"');
    comma_ = true;
  }

 private:
  void Sep() {
    if (comma_) buf_.push_back(',');
  }

  void AppendInt(int64_t v) {
    char tmp[24];
    char* end = tmp + sizeof(tmp);
    char* p = end;
    uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    do {
      *--p = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) *--p = '-';
    buf_.append(p, end - p);
  }

  void AppendFixed(double v, int decimals) {
    static constexpr double kScale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    double scaled = v * kScale[decimals];
    int64_t n = static_cast<int64_t>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    if (n < 0) {
      buf_.push_back('-');
      n = -n;
    }
    int64_t pow10 = static_cast<int64_t>(kScale[decimals]);
    int64_t whole = n / pow10, frac = n % pow10;
    AppendInt(whole);
    if (frac == 0) return;
    char digits[8];
    int len = decimals;
    for (int i = decimals - 1; i >= 0; i--) {
      digits[i] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    while (len > 0 && digits[len - 1] == '0') len--;
    buf_.push_back('.');
    buf_.append(digits, len);
  }

  void AppendEscaped(std::string_view s) {
    size_t start = 0;
    for (size_t i = 0; i < s.size(); i++) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      buf_.append(s.data() + start, i - start);
      start = i + 1;
      switch (c) {
        case '"':
          buf_.append("\\\"", 2);
          break;
        case '\\':
          buf_.append("\\\\", 2);
          break;
        case '\n':
          buf_.append("\\n", 2);
          break;
        case '\t':
          buf_.append("\\t", 2);
          break;
        case '\r':
          buf_.append("\\r", 2);
          break;
        default: {
          static const char kHex[] = "0123456789abcdef";
          char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          buf_.append(esc, 6);
        }
      }
    }
    buf_.append(s.data() + start, s.size() - start);
  }

  std::string buf_;
  bool comma_ = false;
};

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_JSON_OUT_H_
