// PgCopyEncoder: rows in PostgreSQL's binary COPY format (COPY ... FROM STDIN (FORMAT binary)).
//
// Binary COPY needs no escaping and spares the server from parsing array and timestamp
// literals, which is most of what a text COPY of the resource rows would cost it. Every
// value is written in the type's binary "send" form; the encoder does not know the target
// table, so the caller writes the columns in the table's order with the right types.
//
// Thread-safety: one thread at a time; distinct encoders are independent.

#ifndef FHIRBULK_DB_PG_COPY_H_
#define FHIRBULK_DB_PG_COPY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fhirbulk {

class PgCopyEncoder {
 public:
  // Appends to *out (not owned; must outlive the encoder).
  explicit PgCopyEncoder(std::string* out) : out_(out) {}

  // The signature and header that start a binary COPY stream, and the trailer ending it.
  void Header();
  void Trailer();

  // Starts a row of `fields` columns; then exactly that many values follow.
  void BeginRow(int16_t fields);

  void Null();
  void Text(std::string_view s);           // text / varchar
  void Bytea(const void* data, size_t n);  // bytea
  void Int4(int32_t v);
  void Int8(int64_t v);
  void Bool(bool v);
  // timestamptz from microseconds since the Unix epoch; INT64_MIN and INT64_MAX stand for
  // -infinity and infinity.
  void TimestampTz(int64_t unix_us);
  void TextArray(const std::vector<std::string>& values);      // text[] (empty: '{}')
  void TimestampTzArray(const std::vector<int64_t>& unix_us);  // timestamptz[]

  // A text value assembled from pieces: BeginText, Append..., EndText.
  void BeginText();
  void Append(std::string_view piece) { out_->append(piece); }
  void EndText();

  // Raw bytes that are already encoded fields (see the encoder's other methods).
  void AppendEncoded(std::string_view bytes) { out_->append(bytes); }

 private:
  void PutInt16(int16_t v);
  void PutInt32(int32_t v);
  void PutInt64(int64_t v);

  std::string* out_;
  size_t open_text_ = 0;  // offset of the pending length word of BeginText
};

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_PG_COPY_H_
