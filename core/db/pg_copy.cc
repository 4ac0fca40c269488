#include "db/pg_copy.h"

#include <climits>
#include <cstring>

namespace fhirbulk {

namespace {

// Type OIDs from PostgreSQL's pg_type.dat; array_recv checks the element type against them.
constexpr int32_t kTextOid = 25;
constexpr int32_t kTimestampTzOid = 1184;

// PostgreSQL timestamps count microseconds from 2000-01-01T00:00:00Z.
constexpr int64_t kPgEpochOffsetUs = 946684800LL * 1000000LL;

int64_t ToPgTimestamp(int64_t unix_us) {
  if (unix_us == INT64_MIN || unix_us == INT64_MAX) return unix_us;  // DT_NOBEGIN, DT_NOEND
  return unix_us - kPgEpochOffsetUs;
}

}  // namespace

void PgCopyEncoder::PutInt16(int16_t v) {
  uint16_t u = static_cast<uint16_t>(v);
  char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
  out_->append(b, 2);
}

void PgCopyEncoder::PutInt32(int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
               static_cast<char>(u)};
  out_->append(b, 4);
}

void PgCopyEncoder::PutInt64(int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  char b[8];
  for (int i = 7; i >= 0; i--) {
    b[i] = static_cast<char>(u);
    u >>= 8;
  }
  out_->append(b, 8);
}

void PgCopyEncoder::Header() {
  static const char kSignature[] = "PGCOPY\n\377\r\n";  // 11 bytes incl. the final NUL
  out_->append(kSignature, 11);
  PutInt32(0);  // flags: no OIDs
  PutInt32(0);  // header extension length
}

void PgCopyEncoder::Trailer() { PutInt16(-1); }

void PgCopyEncoder::BeginRow(int16_t fields) { PutInt16(fields); }

void PgCopyEncoder::Null() { PutInt32(-1); }

void PgCopyEncoder::Text(std::string_view s) {
  PutInt32(static_cast<int32_t>(s.size()));
  out_->append(s);
}

void PgCopyEncoder::Bytea(const void* data, size_t n) {
  PutInt32(static_cast<int32_t>(n));
  out_->append(static_cast<const char*>(data), n);
}

void PgCopyEncoder::Int4(int32_t v) {
  PutInt32(4);
  PutInt32(v);
}

void PgCopyEncoder::Int8(int64_t v) {
  PutInt32(8);
  PutInt64(v);
}

void PgCopyEncoder::Bool(bool v) {
  PutInt32(1);
  out_->push_back(v ? 1 : 0);
}

void PgCopyEncoder::TimestampTz(int64_t unix_us) {
  PutInt32(8);
  PutInt64(ToPgTimestamp(unix_us));
}

// Array layout (array_send): ndim, has-nulls flag, element type, then per dimension its size
// and lower bound, then each element as length + bytes. An empty array has ndim 0.
void PgCopyEncoder::TextArray(const std::vector<std::string>& values) {
  size_t len = 12 + (values.empty() ? 0 : 8);
  for (const auto& v : values) len += 4 + v.size();
  PutInt32(static_cast<int32_t>(len));
  PutInt32(values.empty() ? 0 : 1);
  PutInt32(0);
  PutInt32(kTextOid);
  if (values.empty()) return;
  PutInt32(static_cast<int32_t>(values.size()));
  PutInt32(1);
  for (const auto& v : values) Text(v);
}

void PgCopyEncoder::TimestampTzArray(const std::vector<int64_t>& unix_us) {
  size_t len = 12 + (unix_us.empty() ? 0 : 8) + unix_us.size() * 12;
  PutInt32(static_cast<int32_t>(len));
  PutInt32(unix_us.empty() ? 0 : 1);
  PutInt32(0);
  PutInt32(kTimestampTzOid);
  if (unix_us.empty()) return;
  PutInt32(static_cast<int32_t>(unix_us.size()));
  PutInt32(1);
  for (int64_t v : unix_us) TimestampTz(v);
}

void PgCopyEncoder::BeginText() {
  open_text_ = out_->size();
  PutInt32(0);  // patched by EndText
}

void PgCopyEncoder::EndText() {
  uint32_t n = static_cast<uint32_t>(out_->size() - open_text_ - 4);
  char* p = &(*out_)[open_text_];
  p[0] = static_cast<char>(n >> 24);
  p[1] = static_cast<char>(n >> 16);
  p[2] = static_cast<char>(n >> 8);
  p[3] = static_cast<char>(n);
}

}  // namespace fhirbulk
