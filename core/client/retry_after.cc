#include "client/retry_after.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr const char* kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr const char* kDays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr const char* kLongDays[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                      "Friday", "Saturday", "Sunday"};

// A cursor over the text; every Read* consumes exactly what it matched or fails.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool Literal(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }
  bool Digits(int n, int* value) {
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') return false;
      v = v * 10 + (text_[pos_++] - '0');
    }
    *value = v;
    return true;
  }
  bool OneOf(const char* const* names, int count, int* index) {
    for (int i = 0; i < count; ++i) {
      if (Literal(names[i])) {
        *index = i;
        return true;
      }
    }
    return false;
  }
  // hh:mm:ss
  bool Time(int* h, int* m, int* s) {
    return Digits(2, h) && Literal(":") && Digits(2, m) && Literal(":") && Digits(2, s);
  }
  bool AtEnd() const { return pos_ == text_.size(); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<int64_t> ParseHttpDate(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, weekday = 0;
  bool parsed = false;
  {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    Scanner s(text);
    parsed = s.OneOf(kDays, 7, &weekday) && s.Literal(", ") && s.Digits(2, &day) &&
             s.Literal(" ") && s.OneOf(kMonths, 12, &month) && s.Literal(" ") &&
             s.Digits(4, &year) && s.Literal(" ") && s.Time(&hour, &minute, &second) &&
             s.Literal(" GMT") && s.AtEnd();
  }
  if (!parsed) {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    Scanner s(text);
    int yy = 0;
    parsed = s.OneOf(kLongDays, 7, &weekday) && s.Literal(", ") && s.Digits(2, &day) &&
             s.Literal("-") && s.OneOf(kMonths, 12, &month) && s.Literal("-") && s.Digits(2, &yy) &&
             s.Literal(" ") && s.Time(&hour, &minute, &second) && s.Literal(" GMT") && s.AtEnd();
    year = yy < 70 ? 2000 + yy : 1900 + yy;
  }
  if (!parsed) {
    // asctime: Sun Nov  6 08:49:37 1994 (day padded with a space)
    Scanner s(text);
    parsed = s.OneOf(kDays, 7, &weekday) && s.Literal(" ") && s.OneOf(kMonths, 12, &month) &&
             s.Literal(" ");
    if (parsed) {
      if (s.Literal(" ")) {
        parsed = s.Digits(1, &day);
      } else {
        parsed = s.Digits(2, &day);
      }
    }
    parsed = parsed && s.Literal(" ") && s.Time(&hour, &minute, &second) && s.Literal(" ") &&
             s.Digits(4, &year) && s.AtEnd();
  }
  if (!parsed) return Status::InvalidArgument("not an HTTP-date: '" + std::string(text) + "'");
  // The FHIR instant parser knows the calendar (days per month, leap years); reuse it.
  char iso[32];
  std::snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month + 1, day, hour,
                minute, second);
  Result<int64_t> us = ParseInstant(iso);
  if (!us.ok()) return Status::InvalidArgument("not an HTTP-date: '" + std::string(text) + "'");
  return us;
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_us) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    int64_t seconds = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return std::nullopt;
      seconds = std::min<int64_t>(seconds * 10 + (c - '0'), kMaxRetryAfterSeconds);
    }
    return seconds;
  }
  Result<int64_t> at = ParseHttpDate(value);
  if (!at.ok()) return std::nullopt;
  if (*at <= now_us) return 0;
  // Round up: waking a fraction of a second early would only earn another 429.
  int64_t seconds = (*at - now_us + 999999) / 1000000;
  return std::min(seconds, kMaxRetryAfterSeconds);
}

}  // namespace client
}  // namespace fhirbulk
